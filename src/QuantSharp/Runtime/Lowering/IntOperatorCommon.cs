using System.Numerics;
using System.Runtime.Intrinsics;
using QuantSharp.Graph;
using QuantSharp.Quantization.Math;
using QuantSharp.Runtime.Operators.Quantization;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Lowering;

/// <summary>Names and helpers shared by the integer operators of the <see cref="IntegerLowering.Domain"/> domain.</summary>
internal static class IntOps
{
    public static float Scalar(Tensor? t, string what) => t is null
        ? throw new QuantSharpException($"{what} must be a constant")
        : t.Length == 1 ? QuantTensorOps.ToFloats(t, what)[0] : throw new QuantSharpException($"{what} must be a scalar, got {t}");

    public static int ZeroPoint(Tensor? t, string what) => t is null ? 0 : t.Length == 1
        ? QuantTensorOps.ToInts(t, what)[0] : throw new QuantSharpException($"{what} must be a scalar, got {t}");

    /// <summary>Element type of a quantized activation described by its zero point (uint8 when absent).</summary>
    public static DataType TypeOf(Tensor? zeroPoint) => zeroPoint?.DataType ?? DataType.UInt8;

    /// <summary>
    /// Clamp range of the output in quantized units: the type's range, narrowed by the folded activation's float
    /// bounds act_min / act_max (Relu: [0, +∞); Clip: [min, max]) as round(bound / s_y) + z_y.
    /// </summary>
    public static (int Min, int Max) ClampRange(Node node, DataType type, float yScale, int yZero)
    {
        var (lo, hi) = QuantMath.Range(type);
        if (node.Attribute("act_min") is { } mn)
            lo = Math.Max(lo, QuantMath.Saturate(QuantMath.RoundHalfToEven((double)mn.Float / yScale) + yZero, lo, hi));
        if (node.Attribute("act_max") is { } mx)
            hi = Math.Min(hi, QuantMath.Saturate(QuantMath.RoundHalfToEven((double)mx.Float / yScale) + yZero, lo, hi));
        return (lo, hi);
    }

    /// <summary>The bytes of a u8 or s8 tensor (s8 as two's complement); other types are an error.</summary>
    public static Span<byte> Bytes(Tensor t) => t switch
    {
        Tensor<sbyte> s => System.Runtime.InteropServices.MemoryMarshal.AsBytes(s.Data.AsSpan()),
        Tensor<byte> u => u.Data.AsSpan(),
        _ => throw new QuantSharpException($"expected a uint8 or int8 tensor, got {t}"),
    };

    public static void Store<T>(T[] dst, int i, int v) where T : unmanaged, IBinaryInteger<T> => dst[i] = T.CreateTruncating(v);
}

/// <summary>
/// Requantization target of a lowered Conv / Gemm / MatMul: an 8-bit output (y_scale, y_zero_point given) or the
/// dequantized float value acc · s_x·s_w[c] + bias[c], clamped by the folded activation.
/// </summary>
internal sealed class OutputStage
{
    public Requantizer? Quantized { get; }
    public DataType OutputType { get; }
    private readonly float[] _scale;
    private readonly float[] _bias;
    private readonly float _min, _max;

