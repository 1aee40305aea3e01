using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Quantization;

/// <summary>Builds one-node models with the GraphRewriter and runs them through an InferenceSession.</summary>
internal static class QuantGraph
{
    /// <summary>
    /// Runs <paramref name="op"/> on <paramref name="inputs"/> (null = omitted optional input). Inputs whose index is
    /// in <paramref name="constants"/> become initializers, the others graph inputs. Returns every node output.
    /// </summary>
    public static Tensor[] Run(string op, Tensor?[] inputs, NodeAttribute[]? attributes = null, int opset = 21,
        string domain = "", int outputCount = 1, int[]? constants = null, int threads = 2)
    {
        var model = Build(op, inputs, attributes, opset, domain, outputCount, constants, out var feeds);
        using var session = new InferenceSession(model, new SessionOptions { IntraOpThreads = threads });
        var result = session.Run(feeds);
        return model.Graph.Outputs.Select(o => result[o.Name]).ToArray();
    }

    public static Tensor Run1(string op, Tensor?[] inputs, NodeAttribute[]? attributes = null, int opset = 21,
        string domain = "", int[]? constants = null) => Run(op, inputs, attributes, opset, domain, 1, constants)[0];

    public static Model Build(string op, Tensor?[] inputs, NodeAttribute[]? attributes, int opset, string domain,
        int outputCount, int[]? constants, out Dictionary<string, Tensor> feeds)
    {
        var g = new Graph.Graph { Name = op.ToLowerInvariant() };
        var e = g.Edit();
        feeds = new Dictionary<string, Tensor>();
        var values = new List<Value?>();
        for (int i = 0; i < inputs.Length; i++)
        {
            var t = inputs[i];
            if (t is null) { values.Add(null); continue; }
            if (constants?.Contains(i) == true)
            {
                values.Add(e.AddInitializer($"c{i}", t));
            }
            else
            {
                var v = e.AddInput($"in{i}", TensorTypeInfo.FromShape(t.DataType, t.Shape));
                feeds[v.Name] = t;
                values.Add(v);
            }
        }
        var node = e.AddNode(op, values, outputCount, name: "n", domain: domain, attributes: attributes);
        foreach (var o in node.Outputs) e.AddOutput(o!);
        var model = new Model(g);
        model.SetOpset("", opset);
        if (domain.Length > 0) model.SetOpset(domain, 1);
        // Declared output types, as a model file would carry them (float16 outputs then stay float16).
        ShapeInference.Run(model);
        return model;
    }

    /// <summary>Runs the kernel's shape inference on a one-node model and returns the node's output types.</summary>
    public static TensorTypeInfo?[] Infer(string op, TensorTypeInfo?[] inputTypes, NodeAttribute[]? attributes = null, int opset = 21,
        string domain = "", int outputCount = 1)
    {
        var g = new Graph.Graph { Name = "infer" };
        var e = g.Edit();
        var values = inputTypes.Select((t, i) => t is null ? null : e.AddInput($"in{i}", t)).ToList();
        var node = e.AddNode(op, values, outputCount, name: "n", domain: domain, attributes: attributes);
        var model = new Model(g);
        model.SetOpset("", opset);
        if (domain.Length > 0) model.SetOpset(domain, 1);
        var kernel = OperatorRegistry.Default.TryCreate(model, node) ?? throw new InvalidOperationException($"no kernel for {op}");
        kernel.InferTypes(new TypeInferenceContext(node, _ => null));
        return node.Outputs.Select(o => o!.Type).ToArray();
    }

    public static NodeAttribute A(string name, long v) => NodeAttribute.Of(name, v);
    public static NodeAttribute A(string name, long[] v) => NodeAttribute.Of(name, v);
    public static NodeAttribute A(string name, string v) => NodeAttribute.Of(name, v);

    public static Tensor<float> F(float[] data, params int[] shape) => new(data, shape);
    public static Tensor<float> FScalar(float v) => new([v], []);

    /// <summary>An integer tensor of the given dtype built from int values (which must fit).</summary>
    public static Tensor Ints(DataType dt, int[] values, params int[] shape)
    {
        var t = Tensor.Zeros(dt, shape);
        for (int i = 0; i < values.Length; i++)
        {
            switch (t)
            {
                case Tensor<byte> b: b.Data[i] = checked((byte)values[i]); break;
                case Tensor<sbyte> b: b.Data[i] = checked((sbyte)values[i]); break;
                case Tensor<short> b: b.Data[i] = checked((short)values[i]); break;
                case Tensor<ushort> b: b.Data[i] = checked((ushort)values[i]); break;
                case Tensor<int> b: b.Data[i] = values[i]; break;
                default: throw new ArgumentException(dt.ToString());
            }
        }
        return t;
    }

    public static int[] IntsOf(Tensor t) => Enumerable.Range(0, t.Length).Select(i => (int)t.GetDouble(i)).ToArray();
    public static float[] FloatsOf(Tensor t) => Enumerable.Range(0, t.Length).Select(i => (float)t.GetDouble(i)).ToArray();

    public static float[] RandomFloats(Random r, int n, float lo, float hi) =>
        Enumerable.Range(0, n).Select(_ => lo + (float)r.NextDouble() * (hi - lo)).ToArray();

    public static int[] RandomInts(Random r, int n, int lo, int hiInclusive) =>
        Enumerable.Range(0, n).Select(_ => r.Next(lo, hiInclusive + 1)).ToArray();

    /// <summary>Reference range table, written independently of the library.</summary>
    public static (int Min, int Max) RangeOf(DataType t) => t switch
    {
        DataType.UInt8 => (0, 255),
        DataType.Int8 => (-128, 127),
        DataType.UInt16 => (0, 65535),
        DataType.Int16 => (-32768, 32767),
        DataType.UInt4 => (0, 15),
        DataType.Int4 => (-8, 7),
        _ => throw new ArgumentException(t.ToString()),
    };

    /// <summary>Reference: saturate(round_half_even(x / s) + zp), float32 division.</summary>
    public static int RefQuantize(float x, float s, int zp, DataType t)
    {
        var (lo, hi) = RangeOf(t);
        float q = x / s;
        double r = Math.Round((double)q, MidpointRounding.ToEven) + zp;
        return (int)Math.Clamp(r, lo, hi);
    }
}
