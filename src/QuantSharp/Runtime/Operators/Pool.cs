using System.Numerics;
using QuantSharp.Graph;
using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>Window loops shared by the pooling kernels (1-3 spatial dimensions, padded to 3-D).</summary>
internal static class PoolLoops
{
    public static ConvGeometry Geometry(WindowAttributes attrs, int[] shape, string op)
    {
        var g = ConvGeometry.ForPool(attrs, shape);
        if (g.SpatialRank > Window3D.MaxRank)
            throw new QuantSharpException($"{op} supports 1 to {Window3D.MaxRank} spatial dimensions, input is {ShapeUtil.Format(shape)}");
        return g;
    }

    /// <summary>
    /// Y[p, o] = max over window positions inside the input (padding never wins). Indices (optional) hold the
    /// flat index of the maximum in X: row-major over the whole tensor, or with storage_order 1 the spatial part
    /// column-major (first spatial axis fastest) plus the plane offset.
    /// </summary>
    public static void Max<T>(in Window3D w, ReadOnlySpan<T> x, Span<T> y, Span<long> indices, bool columnMajor, int p0, int p1)
        where T : INumber<T>, IMinMaxValue<T>
    {
        int inSize = w.InputSize, outSize = w.OutputSize;
        bool wantIdx = !indices.IsEmpty;
        for (int p = p0; p < p1; p++)
        {
            var src = x.Slice(p * inSize, inSize);
            int o = p * outSize;
            for (int od = 0; od < w.OD; od++)
            for (int oh = 0; oh < w.OH; oh++)
            for (int ow = 0; ow < w.OW; ow++, o++)
            {
                T best = T.MinValue;
                int bestAt = -1;
                for (int kd = 0; kd < w.KD; kd++)
                {
                    int id = od * w.SD - w.PD + kd * w.DD;
                    if ((uint)id >= (uint)w.ID) continue;
                    for (int kh = 0; kh < w.KH; kh++)
                    {
                        int ih = oh * w.SH - w.PH + kh * w.DH;
                        if ((uint)ih >= (uint)w.IH) continue;
                        int rowBase = (id * w.IH + ih) * w.IW;
                        for (int kw = 0; kw < w.KW; kw++)
                        {
                            int iw = ow * w.SW - w.PW + kw * w.DW;
                            if ((uint)iw >= (uint)w.IW) continue;
                            T v = src[rowBase + iw];
                            if (bestAt < 0 || v > best) { best = v; bestAt = rowBase + iw; }
                        }
                    }
                }
                y[o] = best;
                if (wantIdx)
                {
                    long at = bestAt < 0 ? 0 : bestAt;
                    if (columnMajor && bestAt >= 0)
                    {
                        int iw = bestAt % w.IW, ih = bestAt / w.IW % w.IH, id = bestAt / (w.IW * w.IH);
                        at = id + (long)w.ID * (ih + (long)w.IH * iw);
                    }
                    indices[o] = (long)p * inSize + at;
                }
            }
        }
    }

