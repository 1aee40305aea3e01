namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>Scalar reference of the quantized element-wise Add that <see cref="Simd.Int8Add"/> must match exactly.</summary>
public static class Int8AddReference
{
    /// <summary>
    /// y = clamp(round_half_even(ma·(a − za) + mb·(b − zb)) + zy, min, max) in float32 (two products, then their sum);
    /// a, b, y are u8 bytes, or s8 as two's-complement bytes when the matching flag is set.
    /// </summary>
    public static int Add(int a, int b, float ma, int za, float mb, int zb, int zy, int min, int max)
    {
        float r = MathF.Round(ma * (a - za) + mb * (b - zb), MidpointRounding.ToEven) + zy;
        return r <= min ? min : r >= max ? max : (int)r;
    }

    /// <summary><see cref="Add(int, int, float, int, float, int, int, int, int)"/> over equal-length spans.</summary>
    public static void Add(ReadOnlySpan<byte> a, bool aSigned, ReadOnlySpan<byte> b, bool bSigned, Span<byte> y,
        float ma, int za, float mb, int zb, int zy, int min, int max)
    {
        for (int i = 0; i < y.Length; i++)
            y[i] = (byte)Add(aSigned ? (sbyte)a[i] : a[i], bSigned ? (sbyte)b[i] : b[i], ma, za, mb, zb, zy, min, max);
    }
}
