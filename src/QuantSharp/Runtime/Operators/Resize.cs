using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>How one output axis samples its input axis (built once per run from scales/sizes/roi).</summary>
internal sealed class AxisPlan
{
    public required int InLen;
    public required int OutLen;
    /// <summary>Taps per output position (1 for nearest).</summary>
    public required int Taps;
    /// <summary>Source index per output position and tap, clamped to the axis (edge padding); -1 = extrapolate.</summary>
    public required int[] Index;
    /// <summary>Weight per output position and tap.</summary>
    public required float[] Weight;

    public bool IsIdentity()
    {
        if (InLen != OutLen) return false;
        for (int j = 0; j < OutLen; j++)
        {
            // Taps clamped onto the same index add up, so sum the weight landing on j.
            float onJ = 0;
            for (int t = 0; t < Taps; t++)
            {
                float w = Weight[j * Taps + t];
                int i = Index[j * Taps + t];
                if (i < 0) return false;
                if (i == j) onJ += w;
                else if (w != 0f) return false;
            }
            if (Math.Abs(onJ - 1f) > 1e-7f) return false;
        }
        return true;
    }
}

/// <summary>
/// Resize (opset 10, 11, 13, 18, 19) and Upsample (7, 9). Output size = floor(in × scale) or the given sizes
/// (optionally restricted to `axes` and kept to aspect ratio, opset 18+). Each output coordinate x maps to an input
/// coordinate by coordinate_transformation_mode (half_pixel: (x+0.5)/s-0.5, half_pixel_symmetric, pytorch_half_pixel,
/// align_corners: x(in-1)/(out-1), asymmetric: x/s, tf_half_pixel_for_nn: (x+0.5)/s, tf_crop_and_resize over roi).
/// nearest picks one index by nearest_mode; linear and cubic (coefficient A, exclude_outside, antialias) are
/// separable, so an N-D resize is done one axis at a time with per-axis weight tables; out-of-range taps use the
/// edge value (or are dropped and renormalised with exclude_outside).
/// </summary>
[OnnxOperator("Resize", 10)]
public class ResizeKernel : MovementKernel
{
    /// <summary>Upsample-7/9 and Resize-10 semantics: asymmetric coordinates, scales only.</summary>
    protected virtual bool Legacy => OpsetVersion < 11;

    private string Mode => Node.GetString("mode", "nearest");

    private string CoordMode => Legacy ? "asymmetric" : Node.GetString("coordinate_transformation_mode", "half_pixel");

    /// <summary>Scales of a legacy node: input 1 (Resize-10, Upsample-9) or the `scales` attribute (Upsample-7).</summary>
    protected virtual float[]? LegacyScales(Func<int, Tensor?> input) =>
        input(1) is { } s ? Movement.ToDoubles(s).Select(v => (float)v).ToArray() : null;

