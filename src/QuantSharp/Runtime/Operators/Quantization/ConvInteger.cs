using System.Numerics;
using QuantSharp.Graph;
using QuantSharp.Quantization.Math;
using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators.Quantization;

/// <summary>
/// ConvInteger (opset 10): Y = (W − w_zero_point) ⊛ (X − x_zero_point) in int32, with groups, strides, pads,
/// dilations and auto_pad as in Conv. X and W are uint8 or int8; x_zero_point is a scalar; w_zero_point is a
/// scalar or one value per output channel [M]. Padding contributes 0 (the padded input equals its zero point).
/// </summary>
[OnnxOperator("ConvInteger", 10)]
public sealed class ConvIntegerKernel : OpKernel
{
    private WindowAttributes _attrs = null!;
    private ConstantInt8ConvWeights? _packedW;

    public override void Initialize(KernelInitContext ctx)
    {
        _attrs = WindowAttributes.FromNode(ctx.Node);
        _packedW = ConstantInt8ConvWeights.TryCreate(ctx, _attrs, 1, 3);
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var w = ctx.Input(1);
        var g = ConvGeometry.ForConv(_attrs, x.Shape, w.Shape);
        int xZero = ctx.OptionalInput(2) is { } xz ? QuantTensorOps.ScalarInt(xz, "x_zero_point") : 0;
        var wZero = IntConv.ChannelZeroPoints(ctx.OptionalInput(3), g.OutputChannels, "w_zero_point");
        var y = ctx.Output<int>(0, g.OutputShape());
        if (_packedW is null || !_packedW.TryAccumulate(ctx, g, x, xZero, w, null, y.Data))
            IntConv.Accumulate(ctx, g, x, xZero, w, wZero, null, y.Data);
    }

    public override void InferTypes(TypeInferenceContext ctx) => IntConv.InferTypes(ctx, 1, DataType.Int32);
}

/// <summary>
/// QLinearConv (opset 10): inputs x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B.
/// acc[m] = Σ (x − x_zp)(w − w_zp[m]) + B[m] in int32, then
/// y = saturate(round_half_even(acc · (x_scale · w_scale[m] / y_scale)) + y_zp), the multiplier formed in float32.
/// w_scale / w_zero_point are scalars or per output channel [M]; B is optional int32 [M]; x, w, y are uint8 or int8.
/// </summary>
[OnnxOperator("QLinearConv", 10)]
public sealed class QLinearConvKernel : OpKernel
{
    private WindowAttributes _attrs = null!;
    private ConstantInt8ConvWeights? _packedW;

    public override void Initialize(KernelInitContext ctx)
    {
        _attrs = WindowAttributes.FromNode(ctx.Node);
        _packedW = ConstantInt8ConvWeights.TryCreate(ctx, _attrs, 3, 5);
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var w = ctx.Input(3);
        var yZeroT = ctx.Input(7);
        if (yZeroT.DataType is not (DataType.UInt8 or DataType.Int8))
            throw new QuantSharpException($"y_zero_point must be uint8 or int8, got {DataTypes.Name(yZeroT.DataType)}");
        var g = ConvGeometry.ForConv(_attrs, x.Shape, w.Shape);
        int m = g.OutputChannels;
        float xScale = (float)QuantTensorOps.ScalarDouble(ctx.Input(1), "x_scale");
        int xZero = QuantTensorOps.ScalarInt(ctx.Input(2), "x_zero_point");
        var wScaleT = ctx.Input(4);
        var wScale = QuantTensorOps.ToFloats(wScaleT, "w_scale");
        if (wScale.Length != 1 && wScale.Length != m)
            throw new QuantSharpException($"w_scale has {wScale.Length} elements, expected 1 or {m} (output channels)");
        var wZero = IntConv.ChannelZeroPoints(ctx.Input(5), m, "w_zero_point");
        float yScale = (float)QuantTensorOps.ScalarDouble(ctx.Input(6), "y_scale");
        int yZero = QuantTensorOps.ScalarInt(yZeroT, "y_zero_point");
        int[]? bias = null;
        if (ctx.OptionalInput(8) is { } bt)
        {
            if (bt.DataType != DataType.Int32) throw new QuantSharpException($"B must be int32, got {DataTypes.Name(bt.DataType)}");
            if (bt.Length != m) throw new QuantSharpException($"B has {bt.Length} elements, expected {m} (output channels)");
            bias = bt.As<int>().Data;
        }
        var acc = ctx.RentScratch<int>(ShapeUtil.Product(g.OutputShape()));
        var codes = ctx.RentScratch<int>(acc.Length);
        if (_packedW is null || !_packedW.TryAccumulate(ctx, g, x, xZero, w, bias, acc))
            IntConv.Accumulate(ctx, g, x, xZero, w, wZero, bias, acc);

        var mult = new float[m];
        for (int c = 0; c < m; c++) mult[c] = xScale * wScale[wScale.Length == 1 ? 0 : c] / yScale;
        var (qmin, qmax) = QuantMath.Range(yZeroT.DataType);
        var y = ctx.Output(0, yZeroT.DataType, g.OutputShape());
        int outS = g.OutputSpatialSize;
        ctx.ParallelFor(g.Batch * m, Math.Max(1, 16384 / Math.Max(1, outS)), (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
            {
                float mu = mult[p % m];
                for (int i = p * outS, end = i + outS; i < end; i++)
                    codes[i] = IntMatMul.RequantizeOne(acc[i], mu, yZero, qmin, qmax);
            }
        });
        QuantTensorOps.StoreInts(y, codes);
        ctx.ReturnScratch(acc);
        ctx.ReturnScratch(codes);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var yt = QuantTensorOps.InputDtype(ctx, 7);
        IntConv.InferTypes(ctx, 3, yt == DataType.Undefined ? QuantTensorOps.InputDtype(ctx, 0) : yt);
    }
}

