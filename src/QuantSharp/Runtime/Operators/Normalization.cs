using System.Runtime.Intrinsics;
using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// BatchNormalization for float X [N, C, …]. Inference (every opset): Y = (X − mean)/√(var + ε)·scale + B with
/// per-channel parameters, or per-activation parameters of shape [C, D…] (spatial = 0, opsets before 9).
/// Opset 14+ with training_mode = 1: batch statistics over N and the spatial axes (population variance) normalise
/// Y, and outputs 1-2 are running_mean = mean·momentum + batch_mean·(1 − momentum) (likewise the variance).
/// Before opset 14 the optional outputs (mean, var, saved_mean, saved_var) are inference pass-throughs:
/// copies of the mean and variance inputs.
/// </summary>
[OnnxOperator("BatchNormalization", 1)]
public sealed class BatchNormalizationKernel : OpKernel
{
    private float _epsilon, _momentum;
    private bool _training;

    public override void Initialize(KernelInitContext ctx)
    {
        _epsilon = Node.GetFloat("epsilon", 1e-5f);
        _momentum = Node.GetFloat("momentum", 0.9f);
        _training = OpsetVersion >= 14 && Node.GetInt("training_mode", 0) != 0;
    }

    public override void Compute(KernelContext ctx)
    {
        var x = NnShapes.FloatInput(ctx, 0, "BatchNormalization");
        var scale = NnShapes.FloatInput(ctx, 1, "BatchNormalization");
        var bias = NnShapes.FloatInput(ctx, 2, "BatchNormalization");
        var mean = NnShapes.FloatInput(ctx, 3, "BatchNormalization");
        var variance = NnShapes.FloatInput(ctx, 4, "BatchNormalization");
        if (x.Rank < 2) throw new QuantSharpException($"BatchNormalization input must have rank >= 2, got {ShapeUtil.Format(x.Shape)}");
        int n = x.Shape[0], c = x.Shape[1];
        int planeSize = n * c == 0 ? 0 : x.Length / (n * c);
        // Per-channel parameters, or per-activation ones ([C, D…], spatial = 0) repeated for every image.
        int p = scale.Length;
        if ((p != c && p != c * planeSize) || (p == 0 && c != 0))
            throw new QuantSharpException($"BatchNormalization scale has {p} elements; expected {c} (per channel)");
        foreach (var (t, name) in new[] { (bias, "B"), (mean, "mean"), (variance, "var") })
            if (t.Length != p) throw new QuantSharpException($"BatchNormalization {name} has {t.Length} elements, expected {p}");
        int group = p == c ? planeSize : 1;

        var y = ctx.Output<float>(0, (int[])x.Shape.Clone());
        var useMean = mean.Data;
        var useVar = variance.Data;
        if (_training)
        {
            useMean = new float[c];
            useVar = new float[c];
            for (int ch = 0; ch < c; ch++)
            {
                double s = 0, ss = 0;
                for (int b = 0; b < n; b++)
                    foreach (float v in x.Data.AsSpan((b * c + ch) * planeSize, planeSize)) s += v;
                double count = Math.Max(1.0, (double)n * planeSize);
                double mu = s / count;
                for (int b = 0; b < n; b++)
                    foreach (float v in x.Data.AsSpan((b * c + ch) * planeSize, planeSize)) ss += (v - mu) * (v - mu);
                useMean[ch] = (float)mu;
                useVar[ch] = (float)(ss / count);
            }
        }

        // y = x·a + b with a = scale/√(var + ε), b = B − mean·a.
        var a = new float[p];
        var sh = new float[p];
        for (int i = 0; i < p; i++)
        {
            a[i] = scale.Data[i] / MathF.Sqrt(useVar[i] + _epsilon);
            sh[i] = bias.Data[i] - useMean[i] * a[i];
        }
        var xd = x.Data; var yd = y.Data;
        ctx.ParallelFor(n * c, Math.Max(1, 16384 / Math.Max(1, planeSize)), (s, e) =>
        {
            for (int plane = s; plane < e; plane++)
            {
                int ch = plane % c, off = plane * planeSize;
                for (int i = 0; i < planeSize; i++)
                {
                    int k = group == 1 ? ch * planeSize + i : ch;
                    yd[off + i] = xd[off + i] * a[k] + sh[k];
                }
            }
        });

        if (_training)
        {
            if (ctx.WantsOutput(1)) Blend(ctx.Output<float>(1, [c]).Data, mean.Data, useMean);
            if (ctx.WantsOutput(2)) Blend(ctx.Output<float>(2, [c]).Data, variance.Data, useVar);
        }
        else
        {
            for (int o = 1; o < ctx.OutputCount; o++)
            {
                if (!ctx.WantsOutput(o)) continue;
                var src = o % 2 == 1 ? mean : variance;
                var t = ctx.Output<float>(o, (int[])src.Shape.Clone());
                Array.Copy(src.Data, t.Data, src.Length);
            }
        }
    }

