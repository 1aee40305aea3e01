using QuantSharp.Graph;
using QuantSharp.Onnx;
using QuantSharp.Onnx.Proto;
using QuantSharp.Runtime;
using QuantSharp.Tensors;
using QuantSharp.Tests.TestData;

namespace QuantSharp.Tests.Onnx;

public class ModelCloningTests
{
    private static string MnistPath => TestPaths.SharedFile("models", "onnx", "mnist_cntk_opset7.onnx");

    [Fact]
    public void CloneIsLinkedTheSameWayButSharesNoGraphObjects()
    {
        var m = OnnxModelIO.Load(MnistPath);
        var c = m.Clone();
        var g = m.Graph;
        var cg = c.Graph;
        Assert.NotSame(g, cg);
        Assert.Equal(g.Nodes.Select(n => n.Name), cg.Nodes.Select(n => n.Name));
        Assert.Empty(GraphValidation.Validate(cg));
        var originals = new HashSet<object>(g.Nodes.Cast<object>().Concat(g.Values.Values));
        foreach (var n in cg.Nodes)
        {
            Assert.DoesNotContain(n, originals);
            Assert.Same(cg, n.Owner);
            for (int i = 0; i < n.Inputs.Count; i++)
            {
                var v = n.Inputs[i]!;
                Assert.DoesNotContain(v, originals);
                Assert.Same(cg.Values[v.Name], v);
                Assert.Contains(new Use(n, i), v.Uses);
            }
            foreach (var o in n.Outputs) Assert.Same(n, o!.Producer);
        }
        Assert.All(cg.Inputs.Concat(cg.Outputs).Concat(cg.Initializers), v => Assert.Same(cg.Values[v.Name], v));
        Assert.Equal(g.Values.Values.Sum(v => v.Uses.Count), cg.Values.Values.Sum(v => v.Uses.Count));

        // The copy exports exactly like the original, and editing it leaves the original alone.
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(MnistPath));
        Assert.Equal(original, OnnxModelIO.ToProto(c));
        var e = cg.Edit();
        e.InsertAfter(cg.Outputs[0], "Relu", []);
        e.SetInitializer(cg.Initializers[0], new Tensor<float>(cg.Initializers[0].Initializer!.Shape));
        c.SetOpset("", 13);
        Assert.Equal(original, OnnxModelIO.ToProto(m));
        Assert.NotEqual(original, OnnxModelIO.ToProto(c));
    }

    [Fact]
    public void InferenceSessionLoadsModelFiles()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var g = new QuantSharp.Graph.Graph { Name = "id" };
            var e = g.Edit();
            var x = e.AddInput("x", TensorTypeInfo.FromShape(DataType.Float, [3]));
            e.AddOutput(e.AddNode("Identity", [x], name: "id").Outputs[0]!);
            var m = new Model(g);
            m.SetOpset("", 17);
            var path = Path.Combine(dir, "id.onnx");
            OnnxModelIO.Save(m, path);

            using var s = InferenceSession.Load(path);
            var input = new Tensor<float>([1, 2, 3], [3]);
            Assert.Equal(input.Data, s.Run(input).Values.Single().As<float>().Data);

            if (ConformanceData.Find(ConformanceData.LibOnnx, "test_identity") is { } c)
            {
                using var cs = InferenceSession.Load(c.ModelPath);
                var ds = c.DataSets()[0];
                var (name, t) = TensorProtoIO.ReadFile(ds.Inputs[0]);
                var expected = TensorProtoIO.ReadFile(ds.Outputs[0]).Tensor;
                var got = cs.Run(new Dictionary<string, Tensor> { [cs.Inputs[0].Name] = t }).Values.Single();
                Assert.Equal(expected.Shape, got.Shape);
                Assert.Equal(expected.Buffer.Cast<object>(), got.Buffer.Cast<object>());
            }
            Assert.Throws<QuantSharpException>(() => InferenceSession.Load(Path.Combine(dir, "missing.onnx")));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
