using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Operators;

/// <summary>Builds a one-node model, runs it through an <see cref="InferenceSession"/> and returns its outputs.</summary>
internal static class OpTester
{
    /// <param name="inputs">Node inputs; null leaves an optional input out.</param>
    /// <param name="constants">Indices of inputs that become initializers instead of graph inputs.</param>
    public static Tensor[] Run(string op, int opset, Tensor?[] inputs, NodeAttribute[]? attributes = null,
        int outputs = 1, int[]? constants = null, int threads = 2)
    {
        var model = Build(op, opset, inputs, attributes, outputs, constants, out var feeds);
        using var s = new InferenceSession(model, new SessionOptions { IntraOpThreads = threads });
        var r = s.Run(feeds);
        return model.Graph.Outputs.Select(o => r[o.Name]).ToArray();
    }

    public static Tensor Run1(string op, int opset, Tensor?[] inputs, NodeAttribute[]? attributes = null, int[]? constants = null, int threads = 2) =>
        Run(op, opset, inputs, attributes, 1, constants, threads)[0];

    public static Model Build(string op, int opset, Tensor?[] inputs, NodeAttribute[]? attributes, int outputs, int[]? constants,
        out Dictionary<string, Tensor> feeds)
    {
        var g = new Graph.Graph { Name = op + "_test" };
        var e = g.Edit();
        feeds = [];
        var values = new List<Value?>();
        for (int i = 0; i < inputs.Length; i++)
        {
            var t = inputs[i];
            if (t is null) { values.Add(null); continue; }
            if (constants?.Contains(i) == true) values.Add(e.AddInitializer($"c{i}", t));
            else
            {
                values.Add(e.AddInput($"x{i}", TensorTypeInfo.FromShape(t.DataType, t.Shape)));
                feeds[$"x{i}"] = t;
            }
        }
        var n = e.AddNode(op, values, outputs, name: "n", attributes: attributes);
        foreach (var o in n.Outputs) e.AddOutput(o!);
        var m = new Model(g);
        m.SetOpset("", opset);
        return m;
    }

    public static Tensor<float> F(float[] data, params int[] shape) => new(data, shape);
    public static Tensor<long> L(long[] data, params int[] shape) => new(data, shape);

    public static float[] Random(int n, int seed, float lo = -3f, float hi = 3f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = lo + (float)r.NextDouble() * (hi - lo);
        return a;
    }

    /// <summary>Reference broadcasting: the element of a tensor of shape <paramref name="shape"/> that output index <paramref name="outIndex"/> reads.</summary>
    public static int SourceIndex(int[] outShape, int[] shape, int outIndex)
    {
        int rank = outShape.Length, idx = 0, stride = 1;
        for (int d = rank - 1; d >= 0; d--)
        {
            int coord = outIndex % outShape[d];
            outIndex /= outShape[d];
            int k = d - (rank - shape.Length);
            if (k < 0) continue;
            if (shape[k] != 1) idx += coord * stride;
            stride *= shape[k];
        }
        return idx;
    }

    public static void Close(double expected, double actual, double rel = 1e-6, double abs = 1e-6)
    {
        if (double.IsNaN(expected)) { if (!double.IsNaN(actual)) Assert.Fail($"expected NaN, got {actual}"); return; }
        if (double.IsInfinity(expected)) { Assert.Equal(expected, actual); return; }
        if (!(Math.Abs(expected - actual) <= abs + rel * Math.Abs(expected))) Assert.Fail($"expected {expected}, got {actual}");
    }

    public static void AllClose(double[] expected, Tensor actual, double rel = 1e-6, double abs = 1e-6)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Close(expected[i], actual.GetDouble(i), rel, abs);
    }
}
