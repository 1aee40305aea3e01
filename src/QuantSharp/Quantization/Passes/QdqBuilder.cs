using QuantSharp.Graph;
using QuantSharp.Quantization.Math;
using QuantSharp.Tensors;

namespace QuantSharp.Quantization.Passes;

/// <summary>
/// Builds QuantizeLinear/DequantizeLinear structures through a <see cref="GraphRewriter"/>: quantized weight
/// initializers with their DequantizeLinear, int32 biases, and Q/DQ pairs on activations. With
/// <paramref name="shortNames"/> the nodes it creates are named "Q", "D", "C" plus a counter (the values it creates
/// are renamed afterwards by <see cref="QdqCompaction.ShortenGeneratedNames"/>); otherwise names derive from the
/// quantized tensor (<c>w_q</c>, <c>w_s</c>, <c>w_z</c>, <c>w_DQ</c>, …).
/// </summary>
public sealed class QdqBuilder(GraphRewriter edit, bool shortNames = false)
{
    private readonly Dictionary<(Value, string), (Value Out, QuantParams Params)> _weights = [];

    public GraphRewriter Edit => edit;

    private string NodeName(string descriptive, string shortName) => shortNames ? shortName : descriptive;

    /// <summary>Codes of <paramref name="x"/> in the scheme's storage type (int8, uint8, int4, …).</summary>
    public static Tensor QuantizeToStorage(Tensor<float> x, QuantParams p) => QuantOps.ToStorage(QuantOps.Quantize(x, p), p.Scheme);

    /// <summary>The zero points as a tensor of the scheme's storage type and the scale's shape.</summary>
    public static Tensor ZeroPointTensor(QuantParams p) =>
        QuantOps.ToStorage(new Tensor<int>((int[])p.ZeroPoint.Clone(), (int[])p.ParamShape.Clone()), p.Scheme);

    /// <summary>
    /// Replaces the constant float weight <paramref name="w"/> as read by its consumers with
    /// DequantizeLinear(quantized w): parameters from the data under <paramref name="scheme"/> (per tensor, per axis or
    /// blocked). The same weight under the same scheme is quantized once. Returns the DequantizeLinear output.
    /// </summary>
    /// <remarks>
    /// With <paramref name="float16Scales"/> the scales are rounded to float16 before the codes are computed (so the
    /// codes match the stored scales) and stored as float16; DequantizeLinear (opset 19+) then yields float16, and a
    /// Cast to float follows. A tensor whose scales do not fit float16 (overflow, or a nonzero scale that underflows
    /// to zero) keeps float32 scales.
    /// </remarks>
    public (Value Out, QuantParams Params) Weight(Value w, QuantScheme scheme, bool float16Scales = false)
    {
        var key = (w, scheme.ToString() + (float16Scales ? "/f16" : ""));
        if (_weights.TryGetValue(key, out var done)) return done;
        var data = w.Initializer as Tensor<float> ?? throw new QuantSharpException($"weight '{w.Name}' is not a float initializer");
        var p = QuantParams.FromData(data.Data, data.Shape, scheme);
        bool half = float16Scales && RoundScalesToHalf(ref p);
        var outV = Dequantize(w.Name, QuantizeToStorage(data, p), p, w.Type, half);
        _weights[key] = (outV, p);
        return (outV, p);
    }

    /// <summary>Replaces every scale by its float16 value; false (and no change) when one does not fit float16.</summary>
    private static bool RoundScalesToHalf(ref QuantParams p)
    {
        var s = new float[p.Scale.Length];
        for (int i = 0; i < s.Length; i++)
        {
            float h = (float)(Half)p.Scale[i];
            // A scale of MinScale marks an all-zero group (its codes are 0 whatever the scale): 0 is fine there.
            if (!float.IsFinite(h) || (h == 0 && p.Scale[i] > QuantParams.MinScale)) return false;
            s[i] = h;
        }
        p = p with { Scale = s };
        return true;
    }

