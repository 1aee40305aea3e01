using System.Numerics;

namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>
/// Scalar reference for the int8 GEMM kernels: C[m, n] = Σ_k (A[m, k] − za) · (B[k, n] − zb[n]) in wrapping
/// int32, A u8 or s8 (m×K row-major), B s8 given K×N or N×K (transposed). The zero points are applied outside
/// the inner loop by expanding the product:
/// Σ(A − za)(B − zb) = ΣA·B − zb·ΣA − za·ΣB + K·za·zb, with row sums ΣA and column sums ΣB computed once.
/// In the ring of int32 (mod 2³²) the expansion is an identity, so it equals <see cref="IntGemmReference"/>.
/// </summary>
public static class Int8GemmReference
{
    /// <summary>C (m×n, leading dimension ldc) for A (lda) and B (ldb; element (k, n) = transB ? b[n·ldb + k] : b[k·ldb + n]).</summary>
    public static void Gemm<TA>(int m, int n, int k, ReadOnlySpan<TA> a, int lda, int aZeroPoint,
        ReadOnlySpan<sbyte> b, int ldb, bool transB, ReadOnlySpan<int> bZeroPoints, Span<int> c, int ldc)
        where TA : unmanaged, IBinaryInteger<TA>
    {
        if (bZeroPoints.Length > 1 && bZeroPoints.Length != n)
            throw new QuantSharpException($"int8 GEMM reference: B has {bZeroPoints.Length} zero points, expected 1 or {n}");
        var colSums = new int[n];
        for (int j = 0; j < n; j++)
        {
            int s = 0;
            for (int p = 0; p < k; p++) s += B(b, ldb, transB, p, j);
            colSums[j] = s;
        }
        for (int i = 0; i < m; i++)
        {
            var ai = a.Slice(i * lda, k);
            int rowSum = 0;
            for (int p = 0; p < k; p++) rowSum += int.CreateTruncating(ai[p]);
            for (int j = 0; j < n; j++)
            {
                int s = 0;
                for (int p = 0; p < k; p++) s += int.CreateTruncating(ai[p]) * B(b, ldb, transB, p, j);
                int zb = bZeroPoints.Length == 0 ? 0 : bZeroPoints.Length == 1 ? bZeroPoints[0] : bZeroPoints[j];
                c[i * ldc + j] = unchecked(s - zb * rowSum - aZeroPoint * colSums[j] + k * aZeroPoint * zb);
            }
        }
    }

    private static int B(ReadOnlySpan<sbyte> b, int ldb, bool transB, int p, int j) => transB ? b[j * ldb + p] : b[p * ldb + j];
}

/// <summary>How an int32 accumulator is scaled to the output quantization.</summary>
public enum RequantizationMode
{
    /// <summary>y = round_half_even((float)acc · M) in float32.</summary>
    FloatMultiplier,

    /// <summary>
    /// Integer only: M = q · 2⁻³¹ · 2^(−shift) with q in [2³⁰, 2³¹); y = rounding_shift(rounding_doubling_high_mul(acc, q), shift).
    /// </summary>
    FixedPoint,
}

/// <summary>
/// Requantization parameters per output column, built once: multiplier M = sa·sb[n] / sy (float), its Q31 form,
/// int32 bias, output zero point and the clamp range [Min, Max] in the output integer domain. A fused Relu is
/// Min = max(Min, zy); a fused Clip(lo, hi) is [round(lo/sy) + zy, round(hi/sy) + zy] intersected with the type
/// range.
/// </summary>
public sealed class Int8Requantization
{
    private Int8Requantization(RequantizationMode mode, int columns, float[] multipliers, int[] bias, int[] q31,
        int[] leftShifts, int[] rightShifts, int zeroPoint, int min, int max)
    {
        Mode = mode;
        Columns = columns;
        Multipliers = multipliers;
        Bias = bias;
        FixedMultipliers = q31;
        LeftShifts = leftShifts;
        RightShifts = rightShifts;
        OutputZeroPoint = zeroPoint;
        Min = min;
        Max = max;
        HasLeftShift = leftShifts.Any(s => s != 0);
    }

    public RequantizationMode Mode { get; }
    public int Columns { get; }
    public float[] Multipliers { get; }
    public int[] Bias { get; }
    public int[] FixedMultipliers { get; }
    public int[] LeftShifts { get; }
    public int[] RightShifts { get; }
    public int OutputZeroPoint { get; }
    public int Min { get; }
    public int Max { get; }
    public bool HasLeftShift { get; }

