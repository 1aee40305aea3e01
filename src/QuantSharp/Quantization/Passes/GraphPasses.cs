using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Quantization.Passes;

/// <summary>Small graph passes that prepare a float model for quantization (all through <see cref="GraphRewriter"/>).</summary>
public static class GraphPasses
{
    /// <summary>The constant data behind a value: its initializer, or the tensor of the Constant node producing it.</summary>
    public static Tensor? ConstantOf(Value? v)
    {
        if (v is null) return null;
        if (v.Initializer is { } t) return t;
        if (v.Producer is { OpType: "Constant", Domain: "" } c && c.Attribute("value") is { Kind: AttributeKind.Tensor, Tensor: { } ct }) return ct;
        return null;
    }

    /// <summary>
    /// Replaces every Constant node holding a tensor ("value" attribute) by an initializer of the same name, so
    /// later passes see weights, Clip bounds and shapes as initializers. Returns the number replaced.
    /// </summary>
    public static int ConstantsToInitializers(Model model)
    {
        var g = model.Graph;
        var e = g.Edit();
        int n = 0;
        foreach (var node in g.Nodes.ToArray())
        {
            if (node.OpType != "Constant" || node.Domain.Length != 0) continue;
            if (node.Attribute("value") is not { Kind: AttributeKind.Tensor, Tensor: { } t }) continue;
            var outV = node.Output(0);
            if (outV is null) continue;
            string name = outV.Name;
            var init = e.AddInitializer(name + "_const", t);
            e.ReplaceAllUses(outV, init);
            e.RemoveNode(node);
            e.RenameValue(init, name);
            n++;
        }
        return n;
    }

    /// <summary>
    /// Replaces Reshape of a constant by a constant (exporters such as CNTK's reshape weights in the graph), so the
    /// weight is seen as an initializer and quantized as one. Shape entries follow ONNX: 0 copies the input's
    /// dimension (allowzero = 0), −1 is inferred. Returns the number folded.
    /// </summary>
    public static int FoldConstantReshapes(Model model)
    {
        var g = model.Graph;
        var e = g.Edit();
        int n = 0;
        foreach (var node in g.Nodes.ToArray())
        {
            if (node.OpType != "Reshape" || node.Domain.Length != 0 || node.GetInt("allowzero", 0) != 0) continue;
            if (node.Input(0)?.Initializer is not { } data || node.Input(1)?.Initializer is not Tensor<long> shape) continue;
            var dims = new int[shape.Length];
            int infer = -1;
            long known = 1;
            for (int i = 0; i < dims.Length; i++)
            {
                long d = shape.Data[i];
                if (d == 0 && i < data.Rank) d = data.Shape[i];
                if (d == -1) { infer = i; continue; }
                if (d < 0 || d > int.MaxValue) { known = -1; break; }
                dims[i] = (int)d;
                known *= d;
            }
            if (known <= 0) continue;
            if (infer >= 0)
            {
                if (data.Length % known != 0) continue;
                dims[infer] = (int)(data.Length / known);
            }
            if (ShapeUtil.Product(dims) != data.Length) continue;
            var outV = node.Output(0)!;
            string name = outV.Name;
            var init = e.AddInitializer(name + "_const", data.Reshape(dims));
            e.ReplaceAllUses(outV, init);
            e.RemoveNode(node);
            e.RenameValue(init, name);
            n++;
        }
        return n;
    }

