using QuantSharp.Graph;
using QuantSharp.Runtime.Operators.Quantization;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Lowering;

/// <summary>
/// Rewrites a quantized (QDQ) model so that it executes in the integer domain: every
/// DequantizeLinear → op → QuantizeLinear pattern whose op has an integer kernel becomes one node of
/// <see cref="Domain"/> reading the 8-bit input directly and writing the 8-bit output (Relu / Clip between the op
/// and the QuantizeLinear fold into the output clamp). Weights come from DequantizeLinear of constant int8
/// initializers, biases from DequantizeLinear of int32 initializers (or float). A Conv / Gemm / MatMul whose result
/// is not quantized again computes its float output directly. DequantizeLinear nodes stay only where a float
/// op still reads them; everything no longer read is removed. Edits go through <see cref="GraphRewriter"/>.
/// </summary>
public static class IntegerLowering
{
    /// <summary>Operator domain of the integer operators.</summary>
    public const string Domain = "quantsharp.int";

    /// <summary>Single-input ops that only move or select 8-bit values; they run on the quantized tensor unchanged.</summary>
    private static readonly HashSet<string> DataMovementOps = ["MaxPool", "GlobalMaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity"];

    /// <summary>Single-input functions computed as a 256-entry table.</summary>
    private static readonly HashSet<string> TableOps = ["Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "Gelu", "Relu", "LeakyRelu", "Clip", "Elu", "Softplus"];

    /// <summary>Whether the model has quantized patterns worth lowering (it contains DequantizeLinear nodes).</summary>
    public static bool IsApplicable(Model model) => model.Graph.Nodes.Any(n => n.Domain.Length == 0 && n.OpType == "DequantizeLinear");

    /// <summary>Lowers every recognised pattern in place; returns the number of integer nodes created.</summary>
    public static int Apply(Model model, IntegerExecutionOptions? options = null)
    {
        var g = model.Graph;
        var rw = g.Edit();
        rw.SortTopologically();
        int lowered = 0;
        foreach (var n in g.Nodes.ToArray())
        {
            if (n.Owner is null) continue;
            bool done = n.Domain.Length == 0 && n.OpType switch
            {
                "Conv" => LowerConvOrGemm(rw, n, isConv: true),
                "Gemm" or "MatMul" => LowerConvOrGemm(rw, n, isConv: false),
                "Add" or "Mul" => LowerBinary(rw, n),
                "Concat" => LowerConcat(rw, n),
                "GlobalAveragePool" => LowerUnary(rw, n, "GlobalAveragePool", []),
                _ when DataMovementOps.Contains(n.OpType) => LowerDataMovement(rw, n),
                _ when TableOps.Contains(n.OpType) => LowerTable(rw, n),
                _ => false,
            } || (n.Domain == "com.microsoft" && n.OpType == "Gelu" && LowerTable(rw, n));
            if (done) lowered++;
        }
        if (lowered > 0)
        {
            rw.RemoveUnused();
            model.SetOpset(Domain, 1);
            rw.SortTopologically();
        }
        return lowered;
    }

    private sealed record QuantInput(Value X, Value Scale, Value? ZeroPoint);

    private sealed record QuantOutput(Value Target, Value Scale, Value? ZeroPoint, float? ActMin, float? ActMax);

    private sealed record Weight(Value W, Value Scale, Value? ZeroPoint, long Axis);

    private static bool IsDq(Node? n) => n is { Domain.Length: 0, OpType: "DequantizeLinear" } && n.GetInt("block_size", 0) == 0;

    private static bool IsScalarConst(Value? v) => v?.Initializer is { Length: 1 };

    private static bool Is8Bit(Tensor? t) => t is Tensor<byte> or Tensor<sbyte>;

    /// <summary>A per-tensor DequantizeLinear of an 8-bit value (computed, or a constant when allowed).</summary>
    private static QuantInput? ActivationDq(Value? v, bool allowConstant = false)
    {
        var dq = v?.Producer;
        if (!IsDq(dq)) return null;
        var x = dq!.Input(0);
        if (x is null || (x.IsInitializer && !(allowConstant && Is8Bit(x.Initializer)))) return null;
        if (x.Type?.ElementType is { } et && et != DataType.Undefined && et != DataType.UInt8 && et != DataType.Int8) return null;
        var s = dq.Input(1);
        var z = dq.Input(2);
        if (!IsScalarConst(s) || s!.Initializer is not Tensor<float>) return null;
        if (z is not null && (!IsScalarConst(z) || !Is8Bit(z.Initializer))) return null;
        if (z is null && x.Type?.ElementType != DataType.UInt8 && x.Initializer is not Tensor<byte>) return null;
        return new QuantInput(x, s, z);
    }

    /// <summary>DequantizeLinear of a constant int8 weight (per tensor or per channel along one axis).</summary>
    private static Weight? WeightDq(Value? v)
    {
        var dq = v?.Producer;
        if (!IsDq(dq) || dq!.Input(0)?.Initializer is not Tensor<sbyte> w) return null;
        var s = dq.Input(1);
        var z = dq.Input(2);
        if (s?.Initializer is not Tensor<float> st || st.Rank > 1) return null;
        if (z is not null && z.Initializer is not Tensor<sbyte>) return null;
        long axis = dq.GetInt("axis", 1);
        if (axis < 0) axis += w.Rank;
        if (st.Length > 1 && (axis >= w.Rank || w.Shape[axis] != st.Length)) return null;
        return new Weight(dq.Input(0)!, s, z, axis);
    }

    /// <summary>The bias as a float initializer: a float constant, or DequantizeLinear of an int32 constant (made float here).</summary>
    private static bool TryBias(GraphRewriter rw, Value? v, int channels, out Value? bias)
    {
        bias = null;
        if (v is null) return true;
        if (v.Initializer is Tensor<float> f) { bias = f.Length is 1 || f.Length == channels ? v : null; return bias is not null; }
        var dq = v.Producer;
        if (!IsDq(dq) || dq!.Input(0)?.Initializer is not Tensor<int> q || q.Length != channels) return false;
        if (dq.Input(1)?.Initializer is not Tensor<float> s || (s.Length != 1 && s.Length != channels)) return false;
        var zt = dq.Input(2)?.Initializer;
        int[] z = zt is null ? [0] : QuantTensorOps.ToInts(zt, "bias zero point");
        if (z.Length != 1 && z.Length != channels) return false;
        var b = new float[channels];
        for (int c = 0; c < channels; c++)
            b[c] = (float)((long)q.Data[c] - z[z.Length == 1 ? 0 : c]) * s.Data[s.Length == 1 ? 0 : c];
        bias = rw.AddInitializer(v.Name + "_float", new Tensor<float>(b, [channels]));
        return true;
    }

    /// <summary>
    /// The QuantizeLinear that is the only reader of <paramref name="y"/> (optionally through one Relu or Clip with
    /// constant bounds, folded into the clamp), with per-tensor constant parameters.
    /// </summary>
    private static QuantOutput? QuantizeAfter(Graph.Graph g, Value y, bool allowActivation)
    {
        float? lo = null, hi = null;
        if (y.Uses.Count != 1 || g.Outputs.Contains(y)) return null;
        var next = y.Uses[0].Node;
        if (allowActivation && next.Domain.Length == 0 && next.OpType is "Relu" or "Clip")
        {
            if (next.OpType == "Relu") lo = 0;
            else if (!ClipBounds(next, out lo, out hi)) return null;
            y = next.Output(0)!;
            if (y is null || y.Uses.Count != 1 || g.Outputs.Contains(y)) return null;
            next = y.Uses[0].Node;
        }
        if (next is not { Domain.Length: 0, OpType: "QuantizeLinear" } || y.Uses[0].InputIndex != 0) return null;
        if (next.GetInt("block_size", 0) != 0) return null;
        var s = next.Input(1);
        var z = next.Input(2);
        if (!IsScalarConst(s) || s!.Initializer is not Tensor<float>) return null;
        if (z is null ? next.Attribute("output_dtype") is { } a && a.Int != (long)DataType.UInt8 : !IsScalarConst(z) || !Is8Bit(z.Initializer)) return null;
        return new QuantOutput(next.Output(0)!, s, z, lo, hi);
    }

    private static bool ClipBounds(Node clip, out float? lo, out float? hi)
    {
        lo = hi = null;
        if (clip.Attribute("min") is { } mn) lo = mn.Float;
        if (clip.Attribute("max") is { } mx) hi = mx.Float;
        for (int i = 1; i <= 2; i++)
        {
            var v = clip.Input(i);
            if (v is null) continue;
            if (v.Initializer is not Tensor<float> { Length: 1 } t) return false;
            if (i == 1) lo = t.Data[0];
            else hi = t.Data[0];
        }
        return true;
    }

    /// <summary>Adds the integer node and makes every reader of <paramref name="target"/> read its output (which takes the target's name).</summary>
    private static void Replace(GraphRewriter rw, Node original, string opType, IEnumerable<Value?> inputs, IEnumerable<NodeAttribute> attributes, Value target)
    {
        string name = target.Name;
        var type = target.Type;
        rw.RenameValue(target, name + "_qdq");
        var output = rw.CreateValue(name, type);
        rw.AddNode(opType, inputs, name: original.Name + "_int", domain: Domain, attributes: attributes, outputs: [output]);
        rw.ReplaceAllUses(target, output);
    }

    private static IEnumerable<NodeAttribute> ActivationAttributes(float? lo, float? hi)
    {
        if (lo is float l) yield return NodeAttribute.Of("act_min", l);
        if (hi is float h) yield return NodeAttribute.Of("act_max", h);
    }

    private static bool LowerConvOrGemm(GraphRewriter rw, Node n, bool isConv)
    {
        var x = ActivationDq(n.Input(0));
        var w = WeightDq(n.Input(1));
        if (x is null || w is null) return false;
        var wt = w.W.Initializer!;
        int channels;
        var attributes = new List<NodeAttribute>();
        if (isConv)
        {
            if (wt.Rank < 3 || (wt.Rank - 2) > 3) return false;
            channels = wt.Shape[0];
            if (w.Scale.Initializer!.Length > 1 && w.Axis != 0) return false;
            attributes.AddRange(n.Attributes.Values);
        }
        else
        {
            if (wt.Rank != 2) return false;
            bool transB = false;
            if (n.OpType == "Gemm")
            {
                if (n.GetInt("transA", 0) != 0 || n.GetFloat("alpha", 1f) != 1f || n.GetFloat("beta", 1f) != 1f) return false;
                if (n.Input(0)!.Type?.Shape is { Length: not 2 }) return false;
                transB = n.GetInt("transB", 0) != 0;
            }
            channels = transB ? wt.Shape[0] : wt.Shape[1];
            if (w.Scale.Initializer!.Length > 1 && w.Axis != (transB ? 0 : 1)) return false;
            attributes.Add(NodeAttribute.Of("trans_b", transB ? 1L : 0L));
        }
        if (!TryBias(rw, n.OpType == "MatMul" ? null : n.Input(2), channels, out var bias)) return false;
        var q = QuantizeAfter(rw.Graph, n.Output(0)!, allowActivation: true);
        attributes.AddRange(ActivationAttributes(q?.ActMin, q?.ActMax));
        var target = q?.Target ?? n.Output(0)!;
        Replace(rw, n, isConv ? "Conv" : "Gemm",
            [x.X, x.Scale, x.ZeroPoint, w.W, w.Scale, w.ZeroPoint, bias, q?.Scale, q?.ZeroPoint], attributes, target);
        return true;
    }

    private static bool LowerBinary(GraphRewriter rw, Node n)
    {
        var a = ActivationDq(n.Input(0), allowConstant: true);
        var b = ActivationDq(n.Input(1), allowConstant: true);
        if (a is null || b is null || a.X.IsInitializer && b.X.IsInitializer) return false;
        var q = QuantizeAfter(rw.Graph, n.Output(0)!, allowActivation: n.OpType == "Add");
        if (q is null) return false;
        Replace(rw, n, n.OpType, [a.X, a.Scale, a.ZeroPoint, b.X, b.Scale, b.ZeroPoint, q.Scale, q.ZeroPoint],
            ActivationAttributes(q.ActMin, q.ActMax), q.Target);
        return true;
    }

    private static bool LowerConcat(GraphRewriter rw, Node n)
    {
        var inputs = n.Inputs.Select(v => ActivationDq(v, allowConstant: true)).ToArray();
        if (inputs.Length == 0 || inputs.Any(i => i is null)) return false;
        var q = QuantizeAfter(rw.Graph, n.Output(0)!, allowActivation: false);
        if (q is null) return false;
        Replace(rw, n, "Concat", [q.Scale, q.ZeroPoint, .. inputs.SelectMany(i => new[] { i!.X, i.Scale, i.ZeroPoint })],
            [NodeAttribute.Of("axis", n.GetInt("axis", 0))], q.Target);
        return true;
    }

    private static bool LowerUnary(GraphRewriter rw, Node n, string opType, IEnumerable<NodeAttribute> attributes)
    {
        var x = ActivationDq(n.Input(0));
        if (x is null || n.Outputs.Count != 1) return false;
        var q = QuantizeAfter(rw.Graph, n.Output(0)!, allowActivation: false);
        if (q is null) return false;
        Replace(rw, n, opType, [x.X, x.Scale, x.ZeroPoint, q.Scale, q.ZeroPoint], attributes, q.Target);
        return true;
    }

    private static bool LowerTable(GraphRewriter rw, Node n)
    {
        var attributes = new List<NodeAttribute> { NodeAttribute.Of("function", n.OpType) };
        foreach (var key in new[] { "alpha", "beta", "approximate" })
            if (n.Attribute(key) is { } a) attributes.Add(a);
        if (n.OpType == "Clip")
        {
            if (!ClipBounds(n, out var lo, out var hi)) return false;
            if (lo is float l) attributes.Add(NodeAttribute.Of("min", l));
            if (hi is float h) attributes.Add(NodeAttribute.Of("max", h));
        }
        if (n.Inputs.Skip(1).Any(v => v is not null) && n.OpType != "Clip") return false;
        return LowerUnary(rw, n, "Lut", attributes);
    }

    /// <summary>
    /// An op that only moves values (MaxPool, Flatten, Reshape, …) between a DequantizeLinear and a QuantizeLinear
    /// with the same parameters runs on the 8-bit tensor itself: the same op, now reading the quantized input.
    /// </summary>
    private static bool LowerDataMovement(GraphRewriter rw, Node n)
    {
        var x = ActivationDq(n.Input(0));
        if (x is null || n.Outputs.Skip(1).Any(o => o is not null)) return false;
        var q = QuantizeAfter(rw.Graph, n.Output(0)!, allowActivation: false);
        if (q is null) return false;
        if (x.Scale.Initializer!.GetDouble(0) != q.Scale.Initializer!.GetDouble(0)) return false;
        var xz = x.ZeroPoint?.Initializer;
        var qz = q.ZeroPoint?.Initializer;
        if ((xz?.DataType ?? DataType.UInt8) != (qz?.DataType ?? DataType.UInt8) || (xz?.GetDouble(0) ?? 0) != (qz?.GetDouble(0) ?? 0)) return false;
        string name = q.Target.Name;
        var type = q.Target.Type;
        rw.RenameValue(q.Target, name + "_qdq");
        var output = rw.CreateValue(name, type);
        // MaxPool gets the integer-domain kernel (vectorised 8-bit windows); the others keep their own operator.
        string domain = n.OpType == "MaxPool" ? Domain : n.Domain;
        rw.AddNode(n.OpType, [x.X, .. n.Inputs.Skip(1)], name: n.Name + "_int", domain: domain, attributes: n.Attributes.Values, outputs: [output]);
        rw.ReplaceAllUses(q.Target, output);
        return true;
    }
}
