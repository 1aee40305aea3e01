using System.Text.RegularExpressions;
using QuantSharp.Graph;
using QuantSharp.Onnx;
using QuantSharp.Runtime;
using QuantSharp.Tensors;
using QuantSharp.Tests.TestData;
using Xunit.Abstractions;

namespace QuantSharp.Tests.Operators;

/// <summary>
/// ShapeInference against the ONNX conformance cases of the shape and data-movement ops: every input but the first
/// becomes a constant (from data set 0), declared output types are cleared, and the inferred types must equal the
/// expected outputs' dtypes and shapes.
/// </summary>
public class ShapeInferenceConformanceTests(ITestOutputHelper output)
{
    private static readonly Regex ShapeOps = new(
        "^test_(resize|upsample|constant_pad|edge_pad|reflect_pad|wrap_pad|slice|split|squeeze|unsqueeze|reshape|transpose|gather|concat|expand|tile|constant|range|shape|size|flatten|dropout|training_dropout|depthtospace|spacetodepth)",
        RegexOptions.CultureInvariant);

    /// <summary>Ops whose output shape is data-dependent on their first input, so it stays unknown here.</summary>
    private static readonly Regex FirstInputIsShape = new("^test_(range|constantofshape)", RegexOptions.CultureInvariant);

    [Fact]
    public void InferredTypesMatchConformanceOutputs()
    {
        var cases = ConformanceData.Cases().Where(c => ShapeOps.IsMatch(c.Name) && !c.Name.Contains("expanded")).ToList();
        Assert.NotEmpty(cases);
        var problems = new List<string>();
        int checkedCases = 0;
        foreach (var c in cases)
        {
            Model m;
            try { m = OnnxModelIO.Load(c.ModelPath); }
            catch (QuantSharpException) { continue; }
            if (m.Graph.Nodes.Any(n => !OperatorRegistry.Default.IsSupported(n.Domain, n.OpType, OperatorRegistry.OpsetFor(m, n)))) continue;
            if (m.Graph.RuntimeInputs.Concat(m.Graph.Outputs).Any(v => v.Type is null)) continue;
            var data = c.DataSets()[0];
            var inputs = m.Graph.RuntimeInputs.ToArray();
            for (int i = 1; i < inputs.Length && i < data.Inputs.Count; i++)
                m.Graph.Edit().RegisterInitializer(inputs[i], TensorProtoIO.ReadFile(data.Inputs[i]).Tensor);
            foreach (var n in m.Graph.Nodes)
                foreach (var o in n.Outputs)
                    if (o is not null) o.Type = null;

            ShapeInference.Run(m);
            checkedCases++;

            for (int i = 0; i < data.Outputs.Count && i < m.Graph.Outputs.Count; i++)
            {
                var expected = TensorProtoIO.ReadFile(data.Outputs[i]).Tensor;
                var inferred = m.Graph.Outputs[i].Type;
                if (inferred is null) { problems.Add($"{c}: output {i} not inferred"); continue; }
                if (inferred.ElementType != expected.DataType)
                    problems.Add($"{c}: output {i} dtype {inferred.ElementType}, expected {expected.DataType}");
                var shape = inferred.ConcreteShape();
                if (shape is null)
                {
                    if (!FirstInputIsShape.IsMatch(c.Name)) problems.Add($"{c}: output {i} inferred {inferred}, expected {expected}");
                }
                else if (!shape.SequenceEqual(expected.Shape))
                    problems.Add($"{c}: output {i} inferred {inferred}, expected {expected}");
            }
        }
        output.WriteLine($"{checkedCases} cases checked");
        Assert.True(checkedCases > 100, $"only {checkedCases} cases could be checked");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }
}