/// <summary>
/// Constant int8 convolution weights W [M, C/g, k…] (with a constant or absent zero point) packed once per group for
/// the int8 GEMM driver (<see cref="Kernels.Simd.Int8Gemm"/>: generated VNNI/AMX code or the best managed kernel).
/// Per image and group: A = im2col of x with output positions as rows and (c, k) as columns, padding filled with
/// x_zero_point (so it contributes 0 after the zero-point correction); C = (A − x_zp)·(W_gᵀ − w_zp) is
/// positions × channels, written transposed into y[n, m, o] with the int32 bias added.
/// </summary>
internal sealed class ConstantInt8ConvWeights
{
    private readonly Tensor _source;
    private readonly Kernels.Simd.PackedInt8Weights[] _groups;
    private readonly Kernels.Simd.IInt8GemmKernel? _kernel;

    /// <summary>How many convolutions took the packed path (process-wide; tests check the path is used).</summary>
    internal static long Uses;

    private ConstantInt8ConvWeights(Tensor source, Kernels.Simd.PackedInt8Weights[] groups, Kernels.Simd.IInt8GemmKernel? kernel)
    {
        _source = source;
        _groups = groups;
        _kernel = kernel;
    }

    /// <summary>Packs input <paramref name="wInput"/> when it is an int8 initializer of rank ≥ 3 whose output channels
    /// divide by the group count, and input <paramref name="zeroPointInput"/> is absent or a constant of 1 or M values.</summary>
    public static ConstantInt8ConvWeights? TryCreate(KernelInitContext ctx, WindowAttributes attrs, int wInput, int zeroPointInput)
    {
        if (ctx.Constant(wInput) is not Tensor<sbyte> w || w.Rank < 3) return null;
        int m = w.Shape[0], group = attrs.Group;
        if (m == 0 || group <= 0 || m % group != 0) return null;
        int[] zp = new int[m];
        if (ctx.Node.Input(zeroPointInput) is not null)
        {
            var z = ctx.Constant(zeroPointInput);
            if (z is null || (z.Length != 1 && z.Length != m)) return null;
            var v = QuantTensorOps.ToInts(z, "w_zero_point");
            for (int i = 0; i < m; i++) zp[i] = v[v.Length == 1 ? 0 : i];
        }
        int mg = m / group, kg = w.Length / m;
        var kernel = Kernels.Jit.GeneratedInt8Kernel.Select(ctx.Options.IntegerExecution.GeneratedCode);
        int align = Kernels.Jit.GeneratedInt8Kernel.KAlignmentFor(kernel);
        var groups = new Kernels.Simd.PackedInt8Weights[group];
        for (int g = 0; g < group; g++)
            groups[g] = Kernels.Simd.PackedInt8Weights.Pack(kg, mg, w.Data.AsSpan(g * mg * kg, mg * kg), kg, true, zp.AsSpan(g * mg, mg), align);
        return new ConstantInt8ConvWeights(w, groups, kernel);
    }

