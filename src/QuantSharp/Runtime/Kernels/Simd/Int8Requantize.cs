using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantSharp.Runtime.Kernels.Reference;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>
/// Vectorised requantization of int32 accumulators to u8/s8, 8 columns at a time, performing exactly the
/// operations of <see cref="Int8RequantizeReference"/> in the same order (float: convert, multiply, round to even,
/// clamp; fixed point: 64-bit product with nudge and truncating division, rounding right shift, clamp), so the
/// codes are identical. The fixed-point path needs per-lane shifts (AVX2 vpsravd/vpsllvd); without AVX2 it
/// falls back to the reference.
/// </summary>
public static unsafe class Int8Requantize
{
    /// <summary>y[i, j] = requantize(acc[i, j]) for an m×n block; s8 codes are written as two's-complement bytes.</summary>
    public static void Run(int m, int n, ReadOnlySpan<int> acc, int ldAcc, Int8Requantization p, Span<byte> y, int ldy)
    {
        if (m <= 0 || n <= 0) return;
        if (n > p.Columns) throw new QuantSharpException($"requantization: {n} columns but parameters for {p.Columns}");
        if ((long)(m - 1) * ldAcc + n > acc.Length || (long)(m - 1) * ldy + n > y.Length)
            throw new QuantSharpException($"requantization: buffers too small for {m}x{n}");
        bool vector = Vector256.IsHardwareAccelerated && (p.Mode == RequantizationMode.FloatMultiplier || Avx2.IsSupported);
        if (!vector)
        {
            Int8RequantizeReference.Run(m, n, acc, ldAcc, p, y, ldy);
            return;
        }
        fixed (int* pa = acc) fixed (byte* py = y) fixed (float* pm = p.Multipliers) fixed (int* pb = p.Bias)
        fixed (int* pq = p.FixedMultipliers) fixed (int* pl = p.LeftShifts) fixed (int* pr = p.RightShifts)
        {
            for (int i = 0; i < m; i++)
            {
                int* src = pa + (long)i * ldAcc;
                byte* dst = py + (long)i * ldy;
                int j = 0;
                for (; j + 8 <= n; j += 8)
                {
                    var x = Vector256.Load(src + j) + Vector256.Load(pb + j);
                    var v = p.Mode == RequantizationMode.FloatMultiplier
                        ? FloatCodes(x, Vector256.Load(pm + j), p)
                        : FixedCodes(x, pq + j, pl + j, pr + j, p);
                    var s = Vector128.Narrow(v.GetLower(), v.GetUpper()).AsUInt16();
                    *(ulong*)(dst + j) = Vector128.Narrow(s, s).AsUInt64().ToScalar();
                }
                for (; j < n; j++) dst[j] = (byte)Int8RequantizeReference.Requantize(src[j], j, p);
            }
        }
    }

    private static Vector256<int> FloatCodes(Vector256<int> x, Vector256<float> m, Int8Requantization p)
    {
        var v = Vector256.Round(Vector256.ConvertToSingle(x) * m);
        v = Vector256.Min(Vector256.Max(v, Vector256.Create((float)(p.Min - p.OutputZeroPoint))),
            Vector256.Create((float)(p.Max - p.OutputZeroPoint)));
        return Vector256.ConvertToInt32(v) + Vector256.Create(p.OutputZeroPoint);
    }

    private static Vector256<int> FixedCodes(Vector256<int> x, int* q, int* left, int* right, Int8Requantization p)
    {
        if (p.HasLeftShift)
        {
            // Saturating x << left: clamp to [int.MinValue >> left, int.MaxValue >> left] first.
            var l = Vector256.Load(left).AsUInt32();
            var hiBound = Avx2.ShiftRightArithmeticVariable(Vector256.Create(int.MaxValue), l);
            var loBound = Avx2.ShiftRightArithmeticVariable(Vector256.Create(int.MinValue), l);
            x = Avx2.ShiftLeftLogicalVariable(Vector256.Min(Vector256.Max(x, loBound), hiBound), l);
        }
        var qv = Vector256.Load(q);
        var h = Vector256.Narrow(HighMul(Vector256.WidenLower(x), Vector256.WidenLower(qv)),
            HighMul(Vector256.WidenUpper(x), Vector256.WidenUpper(qv)));
        var r = Vector256.Load(right).AsUInt32();
        var mask = Avx2.ShiftLeftLogicalVariable(Vector256<int>.One, r) - Vector256<int>.One;
        var rem = h & mask;
        // threshold = (mask >> 1) + (h < 0); a true comparison is −1, so subtracting it adds one.
        var threshold = Vector256.ShiftRightArithmetic(mask, 1) - Vector256.LessThan(h, Vector256<int>.Zero);
        var y = Avx2.ShiftRightArithmeticVariable(h, r) - Vector256.GreaterThan(rem, threshold);
        y = Vector256.Min(Vector256.Max(y, Vector256.Create(p.Min - p.OutputZeroPoint)), Vector256.Create(p.Max - p.OutputZeroPoint));
        return y + Vector256.Create(p.OutputZeroPoint);
    }

    /// <summary>(x·q + nudge) / 2³¹ truncated toward zero, nudge = ±2³⁰ by the product's sign.</summary>
    private static Vector256<long> HighMul(Vector256<long> x, Vector256<long> q)
    {
        var ab = x * q;
        var negative = Vector256.LessThan(ab, Vector256<long>.Zero);
        var sum = ab + Vector256.ConditionalSelect(negative, Vector256.Create(-(1L << 30)), Vector256.Create(1L << 30));
        // Arithmetic shift floors; adding 2³¹ − 1 to negative values first makes it truncate.
        sum += negative & Vector256.Create((1L << 31) - 1);
        return Vector256.ShiftRightArithmetic(sum, 31);
    }
}
