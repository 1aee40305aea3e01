using QuantSharp.Graph;
using QuantSharp.Quantization.Passes;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Lowering;

/// <summary>
/// Session-time fusions of float operators, applied by <see cref="InferenceSession"/> to a copy of the model so that
/// a convolution's output is written once instead of being re-read by per-element passes:
/// <list type="number">
/// <item>BatchNormalization (inference form, constant parameters) after a Conv with constant weights is folded into
/// the Conv (<see cref="GraphPasses.FoldBatchNormalization"/>: W' = W·k, b' = (b − mean)·k + B, k = scale / √(var + ε)).</item>
/// <item>A Relu, or a Clip with constant bounds, that is the only reader of a float Conv's output becomes the Conv's
/// epilogue: the pair is replaced by one Conv node in <see cref="Domain"/> with the Conv's inputs and attributes plus
/// <see cref="MinAttribute"/> / <see cref="MaxAttribute"/> (Relu: min 0), computing min(max(conv, min), max).</item>
/// <item>The exact-GELU chain exported by PyTorch, y = (x·(erf(x ⊘ c) + 1))·0.5 with ⊘ a Div or Mul by a constant
/// float scalar c (c = √2 or 1/√2), whose intermediate values each have one reader, becomes one Gelu node in
/// <see cref="Domain"/> carrying <see cref="ErfDivisorAttribute"/> or <see cref="ErfScaleAttribute"/>. It computes the
/// same float operations in the same order block by block (temporaries stay in L1), so results are bit-identical.</item>
/// <item>A MatMul with a constant float 2-D B [K, N] whose only reader is an Add of a constant float bias [N] becomes
/// one MatMul node in <see cref="Domain"/> with the bias as third input (y = bias + A·B in the SGEMM's accumulate mode,
/// saving a pass over y); the addition order differs, so results agree within float rounding.</item>
/// </list>
/// Values that are graph outputs are never fused away. Sessions with a value observer (calibration) are not fused,
/// since the observer must see every original value. BN folding changes float rounding slightly (the product W·k is
/// rounded once); activations fused into the epilogue give the same values as the separate Clip.
/// </summary>
public static class FloatFusion
{
    /// <summary>Operator domain of the fused float operators.</summary>
    public const string Domain = "quantsharp.float";

    /// <summary>Lower clamp bound of a fused Conv (float attribute; absent = no bound).</summary>
    public const string MinAttribute = "activation_min";

    /// <summary>Upper clamp bound of a fused Conv (float attribute; absent = no bound).</summary>
    public const string MaxAttribute = "activation_max";

    /// <summary>Fused Gelu: erf's argument is x / c (float attribute c).</summary>
    public const string ErfDivisorAttribute = "erf_divisor";

    /// <summary>Fused Gelu: erf's argument is x · c (float attribute c).</summary>
    public const string ErfScaleAttribute = "erf_scale";

    /// <summary>Whether the model has a float-domain Conv or Erf that a fusion could apply to.</summary>
    public static bool IsApplicable(Model model) =>
        model.Graph.Nodes.Any(n => n is { Domain.Length: 0, OpType: "Conv" } && n.Output(0) is { Uses.Count: 1 } y &&
            y.Uses[0].Node is { Domain.Length: 0, OpType: "BatchNormalization" or "Relu" or "Clip" }) ||
        model.Graph.Nodes.Any(n => n is { Domain.Length: 0, OpType: "Erf" } ||
            n is { Domain.Length: 0, OpType: "MatMul" } && n.Output(0) is { Uses.Count: 1 } y && y.Uses[0].Node is { Domain.Length: 0, OpType: "Add" });

    /// <summary>Applies the fusions in place; returns the number of nodes removed by them.</summary>
    public static int Apply(Model model)
    {
        int done = FoldBatchNorms(model);
        done += FuseActivations(model);
        done += FuseGelus(model);
        done += FuseMatMulBias(model);
        if (done > 0) model.Graph.Edit().RemoveUnused();
        return done;
    }

    /// <summary>BN folding, only where the Conv's output is float (the only type the folded weights apply to).</summary>
    private static int FoldBatchNorms(Model model)
    {
        bool any = model.Graph.Nodes.Any(n => n is { Domain.Length: 0, OpType: "BatchNormalization" } &&
            n.Input(0)?.Producer is { Domain.Length: 0, OpType: "Conv" } conv && conv.Input(1)?.Initializer is Tensor<float>);
        return any ? GraphPasses.FoldBatchNormalization(model) : 0;
    }

