using QuantSharp.Graph;
using QuantSharp.Quantization.Math;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Lowering;

/// <summary>
/// Lowerings for transformer blocks (LayerNormalization, scalar scaling of attention scores) and the folding of
/// DequantizeLinear nodes of constants, which would otherwise run on every inference.
/// </summary>
public static partial class IntegerLowering
{
    /// <summary>
    /// DQ(x) → LayerNormalization(scale, bias constant) → Q becomes one <see cref="IntLayerNormKernel"/> node. The
    /// scale and bias may be float initializers or DequantizeLinear of constants (evaluated here with the runtime's
    /// DequantizeLinear kernel). Only the Y output may be used (Mean / InvStdDev absent or unread).
    /// </summary>
    private static bool LowerLayerNorm(Model model, GraphRewriter rw, Node n)
    {
        if (n.Outputs.Skip(1).Any(o => o is not null && o.Uses.Count > 0) || n.Outputs.Skip(1).Any(o => o is not null && rw.Graph.Outputs.Contains(o)))
            return false;
        if (n.GetInt("stash_type", 1) != 1) return false;
        var x = ActivationDq(n.Input(0));
        if (x is null) return false;
        var scale = ConstantFloat(model, rw, n.Input(1));
        var bias = n.Input(2) is null ? null : ConstantFloat(model, rw, n.Input(2));
        if (scale is null || (n.Input(2) is not null && bias is null)) return false;
        if (scale.Initializer!.Rank > 1 || bias?.Initializer!.Rank > 1) return false;
        var q = QuantizeAfter(rw.Graph, n.Output(0)!, allowActivation: false);
        if (q is null) return false;
        var attributes = new List<NodeAttribute> { NodeAttribute.Of("axis", n.GetInt("axis", -1)), NodeAttribute.Of("epsilon", n.GetFloat("epsilon", 1e-5f)) };
        Replace(rw, n, "LayerNormalization", [x.X, x.Scale, x.ZeroPoint, scale, bias, q.Scale, q.ZeroPoint], attributes, q.Target);
        return true;
    }

    /// <summary>
    /// DQ(x) → Add / Sub / Mul / Div with a scalar constant → Q (attention's score scaling, a shift or a rescale)
    /// becomes one 256-entry <c>Lut</c> (function Table): each input code's value is computed with the unlowered
    /// graph's float operations (DequantizeLinear's product, the binary op in float, QuantizeLinear), so the codes
    /// equal the QDQ graph's exactly. The constant must not raise the rank of the result.
    /// </summary>
    private static bool LowerScalarConstantOp(GraphRewriter rw, Node n)
    {
        if (n.Domain.Length != 0 || n.OpType is not ("Add" or "Sub" or "Mul" or "Div") || n.Inputs.Count != 2) return false;
        int at = ActivationDq(n.Input(0)) is not null ? 0 : ActivationDq(n.Input(1)) is not null ? 1 : -1;
        if (at < 0) return false;
        var x = ActivationDq(n.Input(at))!;
        var cv = n.Input(1 - at);
        if (ScalarConstant(cv) is not float c || ConstantRank(cv) is not int cRank) return false;
        if (cRank > 0 && (x.X.Type?.Rank is not int xRank || cRank > xRank)) return false;
        var q = QuantizeAfter(rw.Graph, n.Output(0)!, allowActivation: false);
        if (q is null) return false;
        if (QuantParams(x.Scale, x.ZeroPoint) is not { } px || QuantParams(q.Scale, q.ZeroPoint) is not { } py) return false;
        var v = new float[256];
        int inMin = QuantMath.Range(px.Type).Min;
        for (int i = 0; i < 256; i++)
        {
            // DequantizeLinear's float product, then the op in float with the operands in the graph's order.
            float xv = (float)(inMin + i - px.Zero) * px.Scale;
            float a = at == 0 ? xv : c, b = at == 0 ? c : xv;
            v[i] = n.OpType switch { "Add" => a + b, "Sub" => a - b, "Mul" => a * b, _ => a / b };
        }
        var codes = Quantize(v, py);
        var table = new long[256];
        for (int i = 0; i < 256; i++) table[i] = codes[i];
        Replace(rw, n, "Lut", [x.X, x.Scale, x.ZeroPoint, q.Scale, q.ZeroPoint],
            [NodeAttribute.Of("function", "Table"), NodeAttribute.Of("table", table)], q.Target);
        return true;
    }

    /// <summary>Rank of a constant: an initializer, a Constant node's value, or DequantizeLinear of an initializer.</summary>
    private static int? ConstantRank(Value? v)
    {
        if (v?.Initializer is { } t) return t.Rank;
        var p = v?.Producer;
        if (p is { Domain.Length: 0, OpType: "Constant" } && p.Attribute("value")?.Tensor is { } ct) return ct.Rank;
        if (IsDq(p) && p!.Input(0)?.Initializer is { } qt) return qt.Rank;
        return null;
    }

    /// <summary>A float initializer for <paramref name="v"/>: v itself, or a folded DequantizeLinear of constants; null otherwise.</summary>
    private static Value? ConstantFloat(Model model, GraphRewriter rw, Value? v)
    {
        if (v?.Initializer is Tensor<float>) return v;
        var p = v?.Producer;
        if (p is null || !IsDq(p) || EvaluateConstantDequantize(model, p) is not Tensor<float> t) return null;
        return rw.AddInitializer(v!.Name + "_float", t);
    }

    /// <summary>
    /// Replaces every DequantizeLinear whose inputs are all initializers (and whose output is not a graph output)
    /// by its value, computed once with the runtime's DequantizeLinear kernel; returns how many were folded.
    /// </summary>
    private static int FoldConstantDequantize(Model model, GraphRewriter rw)
    {
        var g = rw.Graph;
        int folded = 0;
        // Subgraphs may read outer values by name, which the rewriter does not see: leave such models alone.
        if (g.Nodes.Any(n => n.Attributes.Values.Any(a => a.Kind is AttributeKind.Graph or AttributeKind.Graphs))) return 0;
        foreach (var n in g.Nodes.ToArray())
        {
            if (n.Owner is null || n.Domain.Length != 0 || n.OpType != "DequantizeLinear") continue;
            var y = n.Output(0);
            if (y is null || g.Outputs.Contains(y) || y.Uses.Count == 0) continue;
            if (EvaluateConstantDequantize(model, n) is not { } t) continue;
            var init = rw.AddInitializer(y.Name + "_const", t);
            rw.ReplaceAllUses(y, init);
            folded++;
        }
        return folded;
    }

    /// <summary>The output of a DequantizeLinear node whose inputs are all initializers, by the runtime kernel; null if it cannot be evaluated.</summary>
    private static Tensor? EvaluateConstantDequantize(Model model, Node dq)
    {
        if (dq.Inputs.Any(i => i is not null && !i.IsInitializer) || dq.Input(0) is null || dq.Input(1) is null) return null;
        var kernel = OperatorRegistry.Default.TryCreate(model, dq);
        if (kernel is null) return null;
        try
        {
            var options = new SessionOptions { IntraOpThreads = 1 };
            kernel.Initialize(new KernelInitContext(dq, options));
            var ctx = new KernelContext(new TensorPool(), 1)
            {
                Node = dq,
                Inputs = dq.Inputs.Select(i => i?.Initializer).ToArray(),
                Outputs = new Tensor?[dq.Outputs.Count],
            };
            kernel.Compute(ctx);
            return ctx.Outputs[0];
        }
        catch (QuantSharpException)
        {
            // Invalid parameters: leave the node, so the session reports the error where it runs.
            return null;
        }
    }
}