    /// <summary>Per axis: output length, scale factor and roi (start, end).</summary>
    internal (int[] OutShape, double[] Scales, double[] RoiStart, double[] RoiEnd, bool FromSizes)? Geometry(int[]? inShape, int rank, Func<int, Tensor?> input)
    {
        var scales = new double[rank];
        var outShape = new int[rank];
        var roiStart = new double[rank];
        var roiEnd = new double[rank];
        Array.Fill(scales, 1.0);
        Array.Fill(roiEnd, 1.0);
        if (Legacy)
        {
            var s = LegacyScales(input);
            if (s is null || inShape is null) return null;
            if (s.Length != rank) throw new QuantSharpException($"{Node.OpType} scales has {s.Length} entries for a rank-{rank} input");
            for (int d = 0; d < rank; d++)
            {
                scales[d] = s[d];
                outShape[d] = Movement.ToInt((long)Math.Floor(s[d] * (double)inShape[d]), $"{Node.OpType} output dimension");
            }
            return (outShape, scales, roiStart, roiEnd, false);
        }
        var axesAttr = OpsetVersion >= 18 ? Node.GetInts("axes") : null;
        var axes = axesAttr is null ? Enumerable.Range(0, rank).ToArray() : Movement.NormalizeAxes(axesAttr, rank, "Resize axes");
        Tensor? scalesT = Node.Input(2) is null ? null : input(2);
        Tensor? sizesT = Node.Input(3) is null ? null : input(3);
        if (Node.Input(2) is not null && scalesT is null) return null;
        if (Node.Input(3) is not null && sizesT is null) return null;
        if (inShape is null) return null;
        bool useSizes = sizesT is { Length: > 0 };
        bool useScales = scalesT is { Length: > 0 };
        if (useSizes == useScales) throw new QuantSharpException("Resize needs exactly one of scales and sizes");
        if (useScales)
        {
            var s = Movement.ToDoubles(scalesT!).Select(v => (double)(float)v).ToArray();
            if (s.Length != axes.Length) throw new QuantSharpException($"Resize scales has {s.Length} entries for {axes.Length} axes");
            for (int i = 0; i < axes.Length; i++)
            {
                if (s[i] <= 0) throw new QuantSharpException($"Resize scale {s[i]} must be positive");
                scales[axes[i]] = s[i];
            }
            for (int d = 0; d < rank; d++)
                outShape[d] = Movement.ToInt((long)Math.Floor(scales[d] * inShape[d]), "Resize output dimension");
        }
        else
        {
            var sz = Movement.ToLongs(sizesT!, "Resize sizes");
            if (sz.Length != axes.Length) throw new QuantSharpException($"Resize sizes has {sz.Length} entries for {axes.Length} axes");
            Array.Copy(inShape, outShape, rank);
            for (int i = 0; i < axes.Length; i++)
            {
                int d = axes[i];
                outShape[d] = Movement.ToInt(sz[i], "Resize size");
                scales[d] = inShape[d] == 0 ? 1.0 : (double)outShape[d] / inShape[d];
            }
            string policy = OpsetVersion >= 18 ? Node.GetString("keep_aspect_ratio_policy", "stretch") : "stretch";
            if (policy != "stretch")
            {
                double scale = policy switch
                {
                    "not_larger" => axes.Min(d => scales[d]),
                    "not_smaller" => axes.Max(d => scales[d]),
                    _ => throw new QuantSharpException($"Resize keep_aspect_ratio_policy '{policy}' is not supported"),
                };
                foreach (int d in axes)
                {
                    scales[d] = scale;
                    // round half up
                    outShape[d] = (int)Math.Floor(scale * inShape[d] + 0.5);
                }
            }
        }
        if (CoordMode == "tf_crop_and_resize" && Node.Input(1) is not null)
        {
            var roiT = input(1);
            if (roiT is null) return null;
            if (roiT.Length > 0)
            {
                var roi = Movement.ToDoubles(roiT);
                if (roi.Length != 2 * axes.Length) throw new QuantSharpException($"Resize roi has {roi.Length} entries; expected {2 * axes.Length}");
                for (int i = 0; i < axes.Length; i++)
                {
                    roiStart[axes[i]] = roi[i];
                    roiEnd[axes[i]] = roi[i + axes.Length];
                }
            }
        }
        return (outShape, scales, roiStart, roiEnd, useSizes);
    }

    /// <summary>Input coordinate of output position x (null = outside the crop: extrapolate).</summary>
    private static double? SourceCoord(string mode, double x, double scale, int inLen, int outLen, double roiStart, double roiEnd)
    {
        double outWidth = scale * inLen;
        switch (mode)
        {
            case "half_pixel": return (x + 0.5) / scale - 0.5;
            case "half_pixel_symmetric":
            {
                // Centres the sampled window: offset = in/2 · (1 - outLen/(scale·in)).
                double adjustment = outLen / outWidth;
                double center = inLen / 2.0;
                return center * (1 - adjustment) + (x + 0.5) / scale - 0.5;
            }
            case "pytorch_half_pixel": return outWidth == 1 ? -0.5 : (x + 0.5) / scale - 0.5;
            case "align_corners": return outWidth == 1 ? 0.0 : x * (inLen - 1) / (outWidth - 1);
            case "asymmetric": return x / scale;
            case "tf_half_pixel_for_nn": return (x + 0.5) / scale;
            case "tf_crop_and_resize":
            {
                double c = outWidth == 1
                    ? (roiEnd - roiStart) * (inLen - 1) / 2
                    : x * (roiEnd - roiStart) * (inLen - 1) / (outWidth - 1);
                c += roiStart * (inLen - 1);
                return c < 0 || c > inLen - 1 ? null : c;
            }
            default: throw new QuantSharpException($"Resize coordinate_transformation_mode '{mode}' is not supported");
        }
    }

    private static double Cubic(double x, double a)
    {
        x = Math.Abs(x);
        if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
        return 0;
    }

