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

    public override void Initialize(KernelInitContext ctx) => _attrs = WindowAttributes.FromNode(ctx.Node);

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var w = ctx.Input(1);
        var g = ConvGeometry.ForConv(_attrs, x.Shape, w.Shape);
        int xZero = ctx.OptionalInput(2) is { } xz ? QuantTensorOps.ScalarInt(xz, "x_zero_point") : 0;
        var wZero = IntConv.ChannelZeroPoints(ctx.OptionalInput(3), g.OutputChannels, "w_zero_point");
        var y = ctx.Output<int>(0, g.OutputShape());
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

    public override void Initialize(KernelInitContext ctx) => _attrs = WindowAttributes.FromNode(ctx.Node);

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