    private static int FuseActivations(Model model)
    {
        var g = model.Graph;
        var rw = g.Edit();
        int fused = 0;
        foreach (var conv in g.Nodes.ToArray())
        {
            if (conv is not { Domain.Length: 0, OpType: "Conv" } || conv.Owner is null) continue;
            var y = conv.Output(0);
            if (y is null || y.Uses.Count != 1 || g.Outputs.Contains(y) || conv.Outputs.Count != 1) continue;
            if (y.Type is { } t && t.ElementType != DataType.Float) continue;
            var act = y.Uses[0].Node;
            if (act.Domain.Length != 0 || y.Uses[0].InputIndex != 0) continue;
            float lo, hi;
            if (act.OpType == "Relu") (lo, hi) = (0f, float.PositiveInfinity);
            else if (act.OpType != "Clip" || !ClipBounds(model, act, out lo, out hi)) continue;
            var outV = act.Output(0);
            if (outV is null) continue;

            string name = outV.Name;
            var fusedOut = rw.CreateValue(name + "_fused", outV.Type);
            var attrs = conv.Attributes.Values.ToList();
            if (!float.IsNegativeInfinity(lo)) attrs.Add(NodeAttribute.Of(MinAttribute, lo));
            if (!float.IsPositiveInfinity(hi)) attrs.Add(NodeAttribute.Of(MaxAttribute, hi));
            rw.AddNode("Conv", conv.Inputs, name: conv.Name + "_" + act.OpType, domain: Domain, attributes: attrs,
                before: conv, outputs: [fusedOut]);
            rw.ReplaceAllUses(outV, fusedOut);
            rw.RemoveNode(act);
            rw.RemoveNode(conv);
            rw.RenameValue(fusedOut, name);
            fused++;
        }
        if (fused > 0) model.SetOpset(Domain, 1);
        return fused;
    }

    /// <summary>
    /// Finds t = x ⊘ c → Erf → Add 1 → Mul x → Mul 0.5 (commuted operands accepted) and replaces the five nodes by one
    /// fused Gelu node; every intermediate value must have exactly one reader and not be a graph output.
    /// </summary>
    private static int FuseGelus(Model model)
    {
        var g = model.Graph;
        var rw = g.Edit();
        int fused = 0;
        foreach (var erf in g.Nodes.ToArray())
        {
            if (erf is not { Domain.Length: 0, OpType: "Erf" } || erf.Owner is null) continue;
            if (erf.Input(0) is not { } t || t.Producer is not { Domain.Length: 0, OpType: "Div" or "Mul" } pre) continue;
            if (!SingleReader(g, t, erf) || pre.Inputs.Count != 2) continue;
            Value? x;
            float c;
            string cAttr;
            if (pre.OpType == "Div")
            {
                if (!ScalarConstant(pre.Input(1), out c)) continue;
                x = pre.Input(0);
                cAttr = ErfDivisorAttribute;
            }
            else
            {
                int ci = ScalarConstant(pre.Input(1), out c) ? 1 : ScalarConstant(pre.Input(0), out c) ? 0 : -1;
                if (ci < 0) continue;
                x = pre.Input(1 - ci);
                cAttr = ErfScaleAttribute;
            }
            if (x is null || x.Type is { ElementType: not DataType.Float }) continue;
            if (erf.Output(0) is not { } e || e.Uses.Count != 1) continue;
            var add = e.Uses[0].Node;
            if (add is not { Domain.Length: 0, OpType: "Add" } || add.Inputs.Count != 2 || !SingleReader(g, e, add)) continue;
            if (!ScalarConstant(add.Input(1 - e.Uses[0].InputIndex), out float one) || one != 1f) continue;
            var a = add.Output(0)!;
            if (a.Uses.Count != 1) continue;
            var mul = a.Uses[0].Node;
            if (mul is not { Domain.Length: 0, OpType: "Mul" } || mul.Inputs.Count != 2 || !SingleReader(g, a, mul)) continue;
            if (mul.Input(1 - a.Uses[0].InputIndex) != x) continue;
            var m = mul.Output(0)!;
            if (m.Uses.Count != 1) continue;
            var half = m.Uses[0].Node;
            if (half is not { Domain.Length: 0, OpType: "Mul" } || half.Inputs.Count != 2 || !SingleReader(g, m, half)) continue;
            if (!ScalarConstant(half.Input(1 - m.Uses[0].InputIndex), out float h) || h != 0.5f) continue;
            if (half.Output(0) is not { } outV) continue;

            string name = outV.Name;
            var fusedOut = rw.CreateValue(name + "_fused", outV.Type);
            rw.AddNode("Gelu", [x], name: erf.Name + "_gelu", domain: Domain, attributes: [NodeAttribute.Of(cAttr, c)],
                before: pre, outputs: [fusedOut]);
            rw.ReplaceAllUses(outV, fusedOut);
            rw.RemoveNode(half);
            rw.RemoveNode(mul);
            rw.RemoveNode(add);
            rw.RemoveNode(erf);
            rw.RemoveNode(pre);
            rw.RenameValue(fusedOut, name);
            fused++;
        }
        if (fused > 0) model.SetOpset(Domain, 1);
        return fused;
    }