    internal AxisPlan Plan(int inLen, int outLen, double scale, double roiStart, double roiEnd)
    {
        string mode = Mode;
        string coord = CoordMode;
        if (mode == "nearest")
        {
            string nearestMode = Legacy ? "legacy" : Node.GetString("nearest_mode", "round_prefer_floor");
            var index = new int[outLen];
            for (int j = 0; j < outLen; j++)
            {
                double? c = SourceCoord(coord, j, scale, inLen, outLen, roiStart, roiEnd);
                if (c is not double x) { index[j] = -1; continue; }
                double fl = Math.Floor(x);
                double frac = x - fl;
                long i = nearestMode switch
                {
                    "round_prefer_floor" => frac <= 0.5 ? (long)fl : (long)fl + 1,
                    "round_prefer_ceil" => frac < 0.5 ? (long)fl : (long)fl + 1,
                    "floor" => (long)fl,
                    "ceil" => (long)Math.Ceiling(x),
                    // Upsample and Resize-10: floor when enlarging, ceil when shrinking.
                    "legacy" => scale < 1 ? (long)Math.Ceiling(x) : (long)fl,
                    _ => throw new QuantSharpException($"Resize nearest_mode '{nearestMode}' is not supported"),
                };
                index[j] = (int)Math.Clamp(i, 0, Math.Max(inLen - 1, 0));
            }
            var w = new float[outLen];
            Array.Fill(w, 1f);
            return new AxisPlan { InLen = inLen, OutLen = outLen, Taps = 1, Index = index, Weight = w };
        }
        bool cubic = mode == "cubic";
        if (!cubic && mode != "linear") throw new QuantSharpException($"Resize mode '{mode}' is not supported");
        bool antialias = !Legacy && OpsetVersion >= 18 && Node.GetInt("antialias", 0) != 0;
        bool excludeOutside = !Legacy && Node.GetInt("exclude_outside", 0) != 0;
        double a = Node.GetFloat("cubic_coeff_a", -0.75f);
        // The kernel is stretched by 1/scale when shrinking with antialias.
        double s = antialias ? Math.Min(scale, 1.0) : 1.0;
        int start = cubic ? (int)Math.Floor(-2 / s) + 1 : (int)Math.Floor(-1 / s) + 1;
        // Linear taps i = start .. 1-start, cubic taps i = start .. 1-start as well (i_end = 2 - i_start): 2 - 2·start points.
        int taps = 2 - 2 * start;
        var idx = new int[outLen * taps];
        var wts = new float[outLen * taps];
        var wd = new double[taps];
        for (int j = 0; j < outLen; j++)
        {
            double? c = SourceCoord(coord, j, scale, inLen, outLen, roiStart, roiEnd);
            if (c is not double x)
            {
                for (int t = 0; t < taps; t++) idx[j * taps + t] = -1;
                continue;
            }
            // x = x0 + ratio with ratio in (0, 1]: the tap at x0 + i has argument (i - ratio).
            double x0 = Math.Floor(x);
            double ratio = x - x0;
            if (ratio == 0) { ratio = 1; x0 -= 1; }
            double sum = 0;
            for (int t = 0; t < taps; t++)
            {
                int i = start + t;
                double arg = (i - ratio) * s;
                double w = cubic ? Cubic(arg, a) : Math.Clamp(1 - Math.Abs(arg), 0, 1);
                long src = (long)x0 + i;
                if (excludeOutside && (src < 0 || src >= inLen)) w = 0;
                wd[t] = w;
                sum += w;
                idx[j * taps + t] = (int)Math.Clamp(src, 0, Math.Max(inLen - 1, 0));
            }
            // Linear and cubic weights already sum to 1 unless antialiased or taps were excluded.
            bool normalize = antialias || excludeOutside;
            for (int t = 0; t < taps; t++) wts[j * taps + t] = (float)(normalize && sum != 0 ? wd[t] / sum : wd[t]);
        }
        return new AxisPlan { InLen = inLen, OutLen = outLen, Taps = taps, Index = idx, Weight = wts };
    }