    /// <summary>
    /// Adds initializers for codes, scale and zero point and a DequantizeLinear reading them; returns its output.
    /// With <paramref name="float16Scales"/> the scale is stored as float16 and a Cast to float follows the DequantizeLinear.
    /// </summary>
    public Value Dequantize(string name, Tensor codes, QuantParams p, TensorTypeInfo? floatType, bool float16Scales = false)
    {
        var q = edit.AddInitializer(name + "_q", codes);
        Tensor scale = float16Scales
            ? new Tensor<Half>(p.Scale.Select(v => (Half)v).ToArray(), (int[])p.ParamShape.Clone())
            : p.ScaleTensor();
        var s = edit.AddInitializer(name + "_s", scale);
        // An all-zero zero point of a signed type is the default and is left out (saves bytes, same meaning).
        bool defaultZero = p.Scheme.Signed && p.ZeroPoint.All(z => z == 0);
        Value? z = defaultZero ? null : edit.AddInitializer(name + "_z", ZeroPointTensor(p));
        var attrs = new List<NodeAttribute>();
        if (p.Scheme.Granularity != QuantGranularity.PerTensor) attrs.Add(NodeAttribute.Of("axis", (long)p.Scheme.Axis));
        if (p.Scheme.Granularity == QuantGranularity.Blocked) attrs.Add(NodeAttribute.Of("block_size", (long)p.Scheme.BlockSize));
        var inputs = z is null ? new[] { q, s } : new[] { q, s, z };
        var dq = edit.AddNode("DequantizeLinear", inputs, name: NodeName(name + "_DQ", "D"), attributes: attrs, outputs: [edit.CreateValue(name + "_dq")]);
        var outV = dq.Output(0)!;
        outV.Type = floatType is null ? null : floatType with { ElementType = float16Scales ? DataType.Float16 : DataType.Float };
        if (!float16Scales) return outV;
        var cast = edit.AddNode("Cast", [outV], name: NodeName(name + "_Cast", "C"), attributes: [NodeAttribute.Of("to", (long)DataType.Float)],
            outputs: [edit.CreateValue(name + "_float")]);
        var f = cast.Output(0)!;
        f.Type = floatType is null ? null : floatType with { ElementType = DataType.Float };
        return f;
    }

    /// <summary>
    /// Bias as int32 codes with scale[c] = input_scale · weight_scale[c] and zero point 0 (what ONNX Runtime's
    /// QDQ Conv/Gemm fusion expects), followed by DequantizeLinear on axis 0.
    /// </summary>
    public Value Bias(Value b, float inputScale, QuantParams weight)
    {
        var data = b.Initializer as Tensor<float> ?? throw new QuantSharpException($"bias '{b.Name}' is not a float initializer");
        int c = data.Length;
        var scale = new float[c];
        var codes = new int[c];
        for (int i = 0; i < c; i++)
        {
            float ws = weight.Scale.Length == 1 ? weight.Scale[0] : weight.Scale[i];
            scale[i] = System.Math.Max(inputScale * ws, QuantParams.MinScale);
            codes[i] = QuantMath.RoundToInt32(data.Data[i] / (double)scale[i]);
        }
        bool perAxis = weight.Scale.Length != 1 && c > 1;
        var sTensor = perAxis ? new Tensor<float>(scale, [c]) : Tensor<float>.Scalar(scale[0]);
        var q = edit.AddInitializer(b.Name + "_q", new Tensor<int>(codes, (int[])data.Shape.Clone()));
        var s = edit.AddInitializer(b.Name + "_s", sTensor);
        // Zero point 0 is DequantizeLinear's default for int32 and is left out.
        var attrs = perAxis ? new[] { NodeAttribute.Of("axis", 0L) } : [];
        var dq = edit.AddNode("DequantizeLinear", [q, s], name: NodeName(b.Name + "_DQ", "D"), attributes: attrs, outputs: [edit.CreateValue(b.Name + "_dq")]);
        var outV = dq.Output(0)!;
        outV.Type = b.Type;
        return outV;
    }

    /// <summary>Stem for names derived from an activation: its producer's name when that node has one output, else its own name.</summary>
    public static string BaseName(Value v) =>
        v.Producer is { } p && p.Name.Length > 0 && p.Outputs.Count(o => o is not null) == 1 ? p.Name : v.Name;

    /// <summary>
    /// Inserts QuantizeLinear → DequantizeLinear after activation <paramref name="v"/>; every reader of v reads the
    /// DequantizeLinear output instead. A graph output keeps its name (it moves to the DequantizeLinear output).
    /// </summary>
    public Value ActivationQdq(Value v, Value scale, Value zeroPoint, DataType storage)
    {
        bool isOutput = edit.Graph.Outputs.Contains(v);
        string name = v.Name, baseName = BaseName(v);
        var q = edit.InsertAfter(v, "QuantizeLinear", [scale, zeroPoint], name: NodeName(baseName + "_Q", "Q"));
        var qOut = q.Output(0)!;
        edit.RenameValue(qOut, baseName + "_q");
        qOut.Type = v.Type is null ? null : v.Type with { ElementType = storage };
        var dq = edit.InsertAfter(qOut, "DequantizeLinear", [scale, zeroPoint], name: NodeName(baseName + "_DQ", "D"));
        var dqOut = dq.Output(0)!;
        edit.RenameValue(dqOut, baseName + "_dq");
        dqOut.Type = v.Type;
        if (isOutput)
        {
            edit.RenameValue(v, name + "_float");
            edit.RenameValue(dqOut, name);
        }
        return dqOut;
    }
}
