using System.Numerics;

namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>
/// Scalar reference for <see cref="Simd.Int8ChannelGemm"/>, the "weights on the left" int8 GEMM that convolutions
/// use so that output rows are channels (NCHW written directly):
/// C[m, j] = Σ_k (W[m, k] − zw[m]) · (X[k, j] − zx) in wrapping int32, W s8 (M×K row-major), X u8 or s8 (K×N,
/// leading dimension ldx); and the per-channel float requantization of its accumulators.
/// </summary>
public static class Int8ChannelGemmReference
{
    /// <summary>C (M×N, leading dimension ldc) as above; zero points of W: empty (0), one, or M.</summary>
    public static void Multiply<TX>(int m, int n, int k, ReadOnlySpan<sbyte> w, ReadOnlySpan<int> wZeroPoints,
        ReadOnlySpan<TX> x, int ldx, int xZeroPoint, Span<int> c, int ldc) where TX : unmanaged, IBinaryInteger<TX>
    {
        for (int i = 0; i < m; i++)
        {
            int zw = wZeroPoints.Length == 0 ? 0 : wZeroPoints.Length == 1 ? wZeroPoints[0] : wZeroPoints[i];
            for (int j = 0; j < n; j++)
            {
                int s = 0;
                for (int p = 0; p < k; p++)
                    s = unchecked(s + (w[i * k + p] - zw) * (int.CreateTruncating(x[p * ldx + j]) - xZeroPoint));
                c[i * ldc + j] = s;
            }
        }
    }

    /// <summary>
    /// y = clamp(round_half_even(acc · multiplier + offset) + zp, min, max) in float32 (multiply, then add; no fused
    /// multiply-add), the rounded value clamped to [min − zp, max − zp] before conversion so that out-of-range values
    /// saturate.
    /// </summary>
    public static int Requantize(int acc, float multiplier, float offset, int zeroPoint, int min, int max)
    {
        float r = MathF.Round(acc * multiplier + offset, MidpointRounding.ToEven);
        return r <= min - zeroPoint ? min : r >= max - zeroPoint ? max : (int)r + zeroPoint;
    }
}
