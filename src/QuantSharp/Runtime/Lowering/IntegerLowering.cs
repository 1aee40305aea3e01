using QuantSharp.Quantization.Math;
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
public static partial class IntegerLowering
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
                "Add" or "Mul" => LowerBinary(rw, n) || LowerScalarConstantOp(rw, n),
                "Sub" or "Div" => LowerScalarConstantOp(rw, n),
                "LayerNormalization" => LowerLayerNorm(model, rw, n),
                "Concat" => LowerConcat(rw, n),
                "GlobalAveragePool" => LowerUnary(rw, n, "GlobalAveragePool", []),
                _ when DataMovementOps.Contains(n.OpType) => LowerDataMovement(rw, n),
                _ when TableOps.Contains(n.OpType) => LowerTable(rw, n),
                "Erf" => LowerErfGelu(rw, n),
                "Softmax" => LowerSoftmax(rw, n),
                _ => false,
            } || (n.Domain == "com.microsoft" && n.OpType == "Gelu" && LowerTable(rw, n));
            if (done) lowered++;
        }
        if (lowered > 0)
        {
            rw.RemoveUnused();
            FoldConstantDequantize(model, rw);
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
        if (x is not null && w is null && n.OpType == "MatMul") return LowerActivationMatMul(rw, n, x);
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
        var result = n.Output(0)!;
        if (n.OpType == "MatMul" && FollowingBiasAdd(rw, result, channels, out var mid) is var (add, addBias))
        {
            var q2 = QuantizeAfter(rw.Graph, add.Output(0)!, allowActivation: mid is null);
            if (mid is not null && q2 is not null && QuantParams(mid.Input(1), mid.Input(2)) is not null)
            {
                // MatMul → Q → DQ → Add(bias[C]) → Q: the Gemm writes the first Q's codes and maps them through a
                // per-channel table to the second Q's (IntGemmKernel inputs 9-11), reproducing both roundings.
                Replace(rw, n, "Gemm", [x.X, x.Scale, x.ZeroPoint, w.W, w.Scale, w.ZeroPoint, bias, mid.Input(1), mid.Input(2), addBias, q2.Scale, q2.ZeroPoint],
                    attributes, q2.Target);
                return true;
            }
            if (mid is null && q2 is not null)
            {
                // MatMul → Add(bias[C]) → Q with no rounding between: the bias joins the output stage.
                bias = addBias;
                result = add.Output(0)!;
            }
        }
        var q = QuantizeAfter(rw.Graph, result, allowActivation: true);
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

    /// <summary>
    /// DQ → Softmax(axis = −1) → Q as the integer Softmax (exponent from a 256-entry table). Only an explicit
    /// axis −1 is taken: it means the last axis under every opset's rules (before opset 13 the input is coerced to
    /// 2-D at the axis, which for the last axis is the same computation).
    /// </summary>
    private static bool LowerSoftmax(GraphRewriter rw, Node n) =>
        n.Attribute("axis") is not null && n.GetInt("axis", 1) == -1 && LowerUnary(rw, n, "Softmax", []);

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

    /// <summary>
    /// The exported exact GELU, y = x · 0.5 · (1 + erf(x / √2)), as PyTorch writes it: DQ(x) → Div(√2) (or
    /// Mul(1/√2)) → Erf → Add(1) → Mul(x) → Mul(0.5) → Q, the two Muls in either order and with either operand
    /// order, possibly with QuantizeLinear → DequantizeLinear pairs between the steps. The whole chain becomes one
    /// 256-entry <c>Lut</c> node (function Gelu) from x's scale/zero point to the final QuantizeLinear's; the
    /// intermediate roundings disappear, so the result is the exact GELU rounded once.
    /// </summary>
    private static bool LowerErfGelu(GraphRewriter rw, Node erf)
    {
        var g = rw.Graph;
        var div = erf.Input(0)?.Producer;
        if (div is null || div.Domain.Length != 0 || erf.Input(0)!.Uses.Count != 1) return false;
        const float Sqrt2 = 1.41421356f;
        if (!(ScalarConstant(div.Input(1)) is float c)) return false;
        if (!(div.OpType == "Div" && Near(c, Sqrt2) || div.OpType == "Mul" && Near(c, 1 / Sqrt2))) return false;
        var x = ActivationDq(div.Input(0));
        if (x is null) return false;
        var add = NextThroughQdq(g, erf.Output(0), out var addIn, out var qErf);
        if (add is not { Domain.Length: 0, OpType: "Add" } || !(ScalarConstant(Other(add, addIn)) is float one && one == 1f)) return false;
        var m1 = NextThroughQdq(g, add.Output(0), out var m1In, out var qAdd);
        if (m1 is not { Domain.Length: 0, OpType: "Mul" }) return false;
        var m2 = NextThroughQdq(g, m1.Output(0), out var m2In, out var qMul);
        if (m2 is not { Domain.Length: 0, OpType: "Mul" }) return false;
        var o1 = Other(m1, m1In);
        var o2 = Other(m2, m2In);
        bool xThenHalf = SameQuantized(o1, x) && ScalarConstant(o2) is 0.5f;
        bool halfThenX = ScalarConstant(o1) is 0.5f && SameQuantized(o2, x);
        if (!xThenHalf && !halfThenX) return false;
        var q = QuantizeAfter(g, m2.Output(0)!, allowActivation: false);
        if (q is null) return false;
        var steps = new[] { qErf, qAdd, qMul };
        var qdq = new (float Scale, int Zero, DataType Type)?[3];
        for (int i = 0; i < 3; i++)
        {
            if (steps[i] is null) continue;
            if (QuantParams(steps[i]!.Input(1), steps[i]!.Input(2)) is not { } pq) return false;
            qdq[i] = pq;
        }
        if (QuantParams(x.Scale, x.ZeroPoint) is not { } px || QuantParams(q.Scale, q.ZeroPoint) is not { } py) return false;
        var table = GeluChainTable(px, div.OpType == "Div", c, qdq, xThenHalf, py);
        Replace(rw, erf, "Lut", [x.X, x.Scale, x.ZeroPoint, q.Scale, q.ZeroPoint],
            [NodeAttribute.Of("function", "Table"), NodeAttribute.Of("table", table)], q.Target);
        return true;
    }

    /// <summary>Per-tensor 8-bit quantization parameters of constant scalar inputs (uint8 with zero point 0 when absent).</summary>
    private static (float Scale, int Zero, DataType Type)? QuantParams(Value? scale, Value? zero)
    {
        if (scale?.Initializer is not Tensor<float> { Length: 1 } s) return null;
        if (zero is null) return (s.Data[0], 0, DataType.UInt8);
        return zero.Initializer switch
        {
            Tensor<byte> { Length: 1 } u => (s.Data[0], u.Data[0], DataType.UInt8),
            Tensor<sbyte> { Length: 1 } b => (s.Data[0], b.Data[0], DataType.Int8),
            _ => null,
        };
    }

    /// <summary>
    /// The output code for each of the 256 input codes, computed by the same float operations the unlowered graph
    /// runs (DequantizeLinear, Div/Mul, the runtime's Erf, Add, the two Muls, every QuantizeLinear → DequantizeLinear
    /// pair in between, the final QuantizeLinear), so the table reproduces the QDQ graph exactly.
    /// </summary>
    private static long[] GeluChainTable((float Scale, int Zero, DataType Type) x, bool divide, float c,
        (float Scale, int Zero, DataType Type)?[] qdq, bool xThenHalf, (float Scale, int Zero, DataType Type) y)
    {
        var xv = new float[256];
        int inMin = QuantMath.Range(x.Type).Min;
        for (int i = 0; i < 256; i++) xv[i] = (float)(inMin + i - x.Zero) * x.Scale;
        var v = new float[256];
        for (int i = 0; i < 256; i++) v[i] = divide ? xv[i] / c : xv[i] * c;
        Operators.ActivationMath.Erf(v, v);
        RoundTrip(v, qdq[0]);
        for (int i = 0; i < 256; i++) v[i] += 1f;
        RoundTrip(v, qdq[1]);
        for (int i = 0; i < 256; i++) v[i] = xThenHalf ? v[i] * xv[i] : v[i] * 0.5f;
        RoundTrip(v, qdq[2]);
        for (int i = 0; i < 256; i++) v[i] = xThenHalf ? v[i] * 0.5f : v[i] * xv[i];
        var codes = Quantize(v, y);
        var table = new long[256];
        for (int i = 0; i < 256; i++) table[i] = codes[i];
        return table;
    }

    /// <summary>v = DequantizeLinear(QuantizeLinear(v)) with the runtime's kernels' float formulas; nothing when absent.</summary>
    private static void RoundTrip(float[] v, (float Scale, int Zero, DataType Type)? p)
    {
        if (p is not { } q) return;
        var codes = Quantize(v, q);
        for (int i = 0; i < v.Length; i++) v[i] = (float)(codes[i] - q.Zero) * q.Scale;
    }

    private static int[] Quantize(float[] v, (float Scale, int Zero, DataType Type) q)
    {
        var (qmin, qmax) = QuantMath.Range(q.Type);
        var bytes = new byte[v.Length];
        QuantizeLinearKernel.QuantizeToBytes(v, q.Scale, q.Zero, qmin, qmax, bytes);
        var r = new int[v.Length];
        for (int i = 0; i < v.Length; i++) r[i] = q.Type == DataType.Int8 ? (sbyte)bytes[i] : bytes[i];
        return r;
    }

    private static bool Near(float a, float b) => Math.Abs(a - b) <= 1e-5f * Math.Abs(b);

    /// <summary>The operand of a binary node other than <paramref name="v"/> (null when both are v).</summary>
    private static Value? Other(Node n, Value? v) => n.Input(0) == v ? (n.Input(1) == v ? null : n.Input(1)) : n.Input(0);

    /// <summary>
    /// The single reader of float value <paramref name="v"/>, looking through one QuantizeLinear → DequantizeLinear
    /// pair whose values have no other reader; <paramref name="input"/> is the value that reader takes.
    /// </summary>
    private static Node? NextThroughQdq(Graph.Graph g, Value? v, out Value? input) => NextThroughQdq(g, v, out input, out _);

    private static Node? NextThroughQdq(Graph.Graph g, Value? v, out Value? input, out Node? quantize)
    {
        input = v;
        quantize = null;
        if (v is null || v.Uses.Count != 1 || g.Outputs.Contains(v)) return null;
        var next = v.Uses[0].Node;
        if (next is { Domain.Length: 0, OpType: "QuantizeLinear" })
        {
            var qv = next.Output(0);
            if (qv is null || qv.Uses.Count != 1 || g.Outputs.Contains(qv) || !IsDq(qv.Uses[0].Node) || qv.Uses[0].InputIndex != 0) return null;
            var dv = qv.Uses[0].Node.Output(0);
            if (dv is null || dv.Uses.Count != 1 || g.Outputs.Contains(dv)) return null;
            input = dv;
            quantize = next;
            next = dv.Uses[0].Node;
        }
        return next;
    }

    /// <summary>Whether <paramref name="v"/> is a DequantizeLinear of the same 8-bit value with the same parameters as <paramref name="x"/>.</summary>
    private static bool SameQuantized(Value? v, QuantInput x)
    {
        var o = ActivationDq(v);
        if (o is null || o.X != x.X) return false;
        if (o.Scale.Initializer!.GetDouble(0) != x.Scale.Initializer!.GetDouble(0)) return false;
        return (o.ZeroPoint?.Initializer?.GetDouble(0) ?? 0) == (x.ZeroPoint?.Initializer?.GetDouble(0) ?? 0);
    }

    /// <summary>A float scalar constant: an initializer, a Constant node, or DequantizeLinear of a constant.</summary>
    private static float? ScalarConstant(Value? v)
    {
        if (v is null) return null;
        if (v.Initializer is Tensor<float> { Length: 1 } t) return t.Data[0];
        var p = v.Producer;
        if (p is { Domain.Length: 0, OpType: "Constant" } && p.Attribute("value")?.Tensor is Tensor<float> { Length: 1 } c) return c.Data[0];
        if (IsDq(p) && p!.Input(0)?.Initializer is { Length: 1 } qt && p.Input(1)?.Initializer is Tensor<float> { Length: 1 } st)
        {
            double z = p.Input(2)?.Initializer is { Length: 1 } zt ? zt.GetDouble(0) : 0;
            return (float)((qt.GetDouble(0) - z) * st.Data[0]);
        }
        return null;
    }

    /// <summary>
    /// The Add of a constant bias of <paramref name="channels"/> values (a float initializer, or DequantizeLinear of an
    /// integer one, dequantized here) that is the only reader of a MatMul result <paramref name="y"/>,
    /// directly or through one QuantizeLinear → DequantizeLinear pair, and does not raise the result's rank.
    /// </summary>
    private static (Node Add, Value Bias)? FollowingBiasAdd(GraphRewriter rw, Value y, int channels, out Node? quantize)
    {
        var add = NextThroughQdq(rw.Graph, y, out var input, out quantize);
        if (add is not { Domain.Length: 0, OpType: "Add" }) return null;
        var other = Other(add, input);
        var constant = other?.Initializer ?? (IsDq(other?.Producer) ? other!.Producer!.Input(0)?.Initializer : null);
        if (constant is null || constant.Length != channels || channels == 1 || constant.Shape[^1] != channels) return null;
        if (constant.Rank > 1 && (y.Type?.Rank is not int rank || constant.Rank > rank)) return null;
        if (other!.Initializer is Tensor<float>) return (add, other);
        // DequantizeLinear of an integer constant (the exporter's int8 or int32 bias): made float here.
        var dq = other.Producer!;
        if (constant is not (Tensor<byte> or Tensor<sbyte> or Tensor<short> or Tensor<ushort> or Tensor<int>)) return null;
        if (dq.Input(1)?.Initializer is not Tensor<float> st || (st.Length != 1 && st.Length != channels)) return null;
        if (st.Length != 1 && dq.GetInt("axis", 1) is var ax && ax != constant.Rank - 1 && ax != -1) return null;
        var zt = dq.Input(2)?.Initializer;
        if (zt is not null && zt.Length != 1 && zt.Length != channels) return null;
        int[] q = QuantTensorOps.ToInts(constant, "bias");
        int[] z = zt is null ? [0] : QuantTensorOps.ToInts(zt, "bias zero point");
        var b = new float[channels];
        for (int c = 0; c < channels; c++)
            b[c] = (float)((long)q[c] - z[z.Length == 1 ? 0 : c]) * st.Data[st.Length == 1 ? 0 : c];
        return (add, rw.AddInitializer(other.Name + "_float", new Tensor<float>(b, [channels])));
    }

    /// <summary>
    /// MatMul of two computed 8-bit activations (DQ(a) · DQ(b) → Q), as attention's
    /// Q·Kᵀ and P·V: one integer MatMulAct node.
    /// </summary>
    private static bool LowerActivationMatMul(GraphRewriter rw, Node n, QuantInput a)
    {
        var b = ActivationDq(n.Input(1));
        if (b is null) return false;
        var q = QuantizeAfter(rw.Graph, n.Output(0)!, allowActivation: false);
        if (q is null) return false;
        Replace(rw, n, "MatMulAct", [a.X, a.Scale, a.ZeroPoint, b.X, b.Scale, b.ZeroPoint, q.Scale, q.ZeroPoint], [], q.Target);
        return true;
    }
}