    protected override void Run<T>(KernelContext ctx)
    {
        var x = (Tensor<T>)ctx.Input(0);
        var g = Geometry(x.Shape, x.Rank, ctx.OptionalInput) ?? throw new QuantSharpException($"{Node.OpType} needs scales or sizes");
        var (outShape, scales, roiStart, roiEnd, _) = g;
        int rank = x.Rank;
        var plans = new AxisPlan[rank];
        for (int d = 0; d < rank; d++)
        {
            if (outShape[d] > 0 && x.Shape[d] == 0) throw new QuantSharpException($"{Node.OpType} cannot resize the empty axis {d}");
            plans[d] = Plan(x.Shape[d], outShape[d], scales[d], roiStart[d], roiEnd[d]);
        }
        var y = OutputLike<T>(ctx, 0, x, outShape);
        if (y.Length == 0) return;
        double extrapolation = Legacy ? 0 : Node.GetFloat("extrapolation_value", 0f);
        if (Mode == "nearest")
        {
            var maps = plans.Select(p => p.Index).ToArray();
            Movement.MapGather(ctx, x.Data, x.Shape, y.Data, outShape, maps, Movement.FromDouble<T>(extrapolation));
            return;
        }
        // Separable interpolation in float, one axis at a time.
        float[] cur = x.Data is float[] f ? f : Array.ConvertAll(x.Data, v => (float)Movement.ToDoubleValue(v));
        var curShape = (int[])x.Shape.Clone();
        bool owned = x.Data is not float[];
        for (int d = rank - 1; d >= 0; d--)
        {
            if (plans[d].IsIdentity()) continue;
            var next = InterpolateAxis(ctx, cur, curShape, d, plans[d], (float)extrapolation);
            curShape[d] = plans[d].OutLen;
            cur = next;
            owned = true;
        }
        if (y.Data is float[] yf)
        {
            if (owned) cur.AsSpan().CopyTo(yf);
            else x.Data.AsSpan().CopyTo(y.Data);
        }
        else for (int i = 0; i < cur.Length; i++) y.Data[i] = Movement.FromDouble<T>(cur[i]);
    }

    private static float[] InterpolateAxis(KernelContext ctx, float[] src, int[] shape, int axis, AxisPlan plan, float extrapolation)
    {
        int outer = Movement.Product(shape, 0, axis);
        int inner = Movement.Product(shape, axis + 1, shape.Length);
        int inLen = shape[axis], outLen = plan.OutLen, taps = plan.Taps;
        var dst = new float[(long)outer * outLen * inner > Array.MaxLength ? throw new QuantSharpException("Resize output is too large") : outer * outLen * inner];
        ctx.ParallelFor(outer * outLen, Math.Max(1, 2048 / Math.Max(inner, 1)), (start, end) =>
        {
            for (int w = start; w < end; w++)
            {
                int o = w / outLen, j = w % outLen;
                var row = dst.AsSpan(w * inner, inner);
                if (plan.Index[j * taps] < 0)
                {
                    row.Fill(extrapolation);
                    continue;
                }
                if (inner == 1)
                {
                    float acc = 0;
                    int b = o * inLen;
                    for (int t = 0; t < taps; t++) acc += plan.Weight[j * taps + t] * src[b + plan.Index[j * taps + t]];
                    row[0] = acc;
                    continue;
                }
                row.Clear();
                for (int t = 0; t < taps; t++)
                {
                    float wt = plan.Weight[j * taps + t];
                    if (wt == 0) continue;
                    var s = src.AsSpan((o * inLen + plan.Index[j * taps + t]) * inner, inner);
                    for (int k = 0; k < inner; k++) row[k] += wt * s[k];
                }
            }
        });
        return dst;
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        if (t.Shape is null)
        {
            ctx.SetOutputType(0, Movement.Unranked(t.ElementType));
            return;
        }
        int rank = t.Shape.Length;
        // Unknown input dimensions stand in as 1; they stay unknown in the output unless their scale is 1
        // (the dimension, symbolic or not, is kept) or a plain size fixes them.
        var stand = t.Shape.Select(d => d.Value is long v ? (int)v : 1).ToArray();
        var g = Geometry(stand, rank, i => ctx.ConstantInput(i));
        if (g is null)
        {
            ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, Enumerable.Repeat(Dimension.Unknown, rank).ToArray()));
            return;
        }
        var (outShape, scales, _, _, fromSizes) = g.Value;
        bool allKnown = t.Shape.All(d => d.IsKnown);
        bool stretch = OpsetVersion < 18 || Node.GetString("keep_aspect_ratio_policy", "stretch") == "stretch";
        var dims = new Dimension[rank];
        for (int d = 0; d < rank; d++)
        {
            if (t.Shape[d].IsKnown && (allKnown || (fromSizes && stretch) || !fromSizes)) dims[d] = new Dimension(outShape[d]);
            else if (fromSizes && stretch && outShape[d] != stand[d]) dims[d] = new Dimension(outShape[d]);
            else if (!fromSizes && scales[d] == 1.0) dims[d] = t.Shape[d];
            else dims[d] = Dimension.Unknown;
        }
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, dims));
    }
}

/// <summary>Upsample (opset 7: `scales` attribute; 9: scales input): nearest or linear with asymmetric coordinates.</summary>
[OnnxOperator("Upsample", 7, MaxVersion = 9)]
public sealed class UpsampleKernel : ResizeKernel
{
    protected override bool Legacy => true;

    protected override float[]? LegacyScales(Func<int, Tensor?> input) =>
        OpsetVersion < 9 ? Node.GetFloats("scales") : base.LegacyScales(input);
}
