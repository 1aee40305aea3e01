namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>Scalar reference of the quantized same-shape Mul that <see cref="Simd.Int8Mul"/> must match exactly.</summary>
public static class Int8MulReference
{
    /// <summary>
    /// y = clamp(round_half_even(m · (float)((a − za)(b − zb))) + zy, min, max), m = s_a·s_b/s_y: the product of the
    /// centred codes is an exact int32 (|·| ≤ 65 025·4), converted exactly, then one float32 multiply and rounding.
    /// </summary>
    public static int Mul(int a, int b, float m, int za, int zb, int zy, int min, int max)
    {
        float r = MathF.Round(m * (float)((a - za) * (b - zb)), MidpointRounding.ToEven) + zy;
        return r <= min ? min : r >= max ? max : (int)r;
    }

    /// <summary><see cref="Mul(int, int, float, int, int, int, int, int)"/> over equal-length spans of u8 bytes (s8 as two's complement when flagged).</summary>
    public static void Mul(ReadOnlySpan<byte> a, bool aSigned, ReadOnlySpan<byte> b, bool bSigned, Span<byte> y,
        float m, int za, int zb, int zy, int min, int max)
    {
        for (int i = 0; i < y.Length; i++)
            y[i] = (byte)Mul(aSigned ? (sbyte)a[i] : a[i], bSigned ? (sbyte)b[i] : b[i], m, za, zb, zy, min, max);
    }
}