    /// <summary>
    /// Folds BatchNormalization (inference form) into the Conv that feeds it when the Conv's output is read by
    /// that BatchNormalization alone: with k[c] = scale[c] / sqrt(var[c] + epsilon),
    /// W'[c, …] = W[c, …] · k[c] and b'[c] = (b[c] − mean[c]) · k[c] + B[c]. Returns the number folded.
    /// </summary>
    public static int FoldBatchNormalization(Model model)
    {
        var g = model.Graph;
        var e = g.Edit();
        int folded = 0;
        foreach (var bn in g.Nodes.ToArray())
        {
            if (bn.OpType != "BatchNormalization" || bn.Domain.Length != 0 || bn.Owner is null) continue;
            if (bn.GetInt("training_mode", 0) != 0 || bn.Outputs.Skip(1).Any(o => o is not null && (o.Uses.Count > 0 || g.Outputs.Contains(o)))) continue;
            var x = bn.Input(0);
            if (x?.Producer is not { OpType: "Conv", Domain: "" } conv) continue;
            if (x.Uses.Count != 1 || g.Outputs.Contains(x)) continue;
            var w = conv.Input(1)?.Initializer as Tensor<float>;
            var b = conv.Input(2) is { } bv ? bv.Initializer as Tensor<float> : null;
            if (w is null || (conv.Input(2) is not null && b is null)) continue;
            var p = new Tensor<float>?[4];
            for (int i = 0; i < 4; i++) p[i] = ConstantOf(bn.Input(i + 1)) as Tensor<float>;
            if (p.Any(t => t is null)) continue;
            int c = w.Shape[0];
            if (p.Any(t => t!.Length != c)) continue;
            float eps = bn.GetFloat("epsilon", 1e-5f);
            var (scale, beta, mean, variance) = (p[0]!.Data, p[1]!.Data, p[2]!.Data, p[3]!.Data);
            int per = w.Length / c;
            var nw = new float[w.Length];
            var nb = new float[c];
            for (int oc = 0; oc < c; oc++)
            {
                double k = scale[oc] / System.Math.Sqrt((double)variance[oc] + eps);
                for (int i = 0; i < per; i++) nw[oc * per + i] = (float)(w.Data[oc * per + i] * k);
                double bias = b is null ? 0 : b.Data[oc];
                nb[oc] = (float)((bias - mean[oc]) * k + beta[oc]);
            }
            var wInit = e.AddInitializer(conv.Input(1)!.Name + "_bnfold", new Tensor<float>(nw, (int[])w.Shape.Clone()));
            var bInit = e.AddInitializer((conv.Input(2)?.Name ?? conv.Name + "_bias") + "_bnfold", new Tensor<float>(nb, [c]));
            e.SetInput(conv, 1, wInit);
            e.SetInput(conv, 2, bInit);
            var y = bn.Output(0)!;
            string name = y.Name;
            e.ReplaceAllUses(y, x);
            e.RemoveNode(bn);
            e.RenameValue(x, name);
            folded++;
        }
        e.RemoveUnused();
        return folded;
    }

    /// <summary>
    /// Raises the default-domain opset to at least <paramref name="version"/> (and the IR version to what it needs).
    /// Reduce* ops whose axes move from attribute to input at opset 18 are rewritten accordingly.
    /// </summary>
    public static void RaiseOpset(Model model, long version)
    {
        long cur = model.Opset("") ?? 1;
        if (cur >= version) return;
        var e = model.Graph.Edit();
        if (cur < 18 && version >= 18)
        {
            foreach (var n in model.Graph.Nodes.ToArray())
            {
                if (n.Domain.Length != 0 || !n.OpType.StartsWith("Reduce", StringComparison.Ordinal) || n.OpType == "ReduceSum") continue;
                if (n.GetInts("axes") is not { } axes) continue;
                var ax = e.AddInitializer(n.Name + "_axes", new Tensor<long>(axes, [axes.Length]));
                n.Attributes.Remove("axes");
                e.SetInput(n, 1, ax);
            }
        }
        if (cur < 13 && version >= 13)
        {
            foreach (var n in model.Graph.Nodes)
                if (n.Domain.Length == 0 && n.OpType is "Squeeze" or "Unsqueeze" or "ReduceSum" or "Split" && n.GetInts(n.OpType == "Split" ? "split" : "axes") is { } a)
                {
                    var ai = e.AddInitializer(n.Name + "_axes", new Tensor<long>(a, [a.Length]));
                    n.Attributes.Remove(n.OpType == "Split" ? "split" : "axes");
                    e.SetInput(n, 1, ai);
                }
        }
        model.SetOpset("", version);
        long ir = version >= 21 ? 10 : version >= 19 ? 9 : version >= 15 ? 8 : 7;
        if (model.IrVersion < ir) model.IrVersion = ir;
    }
}
