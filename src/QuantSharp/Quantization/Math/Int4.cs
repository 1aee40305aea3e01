namespace QuantSharp.Quantization.Math;

/// <summary>
/// 4-bit integer helpers. At run time int4/uint4 tensors hold one value per sbyte/byte; in files (and in packed
/// weight formats such as MatMulNBits) two values share a byte, element 2i in the low nibble and 2i+1 in the high.
/// </summary>
public static class Int4
{
    public const int Int4Min = -8;
    public const int Int4Max = 7;
    public const int UInt4Min = 0;
    public const int UInt4Max = 15;

    /// <summary>Bytes needed to pack <paramref name="count"/> 4-bit values.</summary>
    public static int PackedLength(int count) => (count + 1) / 2;

    /// <summary>Interprets the low 4 bits of <paramref name="nibble"/> as a two's-complement int4 in [-8, 7].</summary>
    public static sbyte SignExtend(int nibble) => (sbyte)((nibble << 28) >> 28);

    /// <summary>The low nibble (even index) or high nibble (odd index) of the packed byte holding element <paramref name="index"/>.</summary>
    public static int Nibble(ReadOnlySpan<byte> packed, int index) => (packed[index >> 1] >> ((index & 1) * 4)) & 0xF;

    /// <summary>Packs int4 values (each must lie in [-8, 7]) two per byte, low nibble first; an odd tail leaves the last high nibble 0.</summary>
    public static byte[] PackInt4(ReadOnlySpan<sbyte> values)
    {
        var packed = new byte[PackedLength(values.Length)];
        for (int i = 0; i < values.Length; i++)
        {
            int v = values[i];
            if (v < Int4Min || v > Int4Max) throw new QuantSharpException($"int4 value {v} at index {i} is outside [-8, 7]");
            packed[i >> 1] |= (byte)((v & 0xF) << ((i & 1) * 4));
        }
        return packed;
    }

    /// <summary>Packs uint4 values (each must lie in [0, 15]) two per byte, low nibble first.</summary>
    public static byte[] PackUInt4(ReadOnlySpan<byte> values)
    {
        var packed = new byte[PackedLength(values.Length)];
        for (int i = 0; i < values.Length; i++)
        {
            int v = values[i];
            if (v > UInt4Max) throw new QuantSharpException($"uint4 value {v} at index {i} is outside [0, 15]");
            packed[i >> 1] |= (byte)(v << ((i & 1) * 4));
        }
        return packed;
    }

    /// <summary>Unpacks <paramref name="destination"/>.Length int4 values (sign-extended) from low-nibble-first bytes.</summary>
    public static void UnpackInt4(ReadOnlySpan<byte> packed, Span<sbyte> destination)
    {
        if (packed.Length < PackedLength(destination.Length))
            throw new QuantSharpException($"{packed.Length} packed bytes cannot hold {destination.Length} int4 values");
        for (int i = 0; i < destination.Length; i++) destination[i] = SignExtend(Nibble(packed, i));
    }

    /// <summary>Unpacks <paramref name="destination"/>.Length uint4 values from low-nibble-first bytes.</summary>
    public static void UnpackUInt4(ReadOnlySpan<byte> packed, Span<byte> destination)
    {
        if (packed.Length < PackedLength(destination.Length))
            throw new QuantSharpException($"{packed.Length} packed bytes cannot hold {destination.Length} uint4 values");
        for (int i = 0; i < destination.Length; i++) destination[i] = (byte)Nibble(packed, i);
    }

    /// <summary>
    /// Reads element <paramref name="index"/> of a stream of unsigned <paramref name="bits"/>-bit codes (2, 4 or 8)
    /// packed low bits first into bytes.
    /// </summary>
    public static int UnpackCode(ReadOnlySpan<byte> packed, int index, int bits)
    {
        int perByte = 8 / bits;
        int shift = (index % perByte) * bits;
        return (packed[index / perByte] >> shift) & ((1 << bits) - 1);
    }
}
