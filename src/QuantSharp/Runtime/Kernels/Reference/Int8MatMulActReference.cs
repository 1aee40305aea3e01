namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>Scalar reference of the product of two 8-bit activation matrices that <see cref="Simd.Int8MatMulAct"/> must match exactly.</summary>
public static class Int8MatMulActReference
{
    /// <summary>
    /// y[i, j] = clamp(round_half_even(m · (float)Σ_p (a[i, p] − za)(b[p, j] − zb)) + zy, min, max) for row-major
    /// a (M×K) and b (K×N) of u8 bytes (s8 as two's complement when flagged); the sum is exact in int32 (K ≤ 32 768).
    /// </summary>
    public static void Multiply(ReadOnlySpan<byte> a, bool aSigned, ReadOnlySpan<byte> b, bool bSigned, Span<byte> y,
        int m, int n, int k, float mult, int za, int zb, int zy, int min, int max)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                int acc = 0;
                for (int p = 0; p < k; p++)
                    acc += ((aSigned ? (sbyte)a[i * k + p] : a[i * k + p]) - za) * ((bSigned ? (sbyte)b[p * n + j] : b[p * n + j]) - zb);
                y[i * n + j] = (byte)Requantize(acc, mult, zy, min, max);
            }
    }

    public static int Requantize(int acc, float mult, int zy, int min, int max)
    {
        float r = MathF.Round(mult * (float)acc, MidpointRounding.ToEven) + zy;
        return r <= min ? min : r >= max ? max : (int)r;
    }
}