    private void Blend(float[] dst, float[] running, float[] current)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = running[i] * _momentum + current[i] * (1 - _momentum);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        NnShapes.SameAsInput(ctx);
        for (int o = 1; o < ctx.Node.Outputs.Count; o++)
            if (ctx.InputType(o % 2 == 1 ? 3 : 4) is { } t) ctx.SetOutputType(o, t);
    }
}

/// <summary>
/// InstanceNormalization (opsets 1, 6, 22) for float X [N, C, …]: per (n, c) plane,
/// Y = scale[c]·(X − mean)/√(var + ε) + B[c] with the plane's mean and population variance.
/// </summary>
[OnnxOperator("InstanceNormalization", 1)]
public sealed class InstanceNormalizationKernel : OpKernel
{
    public override void Compute(KernelContext ctx)
    {
        var x = NnShapes.FloatInput(ctx, 0, "InstanceNormalization");
        var scale = NnShapes.FloatInput(ctx, 1, "InstanceNormalization");
        var bias = NnShapes.FloatInput(ctx, 2, "InstanceNormalization");
        if (x.Rank < 2) throw new QuantSharpException($"InstanceNormalization input must have rank >= 2, got {ShapeUtil.Format(x.Shape)}");
        int n = x.Shape[0], c = x.Shape[1];
        if (scale.Length != c || bias.Length != c)
            throw new QuantSharpException($"InstanceNormalization scale and B need {c} elements, got {scale.Length} and {bias.Length}");
        int size = n * c == 0 ? 0 : x.Length / (n * c);
        float eps = Node.GetFloat("epsilon", 1e-5f);
        var y = ctx.Output<float>(0, (int[])x.Shape.Clone());
        var xd = x.Data; var yd = y.Data; var sd = scale.Data; var bd = bias.Data;
        ctx.ParallelFor(n * c, Math.Max(1, 16384 / Math.Max(1, size)), (s, e) =>
        {
            for (int p = s; p < e; p++)
                LayerNormalizationKernel.NormalizeRow(xd.AsSpan(p * size, size), yd.AsSpan(p * size, size), eps,
                    sd.AsSpan(p % c, 1), bd.AsSpan(p % c, 1), out _, out _);
        });
    }

    public override void InferTypes(TypeInferenceContext ctx) => NnShapes.SameAsInput(ctx);
}

/// <summary>
/// LayerNormalization (opset 17) for float: over the axes [axis, rank), Y = (X − mean)·invStd·Scale + B with
/// invStd = 1/√(population var + ε); Scale and the optional B broadcast to X's normalised shape. Optional outputs
/// Mean and InvStdDev have shape X[:axis] followed by ones. Statistics are accumulated in double, which also
/// covers stash_type = 1 (float).
/// </summary>
[OnnxOperator("LayerNormalization", 17)]
public sealed class LayerNormalizationKernel : OpKernel
{
    public override void Compute(KernelContext ctx)
    {
        var x = NnShapes.FloatInput(ctx, 0, "LayerNormalization");
        var scale = NnShapes.FloatInput(ctx, 1, "LayerNormalization");
        var bias = ctx.HasInput(2) ? NnShapes.FloatInput(ctx, 2, "LayerNormalization") : null;
        int axis = ShapeUtil.NormalizeAxis(Node.GetInt("axis", -1), x.Rank, "LayerNormalization axis");
        float eps = Node.GetFloat("epsilon", 1e-5f);
        var normShape = x.Shape[axis..];
        int size = ShapeUtil.Product(normShape), rows = ShapeUtil.Product(x.Shape.AsSpan(0, axis));
        var s = Expand(scale, normShape, "Scale");
        var b = bias is null ? null : Expand(bias, normShape, "B");
        var y = ctx.Output<float>(0, (int[])x.Shape.Clone());
        var statShape = new int[x.Rank];
        for (int d = 0; d < x.Rank; d++) statShape[d] = d < axis ? x.Shape[d] : 1;
        var meanOut = ctx.WantsOutput(1) ? ctx.Output<float>(1, statShape).Data : null;
        var invOut = ctx.WantsOutput(2) ? ctx.Output<float>(2, (int[])statShape.Clone()).Data : null;
        var xd = x.Data; var yd = y.Data;
        ctx.ParallelFor(rows, Math.Max(1, 16384 / Math.Max(1, size)), (st, en) =>
        {
            for (int r = st; r < en; r++)
            {
                NormalizeRow(xd.AsSpan(r * size, size), yd.AsSpan(r * size, size), eps, s, b, out float mean, out float inv);
                if (meanOut is not null) meanOut[r] = mean;
                if (invOut is not null) invOut[r] = inv;
            }
        });
    }

