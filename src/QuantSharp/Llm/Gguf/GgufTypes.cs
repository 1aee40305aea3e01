namespace QuantSharp.Llm.Gguf;

/// <summary>The type tag of a GGUF metadata value (gguf_type in the GGUF specification, stored as uint32).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>ggml tensor element types as numbered in ggml.h (stored as uint32 in a GGUF tensor info).</summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    BF16 = 30,
}

/// <summary>Block geometry of the ggml types: elements per block along ne[0] and bytes per block.</summary>
public static class GgmlTypes
{
    /// <summary>Whether <paramref name="type"/> is one this library knows the size of.</summary>
    public static bool IsKnown(GgmlType type) => Geometry(type).BlockSize > 0;

    /// <summary>Elements per block (1 for plain float types, 32 for Q4_0..Q8_1, 256 for the K types).</summary>
    public static int BlockSize(GgmlType type) => Geometry(type).BlockSize;

    /// <summary>Bytes per block.</summary>
    public static int TypeSize(GgmlType type) => Geometry(type).TypeSize;

    // Sizes follow the block structs: Q4_0 = fp16 d + 16 nibble bytes; Q4_1 = fp16 d, m + 16; Q5_0 = d + 4 high-bit
    // bytes + 16; Q5_1 = d, m + 4 + 16; Q8_0 = d + 32 int8; Q8_1 = d, s + 32; K types are 256-element super-blocks.
    private static (int BlockSize, int TypeSize) Geometry(GgmlType type) => type switch
    {
        GgmlType.F32 => (1, 4),
        GgmlType.F16 => (1, 2),
        GgmlType.BF16 => (1, 2),
        GgmlType.Q4_0 => (32, 18),
        GgmlType.Q4_1 => (32, 20),
        GgmlType.Q5_0 => (32, 22),
        GgmlType.Q5_1 => (32, 24),
        GgmlType.Q8_0 => (32, 34),
        GgmlType.Q8_1 => (32, 36),
        GgmlType.Q2_K => (256, 84),
        GgmlType.Q3_K => (256, 110),
        GgmlType.Q4_K => (256, 144),
        GgmlType.Q5_K => (256, 176),
        GgmlType.Q6_K => (256, 210),
        GgmlType.Q8_K => (256, 292),
        _ => (0, 0),
    };

    /// <summary>Bytes of one row of <paramref name="ne0"/> elements; ne0 must be a multiple of the block size.</summary>
    public static long RowBytes(GgmlType type, long ne0)
    {
        var (bs, ts) = Geometry(type);
        if (bs == 0) throw new QuantSharpException($"ggml type {(uint)type} is not supported");
        if (ne0 % bs != 0) throw new QuantSharpException($"a row of {ne0} elements is not a multiple of the {type} block size {bs}");
        return ne0 / bs * ts;
    }

    /// <summary>llama.cpp's lower-case type name ("f32", "q8_0", …).</summary>
    public static string Name(GgmlType type) => type.ToString().ToLowerInvariant();
}
