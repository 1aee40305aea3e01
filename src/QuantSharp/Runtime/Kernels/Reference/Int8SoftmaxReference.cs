namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>Scalar reference of one row of the quantized Softmax that <see cref="Simd.Int8Softmax"/> must match exactly.</summary>
public static class Int8SoftmaxReference
{
    /// <summary>
    /// With m the largest index x_j xor flip of the row: S = Σ_j exp[m − (x_j xor flip)] summed in index order in
    /// float, inv = 1 / (S · ys), y_j = clamp((int)round_half_even(exp[m − (x_j xor flip)] · inv) + yz, lo, hi),
    /// stored as bytes (s8 as two's complement). <paramref name="exp"/> has 256 entries.
    /// </summary>
    public static void Row(ReadOnlySpan<byte> x, byte flip, ReadOnlySpan<float> exp, float ys, int yz, int lo, int hi, Span<byte> y)
    {
        int m = 0;
        for (int j = 0; j < x.Length; j++) m = Math.Max(m, x[j] ^ flip);
        float sum = 0;
        for (int j = 0; j < x.Length; j++) sum += exp[m - (x[j] ^ flip)];
        float inv = 1f / (sum * ys);
        for (int j = 0; j < x.Length; j++)
            y[j] = (byte)Math.Clamp((int)MathF.Round(exp[m - (x[j] ^ flip)] * inv) + yz, lo, hi);
    }
}