    /// <summary>
    /// Parameters for <paramref name="columns"/> outputs: multipliers of length 1 (per tensor) or columns
    /// (per channel), each finite and positive; bias empty or of length columns; [min, max] the output clamp range.
    /// </summary>
    public static Int8Requantization Create(int columns, ReadOnlySpan<float> multipliers, ReadOnlySpan<int> bias,
        int outputZeroPoint, int min, int max, RequantizationMode mode)
    {
        if (multipliers.Length != 1 && multipliers.Length != columns)
            throw new QuantSharpException($"requantization: {multipliers.Length} multipliers for {columns} columns");
        if (bias.Length != 0 && bias.Length != columns)
            throw new QuantSharpException($"requantization: {bias.Length} bias values for {columns} columns");
        if (min > max) throw new QuantSharpException($"requantization: empty clamp range [{min}, {max}]");
        var m = new float[columns];
        var q = new int[columns];
        var l = new int[columns];
        var r = new int[columns];
        var bs = new int[columns];
        for (int j = 0; j < columns; j++)
        {
            float mj = multipliers.Length == 1 ? multipliers[0] : multipliers[j];
            if (!(mj > 0) || !float.IsFinite(mj)) throw new QuantSharpException($"requantization: multiplier {mj} of column {j} is not finite and positive");
            m[j] = mj;
            (q[j], l[j], r[j]) = QuantizeMultiplier(mj);
            bs[j] = bias.Length == 0 ? 0 : bias[j];
        }
        return new Int8Requantization(mode, columns, m, bs, q, l, r, outputZeroPoint, min, max);
    }

    /// <summary>
    /// M = q · 2⁻³¹ · 2^(left − right) with q in [2³⁰, 2³¹): frexp gives M = f·2^e, f in [0.5, 1), q = round(f·2³¹).
    /// Multipliers below 2⁻³² (every product rounds to 0 or ±1 at most) become q = 0.
    /// </summary>
    public static (int Q31, int Left, int Right) QuantizeMultiplier(double multiplier)
    {
        int e = Math.ILogB(multiplier) + 1;
        double f = Math.ScaleB(multiplier, -e);
        long q = (long)Math.Round(f * (1L << 31), MidpointRounding.ToEven);
        if (q == 1L << 31)
        {
            q >>= 1;
            e++;
        }
        if (e > 30) throw new QuantSharpException($"requantization: multiplier {multiplier} too large");
        if (e < -31) return (0, 0, 0);
        return ((int)q, Math.Max(e, 0), Math.Max(-e, 0));
    }
}

/// <summary>Scalar reference requantization; the SIMD version must match it bit for bit.</summary>
public static class Int8RequantizeReference
{
    /// <summary>Output code of accumulator <paramref name="acc"/> in column <paramref name="j"/>.</summary>
    public static int Requantize(int acc, int j, Int8Requantization p)
    {
        int x = unchecked(acc + p.Bias[j]);
        int lo = p.Min - p.OutputZeroPoint, hi = p.Max - p.OutputZeroPoint;
        if (p.Mode == RequantizationMode.FloatMultiplier)
        {
            float v = MathF.Round((float)x * p.Multipliers[j], MidpointRounding.ToEven);
            v = Math.Clamp(v, lo, hi);
            return (int)v + p.OutputZeroPoint;
        }
        int y = FixedPointMultiply(x, p.FixedMultipliers[j], p.LeftShifts[j], p.RightShifts[j]);
        return Math.Clamp(y, lo, hi) + p.OutputZeroPoint;
    }

    /// <summary>
    /// Saturating left shift, then round(x·q / 2³¹) with ties away from zero (rounding doubling high multiply:
    /// (x·q ± 2³⁰) / 2³¹ truncated; q ≥ 0 so its one overflow case, x = q = int.MinValue, cannot occur), then a
    /// right shift rounding ties away
    /// from zero: (h >> s) + (remainder > threshold), threshold = (mask >> 1) + (h &lt; 0).
    /// </summary>
    public static int FixedPointMultiply(int x, int q, int left, int right)
    {
        if (left > 0) x = (int)Math.Clamp((long)x << left, int.MinValue, int.MaxValue);
        long ab = (long)x * q;
        long nudge = ab >= 0 ? 1L << 30 : -(1L << 30);
        int h = (int)((ab + nudge) / (1L << 31));
        int mask = (int)((1L << right) - 1);
        int rem = h & mask;
        int threshold = (mask >> 1) + (h < 0 ? 1 : 0);
        return (h >> right) + (rem > threshold ? 1 : 0);
    }

    /// <summary>y[i, j] = requantize(acc[i, j]) for an m×n block; codes are written as bytes (s8 as two's complement).</summary>
    public static void Run(int m, int n, ReadOnlySpan<int> acc, int ldAcc, Int8Requantization p, Span<byte> y, int ldy)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                y[i * ldy + j] = (byte)Requantize(acc[i * ldAcc + j], j, p);
    }
}