    /// <summary>Scale or B broadcast (right-aligned, unidirectional) to the normalised shape, as a flat array.</summary>
    private static float[] Expand(Tensor<float> t, int[] normShape, string name)
    {
        int size = ShapeUtil.Product(normShape);
        if (t.Length == size && t.Rank <= normShape.Length) return t.Data;
        int[] full;
        try { full = ShapeUtil.Broadcast(t.Shape, normShape); }
        catch (QuantSharpException) { full = []; }
        if (!full.AsSpan().SequenceEqual(normShape) && !(full.Length > normShape.Length && ShapeUtil.Product(full) == size))
            throw new QuantSharpException($"LayerNormalization {name} {ShapeUtil.Format(t.Shape)} does not broadcast to {ShapeUtil.Format(normShape)}");
        var r = new float[size];
        var strides = new int[normShape.Length];
        int acc = 1;
        for (int d = t.Rank - 1, nd = normShape.Length - 1; nd >= 0; d--, nd--)
        {
            int dim = d >= 0 ? t.Shape[d] : 1;
            strides[nd] = dim == 1 ? 0 : acc;
            acc *= dim;
        }
        var idx = new int[normShape.Length];
        for (int i = 0; i < size; i++)
        {
            int src = 0;
            for (int d = 0; d < idx.Length; d++) src += idx[d] * strides[d];
            r[i] = t.Data[src];
            for (int d = idx.Length - 1; d >= 0; d--)
            {
                if (++idx[d] < normShape[d]) break;
                idx[d] = 0;
            }
        }
        return r;
    }

    /// <summary>
    /// y = (x − mean)·inv·scale + bias over one row, inv = 1/√(population var + ε); scale and bias have the row's
    /// length or length 1 (one value for the whole row).
    /// </summary>
    internal static void NormalizeRow(ReadOnlySpan<float> x, Span<float> y, float eps, ReadOnlySpan<float> scale,
        ReadOnlySpan<float> bias, out float meanOut, out float invOut)
    {
        int n = x.Length;
        double sum = 0;
        int i0 = 0;
        // Statistics in double, 8 lanes at a time (floats widened), then the scalar tail.
        var acc = Vector512<double>.Zero;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i0 <= n - 16; i0 += 16)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Create(x.Slice(i0, 16)));
                acc += lo + hi;
            }
            sum = Vector512.Sum(acc);
        }
        for (int i = i0; i < n; i++) sum += x[i];
        double mean = n == 0 ? 0 : sum / n;
        double ss = 0;
        i0 = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vm = Vector512.Create(mean);
            acc = Vector512<double>.Zero;
            for (; i0 <= n - 16; i0 += 16)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Create(x.Slice(i0, 16)));
                lo -= vm;
                hi -= vm;
                acc += lo * lo + hi * hi;
            }
            ss = Vector512.Sum(acc);
        }
        for (int i = i0; i < n; i++) ss += (x[i] - mean) * (x[i] - mean);
        double inv = 1.0 / Math.Sqrt((n == 0 ? 0 : ss / n) + eps);
        float m = (float)mean, iv = (float)inv;
        bool perElement = scale.Length == n && n != 1;
        i0 = 0;
        if (Vector512.IsHardwareAccelerated && perElement && (bias.IsEmpty || bias.Length == n))
        {
            // The scalar loop's float operations in the same order, 16 lanes at a time.
            var vm = Vector512.Create(m);
            var vi = Vector512.Create(iv);
            for (; i0 <= n - 16; i0 += 16)
            {
                var r = (Vector512.Create(x.Slice(i0, 16)) - vm) * vi * Vector512.Create(scale.Slice(i0, 16));
                r += bias.IsEmpty ? Vector512<float>.Zero : Vector512.Create(bias.Slice(i0, 16));
                r.CopyTo(y.Slice(i0, 16));
            }
        }
        for (int i = i0; i < n; i++)
        {
            float sc = perElement ? scale[i] : scale[0];
            float bs = bias.IsEmpty ? 0f : bias.Length == n ? bias[i] : bias[0];
            y[i] = (x[i] - m) * iv * sc + bs;
        }
        meanOut = m;
        invOut = iv;
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        NnShapes.SameAsInput(ctx);
        if (ctx.InputType(0) is not { Shape: { } s }) return;
        int axis;
        try { axis = ShapeUtil.NormalizeAxis(ctx.Node.GetInt("axis", -1), s.Length, "axis"); }
        catch (QuantSharpException) { return; }
        var dims = new Dimension[s.Length];
        for (int d = 0; d < s.Length; d++) dims[d] = d < axis ? s[d] : 1;
        var stat = new TensorTypeInfo(DataType.Float, dims);
        if (ctx.Node.Output(1) is not null) ctx.SetOutputType(1, stat);
        if (ctx.Node.Output(2) is not null) ctx.SetOutputType(2, stat);
    }
}