    /// <summary>MatMul(A, W const [K, N]) → Add(·, bias const [N]) (either Add operand order) → fused MatMul(A, W, bias).</summary>
    private static int FuseMatMulBias(Model model)
    {
        var g = model.Graph;
        var rw = g.Edit();
        int fused = 0;
        foreach (var mm in g.Nodes.ToArray())
        {
            if (mm is not { Domain.Length: 0, OpType: "MatMul" } || mm.Owner is null || mm.Inputs.Count != 2) continue;
            if (GraphPasses.ConstantOf(mm.Input(1)) is not Tensor<float> { Rank: 2 } w) continue;
            if (mm.Output(0) is not { } y || y.Uses.Count != 1) continue;
            var add = y.Uses[0].Node;
            if (add is not { Domain.Length: 0, OpType: "Add" } || add.Inputs.Count != 2 || !SingleReader(g, y, add)) continue;
            var biasV = add.Input(1 - y.Uses[0].InputIndex);
            if (GraphPasses.ConstantOf(biasV) is not Tensor<float> { Rank: 1 } bias || bias.Length != w.Shape[1]) continue;
            if (add.Output(0) is not { } outV) continue;

            string name = outV.Name;
            var fusedOut = rw.CreateValue(name + "_fused", outV.Type);
            rw.AddNode("MatMul", [mm.Input(0)!, mm.Input(1)!, biasV!], name: mm.Name + "_bias", domain: Domain,
                before: mm, outputs: [fusedOut]);
            rw.ReplaceAllUses(outV, fusedOut);
            rw.RemoveNode(add);
            rw.RemoveNode(mm);
            rw.RenameValue(fusedOut, name);
            fused++;
        }
        if (fused > 0) model.SetOpset(Domain, 1);
        return fused;
    }

    /// <summary>v is read by node only (one use, one output) and is not a graph output.</summary>
    private static bool SingleReader(Graph.Graph g, Value v, Node node) =>
        v.Uses.Count == 1 && v.Uses[0].Node == node && node.Outputs.Count == 1 && !g.Outputs.Contains(v);

    /// <summary>A constant float scalar (rank 0, so broadcasting it never changes the other operand's shape).</summary>
    private static bool ScalarConstant(Value? v, out float c)
    {
        c = 0;
        if (GraphPasses.ConstantOf(v) is not Tensor<float> { Length: 1 } t || t.Shape.Length != 0) return false;
        c = t.Data[0];
        return true;
    }

    /// <summary>
    /// Constant float bounds of a Clip: attributes min / max before opset 11, optional scalar inputs 1 and 2 from
    /// opset 11 (absent = unbounded). False when a bound is not a constant float scalar.
    /// </summary>
    private static bool ClipBounds(Model model, Node clip, out float lo, out float hi)
    {
        lo = float.NegativeInfinity;
        hi = float.PositiveInfinity;
        if (OperatorRegistry.OpsetFor(model, clip) < 11)
        {
            lo = clip.GetFloat("min", float.MinValue);
            hi = clip.GetFloat("max", float.MaxValue);
            return true;
        }
        for (int i = 1; i <= 2; i++)
        {
            var v = clip.Input(i);
            if (v is null) continue;
            if (GraphPasses.ConstantOf(v) is not Tensor<float> { Length: 1 } t) return false;
            if (i == 1) lo = t.Data[0];
            else hi = t.Data[0];
        }
        return true;
    }
}
