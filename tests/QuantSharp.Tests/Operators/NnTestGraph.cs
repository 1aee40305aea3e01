using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Operators;

/// <summary>Builds a one-node model and runs it through <see cref="InferenceSession"/>.</summary>
internal static class NnTestGraph
{
    /// <summary>One input: a runtime value, a constant (initializer), or omitted (null tensor).</summary>
    public readonly record struct In(Tensor? Tensor, bool Constant = false);

    public static In R(Tensor t) => new(t);
    public static In C(Tensor t) => new(t, true);
    public static readonly In None = new(null);

    public static Model Build(string op, In[] inputs, NodeAttribute[] attrs, int outputs, int opset, bool[]? wanted = null)
    {
        var g = new Graph.Graph { Name = op };
        var e = g.Edit();
        var values = new List<Value?>();
        for (int i = 0; i < inputs.Length; i++)
        {
            var t = inputs[i].Tensor;
            if (t is null) values.Add(null);
            else if (inputs[i].Constant) values.Add(e.AddInitializer($"c{i}", t));
            else values.Add(e.AddInput($"x{i}", TensorTypeInfo.FromShape(t.DataType, t.Shape)));
        }
        var outs = new List<Value>();
        for (int o = 0; o < outputs; o++) outs.Add(e.CreateValue($"y{o}"));
        e.AddNode(op, values, name: "n", attributes: attrs, outputs: outs);
        for (int o = 0; o < outputs; o++)
            if (wanted is null || wanted[o]) e.AddOutput(outs[o]);
        var m = new Model(g);
        m.SetOpset("", opset);
        return m;
    }

    public static Tensor[] Run(string op, In[] inputs, NodeAttribute[] attrs, int outputs = 1, int opset = 17, int threads = 1)
    {
        var m = Build(op, inputs, attrs, outputs, opset);
        using var s = new InferenceSession(m, new SessionOptions { IntraOpThreads = threads });
        var feeds = new Dictionary<string, Tensor>();
        for (int i = 0; i < inputs.Length; i++)
            if (inputs[i] is { Tensor: { } t, Constant: false }) feeds[$"x{i}"] = t;
        var r = s.Run(feeds);
        return Enumerable.Range(0, outputs).Select(o => r[$"y{o}"]).ToArray();
    }

    /// <summary>Runs the kernel's shape inference on a one-node model and returns the output types.</summary>
    public static TensorTypeInfo?[] Infer(Model m)
    {
        var node = m.Graph.Nodes[0];
        var k = OperatorRegistry.Default.TryCreate(m, node)!;
        k.InferTypes(new TypeInferenceContext(node, v => v.Initializer));
        return node.Outputs.Select(v => v?.Type).ToArray();
    }

    public static Tensor<float> Random(Random rnd, params int[] shape)
    {
        var t = new Tensor<float>(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = (float)(rnd.NextDouble() * 2 - 1);
        return t;
    }

    public static Tensor<float> F(float[] data, params int[] shape) => new(data, shape);

    public static void AssertClose(Tensor expected, Tensor actual, float tol = 1e-4f)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected.GetDouble(i), a = actual.GetDouble(i);
            Assert.True(Math.Abs(e - a) <= tol * Math.Max(1, Math.Abs(e)), $"element {i}: expected {e}, got {a}");
        }
    }

    public static NodeAttribute A(string name, long v) => NodeAttribute.Of(name, v);
    public static NodeAttribute A(string name, float v) => NodeAttribute.Of(name, v);
    public static NodeAttribute A(string name, string v) => NodeAttribute.Of(name, v);
    /// <summary>An ints attribute (also for a single value, which <c>A</c> would make an int).</summary>
    public static NodeAttribute L(string name, params long[] v) => NodeAttribute.Of(name, v);
}
