using System.Runtime.InteropServices;
using QuantSharp.Llm.Formats;

namespace QuantSharp.Llm.Gguf;

/// <summary>
/// GGUF tensor type ids for QuantSharp's own weight formats, and the encoding of every runtime matrix type as GGUF
/// tensor bytes. Types llama.cpp knows keep their ggml ids (F32 = 0, Q4_0 = 2, Q4_1 = 3, Q8_0 = 8, Q4_K = 12) when every
/// row is whole blocks. The private ids start at 1000, far above ggml's (&lt; 64), and a file using them also carries
/// the key <c>quantsharp.private_types</c> listing "id=name" pairs; llama.cpp rejects such files ("invalid ggml type").
/// A matrix is stored with ne = [cols, rows] as usual; the bytes of each private type:
/// <list type="table">
/// <item><term>1000 int8-channel</term><description>rows × fp32 scale, then rows × cols int8 codes (w = scale[r]·q)</description></item>
/// <item><term>1001 u8-tensor</term><description>8-byte header (fp32 scale, uint8 zero, 3 zero bytes), then rows × cols uint8 codes (w = scale·(q − zero))</description></item>
/// <item><term>1010/1011/1012 int4-g32/g64/g128</term><description>per row ⌈cols/G⌉ blocks {fp16 scale, uint8 zero, G/2 nibble bytes}: byte j holds code j (low) and j + G/2 (high)</description></item>
/// <item><term>1013/1014/1015 int3-g32/g64/g128</term><description>per row ⌈cols/G⌉ blocks {fp16 scale, uint8 zero, 3G/8 bytes}: code i in bits [3i, 3i+3) of the little-endian bit stream</description></item>
/// <item><term>1016/1017/1018 int2-g32/g64/g128</term><description>per row ⌈cols/G⌉ blocks {fp16 scale, uint8 zero, G/4 bytes}: code i in bits [2i, 2i+2)</description></item>
/// <item><term>1020/1021/1022/1023 q8_0/q4_0/q4_1/q4_k with a partial last block</term><description>ggml's block layout, ⌈cols/B⌉ blocks per row; the last block's unused slots are zero weights (rows that are not whole blocks, which ggml cannot store)</description></item>
/// </list>
/// All block types: value = scale·(q − zero); every block of a row is stored, so the bytes are exactly the in-memory blocks.
/// </summary>
public static class QuantSharpTypes
{
    public const uint Int8Channel = 1000, U8Tensor = 1001;
    public const uint Int4G32 = 1010, Int4G64 = 1011, Int4G128 = 1012;
    public const uint Int3G32 = 1013, Int3G64 = 1014, Int3G128 = 1015;
    public const uint Int2G32 = 1016, Int2G64 = 1017, Int2G128 = 1018;
    public const uint Q8_0Padded = 1020, Q4_0Padded = 1021, Q4_1Padded = 1022, Q4_KPadded = 1023;

    /// <summary>"id=name" of every private type (the value of the quantsharp.private_types key).</summary>
    public static IReadOnlyDictionary<uint, string> Names { get; } = new Dictionary<uint, string>
    {
        [Int8Channel] = "int8-channel", [U8Tensor] = "u8-tensor",
        [Int4G32] = "int4-g32", [Int4G64] = "int4-g64", [Int4G128] = "int4-g128",
        [Int3G32] = "int3-g32", [Int3G64] = "int3-g64", [Int3G128] = "int3-g128",
        [Int2G32] = "int2-g32", [Int2G64] = "int2-g64", [Int2G128] = "int2-g128",
        [Q8_0Padded] = "q8_0 (partial last block)", [Q4_0Padded] = "q4_0 (partial last block)",
        [Q4_1Padded] = "q4_1 (partial last block)", [Q4_KPadded] = "q4_k (partial last block)",
    };

    public static bool IsPrivate(GgmlType t) => Names.ContainsKey((uint)t);

    /// <summary>Block length and block bytes of a private block type; (0, 0) for the others.</summary>
    private static (int Count, int Size) Block(uint t) => t switch
    {
        Int4G32 => (32, 19), Int4G64 => (64, 35), Int4G128 => (128, 67),
        Int3G32 => (32, 15), Int3G64 => (64, 27), Int3G128 => (128, 51),
        Int2G32 => (32, 11), Int2G64 => (64, 19), Int2G128 => (128, 35),
        Q8_0Padded => (32, 34), Q4_0Padded => (32, 18), Q4_1Padded => (32, 20), Q4_KPadded => (256, 144),
        _ => (0, 0),
    };