    /// <summary>y (int32, [N, M, out…]) = bias + Σ (x − xZero)(w − w_zp) when <paramref name="w"/> is the packed tensor.</summary>
    public bool TryAccumulate(KernelContext ctx, ConvGeometry g, Tensor x, int xZero, Tensor w, int[]? bias, int[] y)
    {
        if (!ReferenceEquals(w, _source) || g.Group != _groups.Length) return false;
        switch (x)
        {
            case Tensor<byte> u: Run(ctx, g, u.Data, xZero, bias, y); break;
            case Tensor<sbyte> s: Run(ctx, g, s.Data, xZero, bias, y); break;
            default: return false;
        }
        Interlocked.Increment(ref Uses);
        return true;
    }

    private void Run<T>(KernelContext ctx, ConvGeometry g, T[] x, int xZero, int[]? bias, int[] y) where T : unmanaged, IBinaryInteger<T>
    {
        int cg = g.InputChannelsPerGroup, mg = g.OutputChannelsPerGroup, m = g.OutputChannels;
        int kg = cg * g.KernelSize, inS = g.InputSpatialSize, outS = g.OutputSpatialSize;
        if (y.Length == 0) return;
        var col = ctx.RentScratch<T>(checked(outS * kg));
        var acc = ctx.RentScratch<int>(checked(outS * mg));
        try
        {
            for (int n = 0; n < g.Batch; n++)
                for (int grp = 0; grp < g.Group; grp++)
                {
                    int xOff = (n * g.InputChannels + grp * cg) * inS;
                    ctx.ParallelFor(kg, Math.Max(1, 65536 / Math.Max(1, outS)), (r0, r1) =>
                        Im2ColTransposed(g, x.AsSpan(xOff, cg * inS), T.CreateTruncating(xZero), col, kg, r0, r1));
                    if (typeof(T) == typeof(byte))
                        Kernels.Simd.Int8Gemm.Multiply(outS, System.Runtime.InteropServices.MemoryMarshal.Cast<T, byte>(col.AsSpan(0, outS * kg)), kg, xZero,
                            _groups[grp], acc, mg, ctx.Threads, _kernel);
                    else
                        Kernels.Simd.Int8Gemm.Multiply(outS, System.Runtime.InteropServices.MemoryMarshal.Cast<T, sbyte>(col.AsSpan(0, outS * kg)), kg, xZero,
                            _groups[grp], acc, mg, ctx.Threads, _kernel);
                    int yOff = (n * m + grp * mg) * outS;
                    ctx.ParallelFor(mg, Math.Max(1, 16384 / Math.Max(1, outS)), (j0, j1) =>
                    {
                        for (int j = j0; j < j1; j++)
                        {
                            int b = bias is null ? 0 : bias[grp * mg + j];
                            var dst = y.AsSpan(yOff + j * outS, outS);
                            for (int o = 0; o < outS; o++) dst[o] = unchecked(acc[o * mg + j] + b);
                        }
                    });
                }
        }
        finally
        {
            ctx.ReturnScratch(col);
            ctx.ReturnScratch(acc);
        }
    }

