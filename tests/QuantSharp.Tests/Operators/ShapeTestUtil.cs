using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Operators;

/// <summary>Builds one-node models, runs them through <see cref="InferenceSession"/>, and offers index helpers for references.</summary>
internal static class ShapeTestUtil
{
    /// <summary>
    /// Runs <paramref name="op"/> at <paramref name="opset"/> on the inputs (null = omitted optional input). Inputs are
    /// graph inputs unless listed in <paramref name="constants"/> (then initializers).
    /// </summary>
    public static Tensor[] Run(string op, int opset, Tensor?[] inputs, NodeAttribute[]? attrs = null, int outputs = 1,
        int[]? constants = null, int threads = 2)
    {
        var model = Build(op, opset, inputs, attrs, outputs, constants, out var feeds);
        using var s = new InferenceSession(model, new SessionOptions { IntraOpThreads = threads });
        var r = s.Run(feeds);
        return model.Graph.Outputs.Select(o => r[o.Name]).ToArray();
    }

    public static Tensor Run1(string op, int opset, Tensor?[] inputs, params NodeAttribute[] attrs) => Run(op, opset, inputs, attrs)[0];

    public static Model Build(string op, int opset, Tensor?[] inputs, NodeAttribute[]? attrs, int outputs, int[]? constants,
        out Dictionary<string, Tensor> feeds)
    {
        var g = new Graph.Graph { Name = op };
        var e = g.Edit();
        feeds = [];
        var ins = new List<Value?>();
        for (int i = 0; i < inputs.Length; i++)
        {
            var t = inputs[i];
            if (t is null) { ins.Add(null); continue; }
            if (constants is not null && constants.Contains(i)) ins.Add(e.AddInitializer($"c{i}", t));
            else
            {
                var v = e.AddInput($"in{i}", TensorTypeInfo.FromShape(t.DataType, t.Shape));
                feeds[v.Name] = t;
                ins.Add(v);
            }
        }
        var n = e.AddNode(op, ins, outputs, name: "n", attributes: attrs);
        foreach (var o in n.Outputs) e.AddOutput(o!);
        var m = new Model(g);
        m.SetOpset("", opset);
        return m;
    }

    public static Tensor<float> Seq(params int[] shape)
    {
        var t = new Tensor<float>(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = i + 1;
        return t;
    }

    public static Tensor<long> Longs(params long[] v) => new(v, [v.Length]);

    public static Tensor<T> Of<T>(T[] data, params int[] shape) => new(data, shape);

    public static int[] Unravel(int index, int[] shape)
    {
        var r = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            r[d] = index % shape[d];
            index /= shape[d];
        }
        return r;
    }

    public static int Ravel(int[] idx, int[] shape)
    {
        int r = 0;
        for (int d = 0; d < shape.Length; d++) r = r * shape[d] + idx[d];
        return r;
    }

    public static NodeAttribute A(string name, long v) => NodeAttribute.Of(name, v);
    public static NodeAttribute A(string name, long[] v) => NodeAttribute.Of(name, v);
    public static NodeAttribute A(string name, float v) => NodeAttribute.Of(name, v);
    public static NodeAttribute A(string name, float[] v) => NodeAttribute.Of(name, v);
    public static NodeAttribute A(string name, string v) => NodeAttribute.Of(name, v);
    public static NodeAttribute A(string name, Tensor v) => NodeAttribute.Of(name, v);

    public static void Same<T>(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.DataType, actual.DataType);
        Assert.Equal(expected.Shape, actual.Shape);
        Assert.Equal(((Tensor<T>)expected).Data, ((Tensor<T>)actual).Data);
    }

    public static void Close(float[] expected, Tensor actual, float tol = 1e-5f)
    {
        var a = actual.As<float>().Data;
        Assert.Equal(expected.Length, a.Length);
        for (int i = 0; i < a.Length; i++)
            Assert.True(Math.Abs(expected[i] - a[i]) <= tol * (1 + Math.Abs(expected[i])), $"element {i}: expected {expected[i]}, got {a[i]}");
    }
}
