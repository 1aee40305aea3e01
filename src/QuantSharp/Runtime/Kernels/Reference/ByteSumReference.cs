namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>Scalar reference of the exact byte-plane sums that <see cref="Simd.ByteSum"/> must match.</summary>
public static class ByteSumReference
{
    /// <summary>Σ_i (x[i] xor flip): u8 codes with flip = 0, s8 codes shifted to code + 128 with flip = 0x80.</summary>
    public static long Sum(ReadOnlySpan<byte> x, byte flip)
    {
        long s = 0;
        foreach (byte v in x) s += (byte)(v ^ flip);
        return s;
    }
}