    /// <summary>
    /// Columns [r0, r1) of the position-major im2col of one image group: col[o·kg + (c, k)] = x[c, o·s − pb + k·d],
    /// or <paramref name="pad"/> (x_zero_point) where that position is padding.
    /// </summary>
    private static void Im2ColTransposed<T>(ConvGeometry g, ReadOnlySpan<T> x, T pad, T[] col, int kg, int r0, int r1)
        where T : unmanaged, IBinaryInteger<T>
    {
        int rank = g.SpatialRank, ks = g.KernelSize, inS = g.InputSpatialSize, outS = g.OutputSpatialSize;
        Span<int> k = stackalloc int[rank];
        Span<int> o = stackalloc int[rank];
        for (int r = r0; r < r1; r++)
        {
            int c = r / ks;
            for (int d = rank - 1, rem = r % ks; d >= 0; d--) { k[d] = rem % g.Kernel[d]; rem /= g.Kernel[d]; }
            var xc = x.Slice(c * inS, inS);
            o.Clear();
            for (int p = 0; p < outS; p++)
            {
                int idx = 0;
                bool inside = true;
                for (int d = 0; d < rank; d++)
                {
                    int pos = o[d] * g.Strides[d] - g.PadsBegin[d] + k[d] * g.Dilations[d];
                    if (pos < 0 || pos >= g.InputSpatial[d]) { inside = false; break; }
                    idx = idx * g.InputSpatial[d] + pos;
                }
                col[p * kg + r] = inside ? xc[idx] : pad;
                for (int d = rank - 1; d >= 0; d--)
                {
                    if (++o[d] < g.OutputSpatial[d]) break;
                    o[d] = 0;
                }
            }
        }
    }
}

/// <summary>The integer convolution core shared by ConvInteger and QLinearConv: int im2col + reference int GEMM.</summary>
internal static class IntConv
{
    /// <summary>A scalar or per-output-channel zero point as one int per channel.</summary>
    public static int[] ChannelZeroPoints(Tensor? zp, int channels, string what)
    {
        var r = new int[channels];
        if (zp is null) return r;
        var v = QuantTensorOps.ToInts(zp, what);
        if (v.Length == 1) Array.Fill(r, v[0]);
        else if (v.Length == channels) Array.Copy(v, r, channels);
        else throw new QuantSharpException($"{what} has {v.Length} elements, expected 1 or {channels} (output channels)");
        return r;
    }

    /// <summary>
    /// y[n, m, o] = bias[m] + Σ_{c in group(m), k} (x[n, c, pos(o, k)] − xZero) · (w[m, c, k] − wZero[m]), where
    /// positions outside the input contribute 0. Per image and group: col = im2col(x − xZero) as a
    /// (C/g·kernel) × out int32 matrix, then Y_g = (W_g − wZero) · col.
    /// </summary>
    public static void Accumulate(KernelContext ctx, ConvGeometry g, Tensor x, int xZero, Tensor w, int[] wZero, int[]? bias, int[] y)
    {
        switch (x)
        {
            case Tensor<byte> tx: WithX(ctx, g, tx.Data, xZero, w, wZero, bias, y); break;
            case Tensor<sbyte> tx: WithX(ctx, g, tx.Data, xZero, w, wZero, bias, y); break;
            default: throw new QuantSharpException($"x must be uint8 or int8, got {DataTypes.Name(x.DataType)}");
        }
    }

    private static void WithX<TX>(KernelContext ctx, ConvGeometry g, TX[] x, int xZero, Tensor w, int[] wZero, int[]? bias, int[] y)
        where TX : unmanaged, IBinaryInteger<TX>
    {
        switch (w)
        {
            case Tensor<byte> tw: Run(ctx, g, x, xZero, tw.Data, wZero, bias, y); break;
            case Tensor<sbyte> tw: Run(ctx, g, x, xZero, tw.Data, wZero, bias, y); break;
            default: throw new QuantSharpException($"w must be uint8 or int8, got {DataTypes.Name(w.DataType)}");
        }
    }

    private static void Run<TX, TW>(KernelContext ctx, ConvGeometry g, TX[] x, int xZero, TW[] w, int[] wZero, int[]? bias, int[] y)
        where TX : unmanaged, IBinaryInteger<TX> where TW : unmanaged, IBinaryInteger<TW>
    {
        int cg = g.InputChannelsPerGroup, mg = g.OutputChannelsPerGroup;
        int ks = g.KernelSize, kg = cg * ks, inS = g.InputSpatialSize, outS = g.OutputSpatialSize;
        if (y.Length == 0) return;
        var col = ctx.RentScratch<int>(checked(kg * outS));
        try
        {
            for (int n = 0; n < g.Batch; n++)
            {
                for (int grp = 0; grp < g.Group; grp++)
                {
                    int xOff = (n * g.InputChannels + grp * cg) * inS;
                    ctx.ParallelFor(kg, Math.Max(1, 65536 / Math.Max(1, outS)), (r0, r1) =>
                        Im2Col(g, x.AsSpan(xOff, cg * inS), xZero, col, r0, r1));
                    int yOff = (n * g.OutputChannels + grp * mg) * outS;
                    ctx.ParallelFor(mg, Math.Max(1, 65536 / Math.Max(1, kg * outS)), (m0, m1) =>
                    {
                        int rows = m1 - m0, m = grp * mg + m0;
                        var ySpan = y.AsSpan(yOff + m0 * outS, rows * outS);
                        IntGemmReference.GemmWidened(rows, outS, kg, w.AsSpan(m * kg, rows * kg), kg,
                            wZero.AsSpan(m, rows), col, ySpan, outS);
                        if (bias is not null)
                            for (int r = 0; r < rows; r++)
                            {
                                int b = bias[m + r];
                                foreach (ref int v in ySpan.Slice(r * outS, outS)) v += b;
                            }
                    });
                }
            }
        }
        finally
        {
            ctx.ReturnScratch(col);
        }
    }