    /// <summary>Bytes of a tensor of private type <paramref name="t"/> with GGUF dims (ne[0] = cols); null if the dims do not fit the type.</summary>
    public static long? TensorBytes(GgmlType t, long[] dims)
    {
        if (dims.Length is 0 or > 2 || dims.Any(d => d <= 0 || d > int.MaxValue)) return null;
        long cols = dims[0], rows = dims.Length == 2 ? dims[1] : 1;
        var (count, size) = Block((uint)t);
        try
        {
            return (uint)t switch
            {
                Int8Channel => checked(rows * 4 + rows * cols),
                U8Tensor => checked(8 + rows * cols),
                _ => checked(rows * ((cols + count - 1) / count) * size),
            };
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    /// <summary>The GGUF type and bytes of <paramref name="m"/>; null for a matrix type this encoder does not know (write it as F32).</summary>
    public static (GgmlType Type, byte[] Data)? Encode(WeightMatrix m)
    {
        GgmlType Ggml(GgmlType whole, uint padded, int count) => m.Cols % count == 0 ? whole : (GgmlType)padded;
        return m switch
        {
            F32Matrix f => (GgmlType.F32, MemoryMarshal.AsBytes(f.Values).ToArray()),
            BlockMatrix<BlockQ8_0> b => (Ggml(GgmlType.Q8_0, Q8_0Padded, 32), Bytes(b)),
            BlockMatrix<BlockQ4_0> b => (Ggml(GgmlType.Q4_0, Q4_0Padded, 32), Bytes(b)),
            BlockMatrix<BlockQ4_1> b => (Ggml(GgmlType.Q4_1, Q4_1Padded, 32), Bytes(b)),
            BlockMatrix<BlockQ4_K> b => (Ggml(GgmlType.Q4_K, Q4_KPadded, 256), Bytes(b)),
            BlockMatrix<BlockInt4G32> b => ((GgmlType)Int4G32, Bytes(b)),
            BlockMatrix<BlockInt4G64> b => ((GgmlType)Int4G64, Bytes(b)),
            BlockMatrix<BlockInt4G128> b => ((GgmlType)Int4G128, Bytes(b)),
            BlockMatrix<BlockInt3G32> b => ((GgmlType)Int3G32, Bytes(b)),
            BlockMatrix<BlockInt3G64> b => ((GgmlType)Int3G64, Bytes(b)),
            BlockMatrix<BlockInt3G128> b => ((GgmlType)Int3G128, Bytes(b)),
            BlockMatrix<BlockInt2G32> b => ((GgmlType)Int2G32, Bytes(b)),
            BlockMatrix<BlockInt2G64> b => ((GgmlType)Int2G64, Bytes(b)),
            BlockMatrix<BlockInt2G128> b => ((GgmlType)Int2G128, Bytes(b)),
            Int8ChannelMatrix c => ((GgmlType)Int8Channel, [.. MemoryMarshal.AsBytes(c.Scales), .. MemoryMarshal.AsBytes(c.Codes)]),
            U8TensorMatrix u => ((GgmlType)U8Tensor, [.. HeaderBytes(u.Header), .. u.Codes]),
            _ => null,
        };
    }

    private static byte[] HeaderBytes(U8TensorHeader h) => MemoryMarshal.AsBytes(new ReadOnlySpan<U8TensorHeader>(in h)).ToArray();

    private static byte[] Bytes<T>(BlockMatrix<T> b) where T : unmanaged, IWeightBlock<T> => MemoryMarshal.AsBytes(b.Blocks).ToArray();

    /// <summary>
    /// The runtime matrix for a block-typed tensor: Q8_0/Q4_0/Q4_1 (whole or padded rows) as <see cref="Q8DotMatrix{TBlock}"/>,
    /// Q4_K and the private types as their block/channel/tensor matrices; null for F32/F16/BF16 and other ggml types.
    /// </summary>
    public static WeightMatrix? Decode(string name, GgmlType t, int rows, int cols, ReadOnlySpan<byte> data)
    {
        switch ((uint)t)
        {
            case (uint)GgmlType.Q8_0 or Q8_0Padded: return new Q8DotMatrix<BlockQ8_0>(name, rows, cols, Cast<BlockQ8_0>(data));
            case (uint)GgmlType.Q4_0 or Q4_0Padded: return new Q8DotMatrix<BlockQ4_0>(name, rows, cols, Cast<BlockQ4_0>(data));
            case (uint)GgmlType.Q4_1 or Q4_1Padded: return new Q8DotMatrix<BlockQ4_1>(name, rows, cols, Cast<BlockQ4_1>(data));
            case (uint)GgmlType.Q4_K or Q4_KPadded: return new BlockMatrix<BlockQ4_K>(name, rows, cols, Cast<BlockQ4_K>(data));
            case Int4G32: return new BlockMatrix<BlockInt4G32>(name, rows, cols, Cast<BlockInt4G32>(data));
            case Int4G64: return new BlockMatrix<BlockInt4G64>(name, rows, cols, Cast<BlockInt4G64>(data));
            case Int4G128: return new BlockMatrix<BlockInt4G128>(name, rows, cols, Cast<BlockInt4G128>(data));
            case Int3G32: return new BlockMatrix<BlockInt3G32>(name, rows, cols, Cast<BlockInt3G32>(data));
            case Int3G64: return new BlockMatrix<BlockInt3G64>(name, rows, cols, Cast<BlockInt3G64>(data));
            case Int3G128: return new BlockMatrix<BlockInt3G128>(name, rows, cols, Cast<BlockInt3G128>(data));
            case Int2G32: return new BlockMatrix<BlockInt2G32>(name, rows, cols, Cast<BlockInt2G32>(data));
            case Int2G64: return new BlockMatrix<BlockInt2G64>(name, rows, cols, Cast<BlockInt2G64>(data));
            case Int2G128: return new BlockMatrix<BlockInt2G128>(name, rows, cols, Cast<BlockInt2G128>(data));
            case Int8Channel:
                return new Int8ChannelMatrix(name, rows, cols, MemoryMarshal.Cast<byte, float>(data[..(4 * rows)]).ToArray(),
                    MemoryMarshal.Cast<byte, sbyte>(data[(4 * rows)..]).ToArray());
            case U8Tensor:
                {
                    var h = MemoryMarshal.Read<U8TensorHeader>(data);
                    if (!float.IsFinite(h.Scale) || h.Scale < 0) throw new ModelFormatException($"tensor '{name}': invalid u8-tensor scale {h.Scale}");
                    return new U8TensorMatrix(name, rows, cols, h, data[8..].ToArray());
                }
            default: return null;
        }
    }

    private static T[] Cast<T>(ReadOnlySpan<byte> data) where T : unmanaged => MemoryMarshal.Cast<byte, T>(data).ToArray();
}
