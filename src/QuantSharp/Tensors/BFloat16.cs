namespace QuantSharp.Tensors;

/// <summary>bfloat16: the upper 16 bits of an IEEE float32. Conversion from float rounds to nearest even; NaN stays NaN.</summary>
public readonly struct BFloat16 : IEquatable<BFloat16>
{
    public readonly ushort Bits;

    private BFloat16(ushort bits) => Bits = bits;

    public static BFloat16 FromBits(ushort bits) => new(bits);

    public static explicit operator BFloat16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return new BFloat16((ushort)((u >> 16) | 0x0040));
        // Round to nearest even on the 16 dropped bits: add 0x7FFF plus the lowest kept bit.
        uint rounded = u + 0x7FFFu + ((u >> 16) & 1u);
        return new BFloat16((ushort)(rounded >> 16));
    }

    public static explicit operator float(BFloat16 b) => BitConverter.UInt32BitsToSingle((uint)b.Bits << 16);

    public bool Equals(BFloat16 other) => Bits == other.Bits;
    public override bool Equals(object? obj) => obj is BFloat16 b && Equals(b);
    public override int GetHashCode() => Bits;
    public override string ToString() => ((float)this).ToString(System.Globalization.CultureInfo.InvariantCulture);
}