    /// <summary>
    /// Float MaxPool without indices, same result as <see cref="Max{T}"/>: the first tap inside X starts the
    /// maximum and later taps replace it only when greater. Taps are visited in kernel order through row pointers
    /// gathered once per output row, without per-element bounds checks.
    /// </summary>
    public static unsafe void MaxFloat(in Window3D w, ReadOnlySpan<float> x, Span<float> y, int p0, int p1)
    {
        int inSize = w.InputSize, outSize = w.OutputSize, kwN = w.KW;
        var rowPtr = stackalloc nint[w.KD * w.KH];
        fixed (float* px = x) fixed (float* py = y)
        {
            for (int p = p0; p < p1; p++)
            {
                float* src = px + (long)p * inSize;
                float* dst = py + (long)p * outSize;
                for (int od = 0; od < w.OD; od++)
                {
                    for (int oh = 0; oh < w.OH; oh++)
                    {
                        int rows = 0;
                        for (int kd = 0; kd < w.KD; kd++)
                        {
                            int id = od * w.SD - w.PD + kd * w.DD;
                            if ((uint)id >= (uint)w.ID) continue;
                            for (int kh = 0; kh < w.KH; kh++)
                            {
                                int ih = oh * w.SH - w.PH + kh * w.DH;
                                if ((uint)ih < (uint)w.IH) rowPtr[rows++] = (nint)(src + (id * w.IH + ih) * w.IW);
                            }
                        }
                        float* drow = dst + (od * w.OH + oh) * w.OW;
                        for (int ow = 0; ow < w.OW; ow++)
                        {
                            int start = ow * w.SW - w.PW;
                            bool interior = start >= 0 && start + (kwN - 1) * w.DW < w.IW;
                            float best = float.MinValue;
                            bool any = false;
                            for (int r = 0; r < rows; r++)
                            {
                                float* srow = (float*)rowPtr[r] + start;
                                for (int kw = 0; kw < kwN; kw++)
                                {
                                    int off = kw * w.DW;
                                    if (!interior && (uint)(start + off) >= (uint)w.IW) continue;
                                    float v = srow[off];
                                    if (!any || v > best) { best = v; any = true; }
                                }
                            }
                            drow[ow] = best;
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// Y[p, o] = Σ window values inside X / divisor; the divisor counts positions inside X, or with
    /// count_include_pad positions inside the explicitly padded extent [−padBegin, size + padEnd) (positions added
    /// only by ceil_mode never count).
    /// </summary>
    public static void Average(in Window3D w, int[] padsEnd, bool countPad, ReadOnlySpan<float> x, Span<float> y, int p0, int p1)
    {
        int inSize = w.InputSize, outSize = w.OutputSize;
        int ped = padsEnd.Length == 3 ? padsEnd[0] : 0, peh = padsEnd.Length >= 2 ? padsEnd[^2] : 0, pew = padsEnd[^1];
        for (int p = p0; p < p1; p++)
        {
            var src = x.Slice(p * inSize, inSize);
            int o = p * outSize;
            for (int od = 0; od < w.OD; od++)
            for (int oh = 0; oh < w.OH; oh++)
            for (int ow = 0; ow < w.OW; ow++, o++)
            {
                float sum = 0f;
                int inside = 0, padded = 0;
                for (int kd = 0; kd < w.KD; kd++)
                {
                    int id = od * w.SD - w.PD + kd * w.DD;
                    bool dIn = (uint)id < (uint)w.ID, dPad = id >= -w.PD && id < w.ID + ped;
                    for (int kh = 0; kh < w.KH; kh++)
                    {
                        int ih = oh * w.SH - w.PH + kh * w.DH;
                        bool hIn = (uint)ih < (uint)w.IH, hPad = ih >= -w.PH && ih < w.IH + peh;
                        for (int kw = 0; kw < w.KW; kw++)
                        {
                            int iw = ow * w.SW - w.PW + kw * w.DW;
                            bool wIn = (uint)iw < (uint)w.IW, wPad = iw >= -w.PW && iw < w.IW + pew;
                            if (dIn && hIn && wIn)
                            {
                                sum += src[(id * w.IH + ih) * w.IW + iw];
                                inside++;
                            }
                            if (dPad && hPad && wPad) padded++;
                        }
                    }
                }
                int count = countPad ? padded : inside;
                y[o] = count == 0 ? 0f : sum / count;
            }
        }
    }
}

/// <summary>
/// MaxPool (opsets 1, 8, 10, 11, 12, 22): kernel_shape, strides, pads/auto_pad, dilations, ceil_mode and the
/// optional Indices output (int64, storage_order 0 row-major / 1 column-major). Float, double, half, int8, uint8.
/// </summary>
[OnnxOperator("MaxPool", 1)]
public sealed class MaxPoolKernel : OpKernel
{
    private WindowAttributes _attrs = null!;
    private bool _columnMajor;

    public override void Initialize(KernelInitContext ctx)
    {
        _attrs = WindowAttributes.FromNode(Node);
        _columnMajor = Node.GetInt("storage_order", 0) != 0;
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var g = PoolLoops.Geometry(_attrs, x.Shape, "MaxPool");
        switch (x)
        {
            case Tensor<float> f: Run(ctx, g, f); break;
            case Tensor<double> d: Run(ctx, g, d); break;
            case Tensor<Half> h: Run(ctx, g, h); break;
            case Tensor<sbyte> s: Run(ctx, g, s); break;
            case Tensor<byte> u: Run(ctx, g, u); break;
            default: throw new QuantSharpException($"MaxPool does not support {DataTypes.Name(x.DataType)} input");
        }
    }

    private void Run<T>(KernelContext ctx, ConvGeometry g, Tensor<T> x) where T : INumber<T>, IMinMaxValue<T>
    {
        var shape = g.OutputShape();
        var y = (Tensor<T>)ctx.Output(0, x.DataType, shape);
        var idx = ctx.WantsOutput(1) ? ctx.Output<long>(1, (int[])shape.Clone()) : null;
        var win = new Window3D(g);
        var xd = x.Data; var yd = y.Data; var id = idx?.Data;
        bool cm = _columnMajor;
        if (id is null && xd is float[] xf && yd is float[] yf)
        {
            if (win.KD == 1 && win.OD == 1 && win.KH == 2 && win.KW == 2 && win.SH == 2 && win.SW == 2 && win.DH == 1 && win.DW == 1
                && win.PH == 0 && win.PW == 0 && 2 * win.OH <= win.IH && 2 * win.OW <= win.IW)
            {
                int inS = win.InputSize, outS = win.OutputSize;
                ctx.ParallelFor(g.Batch * g.InputChannels, Math.Max(1, 16384 / Math.Max(1, outS * 4)), (s, e) =>
                    FloatPool.MaxPool2x2(xf.AsSpan(s * inS, (e - s) * inS), e - s, win.IH, win.IW, yf.AsSpan(s * outS, (e - s) * outS), win.OH, win.OW));
                return;
            }
            ctx.ParallelFor(g.Batch * g.InputChannels, Math.Max(1, 16384 / Math.Max(1, win.OutputSize * win.KernelSize)), (s, e) =>
                PoolLoops.MaxFloat(win, xf, yf, s, e));
            return;
        }
        ctx.ParallelFor(g.Batch * g.InputChannels, Math.Max(1, 16384 / Math.Max(1, win.OutputSize * win.KernelSize)), (s, e) =>
            PoolLoops.Max<T>(win, xd, yd, id is null ? default : id.AsSpan(), cm, s, e));
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var attrs = WindowAttributes.FromNode(ctx.Node);
        if (attrs.KernelShape is null) return;
        NnShapes.InferWindow(ctx, 0, 1, s => ConvGeometry.ForPool(attrs, s), null);
        if (ctx.Node.Output(1) is not null && ctx.Node.Output(0)?.Type is { } t)
            ctx.SetOutputType(1, t with { ElementType = DataType.Int64 });
    }
}

/// <summary>
/// AveragePool (opsets 1, 7, 10, 11, 19, 22) for float: count_include_pad (7+), ceil_mode (10+), dilations (19+).
/// </summary>
[OnnxOperator("AveragePool", 1)]
public sealed class AveragePoolKernel : OpKernel
{
    private WindowAttributes _attrs = null!;
    private bool _countPad;

    public override void Initialize(KernelInitContext ctx)
    {
        _attrs = WindowAttributes.FromNode(Node);
        _countPad = Node.GetInt("count_include_pad", 0) != 0;
    }

    public override void Compute(KernelContext ctx)
    {
        var x = NnShapes.FloatInput(ctx, 0, "AveragePool");
        var g = PoolLoops.Geometry(_attrs, x.Shape, "AveragePool");
        var y = ctx.Output<float>(0, g.OutputShape());
        var win = new Window3D(g);
        var xd = x.Data; var yd = y.Data;
        var padsEnd = g.PadsEnd;
        bool countPad = _countPad;
        ctx.ParallelFor(g.Batch * g.InputChannels, Math.Max(1, 16384 / Math.Max(1, win.OutputSize * win.KernelSize)), (s, e) =>
            PoolLoops.Average(win, padsEnd, countPad, xd, yd, s, e));
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var attrs = WindowAttributes.FromNode(ctx.Node);
        if (attrs.KernelShape is null) return;
        NnShapes.InferWindow(ctx, 0, 1, s => ConvGeometry.ForPool(attrs, s), null);
    }
}

/// <summary>GlobalAveragePool / GlobalMaxPool (opsets 1, 22): reduce every spatial axis of [N, C, …] to size 1.</summary>
public abstract class GlobalPoolKernel : OpKernel
{
    protected abstract bool IsMax { get; }

    public override void Compute(KernelContext ctx)
    {
        var x = NnShapes.FloatInput(ctx, 0, Node.OpType);
        if (x.Rank < 2) throw new QuantSharpException($"{Node.OpType} needs an input of rank >= 2, got {ShapeUtil.Format(x.Shape)}");
        var shape = new int[x.Rank];
        shape[0] = x.Shape[0];
        shape[1] = x.Shape[1];
        for (int d = 2; d < shape.Length; d++) shape[d] = 1;
        var y = ctx.Output<float>(0, shape);
        int planes = x.Shape[0] * x.Shape[1], size = planes == 0 ? 0 : x.Length / planes;
        var xd = x.Data; var yd = y.Data;
        bool isMax = IsMax;
        ctx.ParallelFor(planes, Math.Max(1, 65536 / Math.Max(1, size)), (s, e) =>
        {
            for (int p = s; p < e; p++)
            {
                var src = xd.AsSpan(p * size, size);
                if (isMax)
                {
                    float m = float.NegativeInfinity;
                    foreach (float v in src) if (v > m || float.IsNaN(v)) m = v;
                    yd[p] = m;
                }
                else
                {
                    double sum = 0;
                    foreach (float v in src) sum += v;
                    yd[p] = size == 0 ? float.NaN : (float)(sum / size);
                }
            }
        });
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { Shape: { Length: >= 2 } s } t) return;
        var dims = new Dimension[s.Length];
        dims[0] = s[0];
        dims[1] = s[1];
        for (int d = 2; d < dims.Length; d++) dims[d] = 1;
        ctx.SetOutputType(0, t with { Shape = dims });
    }
}

[OnnxOperator("GlobalAveragePool", 1)]
public sealed class GlobalAveragePoolKernel : GlobalPoolKernel
{
    protected override bool IsMax => false;
}

[OnnxOperator("GlobalMaxPool", 1)]
public sealed class GlobalMaxPoolKernel : GlobalPoolKernel
{
    protected override bool IsMax => true;
}
