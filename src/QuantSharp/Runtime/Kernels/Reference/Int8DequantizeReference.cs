namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>Scalar reference of the per-tensor 8-bit DequantizeLinear that <see cref="Simd.Int8Dequantize"/> must match bit for bit.</summary>
public static class Int8DequantizeReference
{
    /// <summary>y = (float)(x − z) · s in float32; x are u8 bytes, or s8 as two's-complement bytes when <paramref name="signed"/>.</summary>
    public static void Dequantize(ReadOnlySpan<byte> x, bool signed, float s, int z, Span<float> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] = (float)((signed ? (sbyte)x[i] : x[i]) - z) * s;
    }
}
