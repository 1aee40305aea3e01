namespace QuantSharp.Quantization.Math;

/// <summary>
/// Packing of narrow codes into bytes, low bits first: with b bits per code (1, 2, 4 or 8) element i sits in
/// byte i·b / 8 at bit offset (i·b) mod 8, so for 4 bits element 2i is the low nibble (as <see cref="Int4"/> and
/// ONNX int4 do). Signed codes are stored as b-bit two's complement. A partial last byte is padded with zero bits.
/// Binary codes ±1 are stored as one bit (1 → +1, 0 → −1); ternary codes {−1, 0, +1} as 2-bit two's complement
/// (0b11, 0b00, 0b01).
/// </summary>
public static class CodePacking
{
    /// <summary>Bytes needed for <paramref name="count"/> codes of <paramref name="bits"/> bits.</summary>
    public static int PackedLength(int count, int bits)
    {
        CheckBits(bits);
        return (int)(((long)count * bits + 7) / 8);
    }

    /// <summary>Packs codes, each of which must fit <paramref name="bits"/> bits (signed or unsigned).</summary>
    public static byte[] Pack(ReadOnlySpan<int> codes, int bits, bool signed)
    {
        CheckBits(bits);
        int min = signed ? -(1 << (bits - 1)) : 0, max = signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
        int mask = (1 << bits) - 1, perByte = 8 / bits;
        var packed = new byte[PackedLength(codes.Length, bits)];
        for (int i = 0; i < codes.Length; i++)
        {
            int v = codes[i];
            if (v < min || v > max)
                throw new QuantSharpException($"code {v} at index {i} does not fit {(signed ? "signed" : "unsigned")} {bits} bits [{min}, {max}]");
            packed[i / perByte] |= (byte)((v & mask) << ((i % perByte) * bits));
        }
        return packed;
    }

    /// <summary>Unpacks <paramref name="destination"/>.Length codes, sign-extending when <paramref name="signed"/>.</summary>
    public static void Unpack(ReadOnlySpan<byte> packed, int bits, bool signed, Span<int> destination)
    {
        if (packed.Length < PackedLength(destination.Length, bits))
            throw new QuantSharpException($"{packed.Length} packed bytes cannot hold {destination.Length} {bits}-bit codes");
        int mask = (1 << bits) - 1, perByte = 8 / bits, shiftBack = 32 - bits;
        for (int i = 0; i < destination.Length; i++)
        {
            int v = (packed[i / perByte] >> ((i % perByte) * bits)) & mask;
            destination[i] = signed ? (v << shiftBack) >> shiftBack : v;
        }
    }

    /// <summary>Packs binary codes (each −1 or +1) one bit each, +1 → 1.</summary>
    public static byte[] PackBinary(ReadOnlySpan<int> codes)
    {
        var packed = new byte[PackedLength(codes.Length, 1)];
        for (int i = 0; i < codes.Length; i++)
        {
            if (codes[i] is not (1 or -1)) throw new QuantSharpException($"binary code {codes[i]} at index {i} is not ±1");
            if (codes[i] == 1) packed[i >> 3] |= (byte)(1 << (i & 7));
        }
        return packed;
    }

    public static void UnpackBinary(ReadOnlySpan<byte> packed, Span<int> destination)
    {
        if (packed.Length < PackedLength(destination.Length, 1))
            throw new QuantSharpException($"{packed.Length} packed bytes cannot hold {destination.Length} binary codes");
        for (int i = 0; i < destination.Length; i++) destination[i] = ((packed[i >> 3] >> (i & 7)) & 1) != 0 ? 1 : -1;
    }

    /// <summary>Packs ternary codes (each −1, 0 or +1) as 2-bit two's complement.</summary>
    public static byte[] PackTernary(ReadOnlySpan<int> codes)
    {
        for (int i = 0; i < codes.Length; i++)
            if (codes[i] is < -1 or > 1) throw new QuantSharpException($"ternary code {codes[i]} at index {i} is not in {{-1, 0, 1}}");
        return Pack(codes, 2, signed: true);
    }

    public static void UnpackTernary(ReadOnlySpan<byte> packed, Span<int> destination)
    {
        Unpack(packed, 2, signed: true, destination);
        foreach (int v in destination)
            if (v == -2) throw new QuantSharpException("packed ternary data holds the unused code 0b10");
    }

    /// <summary>
    /// Packs codes of a scheme in its natural container: binary 1 bit, ternary 2 bits, uniform 2-bit codes in
    /// 2 bits, 3–4-bit codes in 4 bits, 5–8-bit codes in 8 bits; wider codes are not packed (use a 16-bit tensor).
    /// </summary>
    public static byte[] Pack(ReadOnlySpan<int> codes, QuantScheme scheme) => scheme.Code switch
    {
        QuantCode.Binary => PackBinary(codes),
        QuantCode.Ternary => PackTernary(codes),
        _ => Pack(codes, ContainerBits(scheme), scheme.Signed),
    };

    public static void Unpack(ReadOnlySpan<byte> packed, QuantScheme scheme, Span<int> destination)
    {
        switch (scheme.Code)
        {
            case QuantCode.Binary: UnpackBinary(packed, destination); break;
            case QuantCode.Ternary: UnpackTernary(packed, destination); break;
            default: Unpack(packed, ContainerBits(scheme), scheme.Signed, destination); break;
        }
    }

    /// <summary>Bits per code in packed storage for a uniform scheme (2, 4 or 8).</summary>
    public static int ContainerBits(QuantScheme scheme) => scheme.Code switch
    {
        QuantCode.Binary => 1,
        QuantCode.Ternary => 2,
        _ => scheme.Bits switch
        {
            2 => 2,
            <= 4 => 4,
            <= 8 => 8,
            _ => throw new QuantSharpException($"{scheme.Bits}-bit codes are stored unpacked, not in bytes"),
        },
    };

    private static void CheckBits(int bits)
    {
        if (bits is not (1 or 2 or 4 or 8)) throw new QuantSharpException($"codes of {bits} bits cannot be packed into bytes (1, 2, 4 or 8)");
    }
}
