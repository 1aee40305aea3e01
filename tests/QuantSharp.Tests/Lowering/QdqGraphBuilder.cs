using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Lowering;

/// <summary>Builds small QDQ graphs (as the quantizer writes them) and runs them lowered and unlowered.</summary>
internal sealed class QdqGraphBuilder
{
    private readonly Random _rng;
    public Graph.Graph Graph { get; } = new() { Name = "qdq" };
    public GraphRewriter Edit { get; }
    public Dictionary<string, Tensor> Feeds { get; } = new();

    public QdqGraphBuilder(int seed)
    {
        _rng = new Random(seed);
        Edit = Graph.Edit();
    }

    public float[] Random(int n, float lo, float hi)
    {
        var r = new float[n];
        for (int i = 0; i < n; i++) r[i] = lo + (hi - lo) * _rng.NextSingle();
        return r;
    }

    public Value Input(string name, float lo, float hi, params int[] shape)
    {
        var v = Edit.AddInput(name, TensorTypeInfo.FromShape(DataType.Float, shape));
        Feeds[name] = new Tensor<float>(Random(ShapeUtil.Product(shape), lo, hi), shape);
        return v;
    }

    public Value Node(string op, Value?[] inputs, params NodeAttribute[] attributes) =>
        Edit.AddNode(op, inputs, attributes: attributes).Outputs[0]!;

    /// <summary>QuantizeLinear then DequantizeLinear with per-tensor parameters (uint8 by default).</summary>
    public Value Qdq(Value x, float scale, int zeroPoint, bool signed = false)
    {
        Tensor zp = signed ? new Tensor<sbyte>([(sbyte)zeroPoint], []) : new Tensor<byte>([(byte)zeroPoint], []);
        var s = Edit.AddInitializer("s", new Tensor<float>([scale], []));
        var z = Edit.AddInitializer("z", zp);
        var q = Node("QuantizeLinear", [x, s, z]);
        return Node("DequantizeLinear", [q, s, z]);
    }

    /// <summary>Symmetric int8 weights along <paramref name="axis"/> (per channel) or per tensor, behind a DequantizeLinear.</summary>
    public (Value Dq, float[] Scales) Weight(int[] shape, int axis, bool perChannel)
    {
        var w = Random(ShapeUtil.Product(shape), -1f, 1f);
        int channels = perChannel ? shape[axis] : 1;
        int inner = ShapeUtil.Product(shape.AsSpan(axis + 1));
        var scales = new float[channels];
        for (int i = 0; i < w.Length; i++)
        {
            int c = perChannel ? i / inner % shape[axis] : 0;
            scales[c] = Math.Max(scales[c], Math.Abs(w[i]) / 127f);
        }
        var q = new sbyte[w.Length];
        for (int i = 0; i < w.Length; i++)
        {
            int c = perChannel ? i / inner % shape[axis] : 0;
            q[i] = (sbyte)Math.Clamp(Math.Round(w[i] / scales[c]), -127, 127);
        }
        var wv = Edit.AddInitializer("w", new Tensor<sbyte>(q, shape));
        var sv = Edit.AddInitializer("ws", perChannel ? new Tensor<float>(scales, [channels]) : new Tensor<float>([scales[0]], []));
        var zv = Edit.AddInitializer("wz", perChannel ? new Tensor<sbyte>(new sbyte[channels], [channels]) : new Tensor<sbyte>([0], []));
        var dq = Node("DequantizeLinear", [wv, sv, zv], NodeAttribute.Of("axis", (long)axis));
        return (dq, scales);
    }

    /// <summary>An int32 bias with scale s_x·s_w[c] behind a DequantizeLinear.</summary>
    public Value Bias(int channels, float xScale, float[] wScales)
    {
        var b = Random(channels, -0.5f, 0.5f);
        var s = new float[channels];
        var q = new int[channels];
        for (int c = 0; c < channels; c++)
        {
            s[c] = xScale * wScales[wScales.Length == 1 ? 0 : c];
            q[c] = (int)Math.Round(b[c] / s[c]);
        }
        var qv = Edit.AddInitializer("b", new Tensor<int>(q, [channels]));
        var sv = Edit.AddInitializer("bs", new Tensor<float>(s, [channels]));
        return Node("DequantizeLinear", [qv, sv], NodeAttribute.Of("axis", 0L));
    }

    public Model Finish(params Value[] outputs)
    {
        foreach (var o in outputs) Edit.AddOutput(o);
        var m = new Model(Graph);
        m.SetOpset("", 21);
        return m;
    }

    public static Dictionary<string, Tensor> Run(Model model, Dictionary<string, Tensor> feeds, bool lowered,
        RequantizationMode mode = RequantizationMode.Float, int threads = 2)
    {
        using var s = new InferenceSession(model.Clone(), new SessionOptions
        {
            IntraOpThreads = threads,
            IntegerExecution = new IntegerExecutionOptions { Enabled = lowered, Requantization = mode },
        });
        return s.Run(feeds).ToDictionary(kv => kv.Key, kv => kv.Value);
    }
}