    /// <summary>
    /// Rows [r0, r1) of the im2col matrix of one image group: row (c, k) holds x[c, o·s − pb + k·d] − xZero
    /// for every output position o (row-major over the spatial dims), 0 where the position is padding.
    /// </summary>
    private static void Im2Col<TX>(ConvGeometry g, ReadOnlySpan<TX> x, int xZero, int[] col, int r0, int r1)
        where TX : unmanaged, IBinaryInteger<TX>
    {
        int rank = g.SpatialRank, ks = g.KernelSize, inS = g.InputSpatialSize, outS = g.OutputSpatialSize;
        int last = rank - 1;
        int ow = g.OutputSpatial[last], iw = g.InputSpatial[last], sw = g.Strides[last];
        Span<int> k = stackalloc int[rank];
        Span<int> o = stackalloc int[rank];
        for (int r = r0; r < r1; r++)
        {
            int c = r / ks, ki = r % ks;
            for (int d = last, rem = ki; d >= 0; d--) { k[d] = rem % g.Kernel[d]; rem /= g.Kernel[d]; }
            var dst = col.AsSpan(r * outS, outS);
            var xc = x.Slice(c * inS, inS);
            int lineStart = k[last] * g.Dilations[last] - g.PadsBegin[last];
            o.Clear();
            // Walk output lines (all spatial dims but the last); within a line only the last coordinate varies.
            for (int line = 0; line < outS / Math.Max(1, ow); line++)
            {
                int baseIdx = 0;
                bool inside = true;
                for (int d = 0; d < last; d++)
                {
                    int pos = o[d] * g.Strides[d] - g.PadsBegin[d] + k[d] * g.Dilations[d];
                    if (pos < 0 || pos >= g.InputSpatial[d]) { inside = false; break; }
                    baseIdx = baseIdx * g.InputSpatial[d] + pos;
                }
                var row = dst.Slice(line * ow, ow);
                if (!inside) row.Clear();
                else
                {
                    baseIdx *= iw;
                    for (int j = 0, pos = lineStart; j < ow; j++, pos += sw)
                        row[j] = pos >= 0 && pos < iw ? int.CreateTruncating(xc[baseIdx + pos]) - xZero : 0;
                }
                for (int d = last - 1; d >= 0; d--)
                {
                    if (++o[d] < g.OutputSpatial[d]) break;
                    o[d] = 0;
                }
            }
        }
    }

    /// <summary>Output type of an integer conv whose weight is input <paramref name="weightInput"/>.</summary>
    public static void InferTypes(TypeInferenceContext ctx, int weightInput, DataType outType)
    {
        var attrs = WindowAttributes.FromNode(ctx.Node);
        var ws = NnShapes.KnownShape(ctx, weightInput);
        if (ws is null || ws.Length < 3)
            NnShapes.InferWindowUnknown(ctx, 0, ctx.InputType(weightInput)?.Shape is { Length: > 0 } wd ? wd[0] : Dimension.Unknown);
        else
            NnShapes.InferWindow(ctx, 0, ws[1] * attrs.Group, s => ConvGeometry.ForConv(attrs, s, ws), ws[0]);
        if (ctx.Node.Output(0)?.Type is { } t) ctx.SetOutputType(0, t with { ElementType = outType });
    }
}