    public OutputStage(Node node, KernelInitContext ctx, int channels, float xScale, float[] wScale, int yScaleIndex, int yZeroIndex, int biasIndex)
    {
        var accScale = new float[wScale.Length];
        for (int i = 0; i < wScale.Length; i++) accScale[i] = xScale * wScale[i];
        var biasT = ctx.Constant(biasIndex);
        float[]? bias = biasT is null ? null : QuantTensorOps.ToFloats(biasT, "bias");
        if (bias is not null && bias.Length != channels && bias.Length != 1)
            throw new QuantSharpException($"bias has {bias.Length} elements, expected {channels}");
        _scale = new float[channels];
        _bias = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            _scale[c] = accScale[accScale.Length == 1 ? 0 : c];
            _bias[c] = bias is null ? 0 : bias[bias.Length == 1 ? 0 : c];
        }
        _min = node.Attribute("act_min")?.Float ?? float.NegativeInfinity;
        _max = node.Attribute("act_max")?.Float ?? float.PositiveInfinity;
        if (node.Input(yScaleIndex) is null)
        {
            OutputType = DataType.Float;
            return;
        }
        float ys = IntOps.Scalar(ctx.Constant(yScaleIndex), "y_scale");
        var yzT = ctx.Constant(yZeroIndex);
        int yz = IntOps.ZeroPoint(yzT, "y_zero_point");
        OutputType = IntOps.TypeOf(yzT);
        var (lo, hi) = IntOps.ClampRange(node, OutputType, ys, yz);
        var mode = ctx.Options.IntegerExecution.Requantization;
        Quantized = new Requantizer(channels, accScale, bias, ys, yz, lo, hi, mode);
    }

    /// <summary>
    /// Requantizes rows × channels accumulators (row-major, channels c0.. along a row) and stores them transposed:
    /// channel c0 + j of row r goes to dst[dstStart + j·dstChannelStride + r].
    /// </summary>
    public void WriteTransposed(Array dst, int dstStart, int dstChannelStride, Span<int> acc, int rows, int channels, int c0)
    {
        // Blocks of 32 rows: the block's accumulators (32·channels ints) stay in L1 while they are read column by
        // column, instead of striding through the whole tile once per channel.
        const int Block = 32;
        for (int r0 = 0; r0 < rows; r0 += Block)
        {
            int rn = Math.Min(Block, rows - r0);
            var blk = acc.Slice(r0 * channels, rn * channels);
            int start = dstStart + r0;
            if (dst is float[] f)
            {
                for (int r = 0; r < rn; r++)
                    for (int j = 0; j < channels; j++)
                        f[start + j * dstChannelStride + r] = Math.Clamp(blk[r * channels + j] * _scale[c0 + j] + _bias[c0 + j], _min, _max);
                continue;
            }
            for (int r = 0; r < rn; r++) Quantized!.ApplyRow(blk.Slice(r * channels, channels), c0);
            if (dst is byte[] u)
            {
                for (int j = 0; j < channels; j++)
                {
                    var d = u.AsSpan(start + j * dstChannelStride, rn);
                    for (int r = 0; r < rn; r++) d[r] = (byte)blk[r * channels + j];
                }
            }
            else
            {
                var sb = (sbyte[])dst;
                for (int j = 0; j < channels; j++)
                {
                    var d = sb.AsSpan(start + j * dstChannelStride, rn);
                    for (int r = 0; r < rn; r++) d[r] = (sbyte)blk[r * channels + j];
                }
            }
        }
    }

    /// <summary>Requantizes one channel's accumulators and stores them contiguously at dst[dstStart..].</summary>
    public void WriteChannel(Array dst, int dstStart, Span<int> acc, int c)
    {
        switch (dst)
        {
            case float[] f:
                for (int r = 0; r < acc.Length; r++) f[dstStart + r] = Math.Clamp(acc[r] * _scale[c] + _bias[c], _min, _max);
                break;
            case byte[] u:
                Quantized!.ApplyChannel(acc, c);
                NarrowToBytes(acc, u.AsSpan(dstStart, acc.Length));
                break;
            case sbyte[] s:
                Quantized!.ApplyChannel(acc, c);
                for (int r = 0; r < acc.Length; r++) s[dstStart + r] = (sbyte)acc[r];
                break;
        }
    }

    /// <summary>dst[r] = (byte)acc[r] for requantized values (already inside [0, 255]), 32 at a time by two narrowing steps.</summary>
    internal static void NarrowToBytes(ReadOnlySpan<int> acc, Span<byte> dst)
    {
        int r = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; r <= acc.Length - 32; r += 32)
            {
                var lo = Vector256.Narrow(Vector256.Create(acc.Slice(r, 8)), Vector256.Create(acc.Slice(r + 8, 8)));
                var hi = Vector256.Narrow(Vector256.Create(acc.Slice(r + 16, 8)), Vector256.Create(acc.Slice(r + 24, 8)));
                Vector256.Narrow(lo.AsUInt16(), hi.AsUInt16()).CopyTo(dst.Slice(r, 32));
            }
        for (; r < acc.Length; r++) dst[r] = (byte)acc[r];
    }

    /// <summary>Requantizes one row of accumulators (channel c0 + j = column j; c0 > 0 for a segment of a row, e.g. a
    /// GEMM tile) and stores it at dst[dstStart + j].</summary>
    public void WriteRow(Array dst, int dstStart, Span<int> acc, int c0 = 0)
    {
        if (Quantized is not null && dst is byte[] or sbyte[])
        {
            // One contiguous row: requantize in place, then narrow 32 at a time (truncation keeps s8 codes' bytes).
            Quantized.ApplyRow(acc, c0);
            var bytes = System.Runtime.InteropServices.MemoryMarshal.CreateSpan(
                ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(dst), dst.Length);
            NarrowToBytes(acc, bytes.Slice(dstStart, acc.Length));
            return;
        }
        WriteTransposed(dst, dstStart, 1, acc, 1, acc.Length, c0);
    }
}
