namespace QuantSharp.Tensors;

/// <summary>Element types; the numeric values are those of ONNX's TensorProto.DataType.</summary>
public enum DataType
{
    Undefined = 0,
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    UInt32 = 12,
    UInt64 = 13,
    Complex64 = 14,
    Complex128 = 15,
    BFloat16 = 16,
    Float8E4M3FN = 17,
    Float8E4M3FNUZ = 18,
    Float8E5M2 = 19,
    Float8E5M2FNUZ = 20,
    UInt4 = 21,
    Int4 = 22,
    Float4E2M1 = 23,
}

public static class DataTypes
{
    /// <summary>
    /// The CLR element type a tensor of this dtype is held in at run time. 4-bit types are held unpacked,
    /// one value per byte (Int4 in sbyte, UInt4 in byte); packing two per byte happens only in files.
    /// </summary>
    public static Type ClrType(DataType t) => t switch
    {
        DataType.Float => typeof(float),
        DataType.Double => typeof(double),
        DataType.UInt8 or DataType.UInt4 => typeof(byte),
        DataType.Int8 or DataType.Int4 => typeof(sbyte),
        DataType.UInt16 => typeof(ushort),
        DataType.Int16 => typeof(short),
        DataType.Int32 => typeof(int),
        DataType.Int64 => typeof(long),
        DataType.UInt32 => typeof(uint),
        DataType.UInt64 => typeof(ulong),
        DataType.Bool => typeof(bool),
        DataType.String => typeof(string),
        DataType.Float16 => typeof(Half),
        DataType.BFloat16 => typeof(BFloat16),
        _ => throw new QuantSharpException($"data type {t} is not supported"),
    };

    /// <summary>The natural dtype of a CLR element type (byte → UInt8, sbyte → Int8).</summary>
    public static DataType FromClr<T>() => FromClr(typeof(T));

    public static DataType FromClr(Type t)
    {
        if (t == typeof(float)) return DataType.Float;
        if (t == typeof(double)) return DataType.Double;
        if (t == typeof(byte)) return DataType.UInt8;
        if (t == typeof(sbyte)) return DataType.Int8;
        if (t == typeof(ushort)) return DataType.UInt16;
        if (t == typeof(short)) return DataType.Int16;
        if (t == typeof(int)) return DataType.Int32;
        if (t == typeof(long)) return DataType.Int64;
        if (t == typeof(uint)) return DataType.UInt32;
        if (t == typeof(ulong)) return DataType.UInt64;
        if (t == typeof(bool)) return DataType.Bool;
        if (t == typeof(string)) return DataType.String;
        if (t == typeof(Half)) return DataType.Float16;
        if (t == typeof(BFloat16)) return DataType.BFloat16;
        throw new QuantSharpException($"CLR type {t.Name} has no tensor data type");
    }

    /// <summary>Storage bits per element in an ONNX file (4 for int4/uint4, 0 for strings).</summary>
    public static int BitsPerElement(DataType t) => t switch
    {
        DataType.Float or DataType.Int32 or DataType.UInt32 => 32,
        DataType.Double or DataType.Int64 or DataType.UInt64 or DataType.Complex64 => 64,
        DataType.Complex128 => 128,
        DataType.UInt8 or DataType.Int8 or DataType.Bool => 8,
        DataType.Float8E4M3FN or DataType.Float8E4M3FNUZ or DataType.Float8E5M2 or DataType.Float8E5M2FNUZ => 8,
        DataType.UInt16 or DataType.Int16 or DataType.Float16 or DataType.BFloat16 => 16,
        DataType.UInt4 or DataType.Int4 or DataType.Float4E2M1 => 4,
        _ => 0,
    };

    public static bool IsFloatingPoint(DataType t) =>
        t is DataType.Float or DataType.Double or DataType.Float16 or DataType.BFloat16;

    public static bool IsInteger(DataType t) => t is DataType.UInt8 or DataType.Int8 or DataType.UInt16 or DataType.Int16
        or DataType.Int32 or DataType.Int64 or DataType.UInt32 or DataType.UInt64 or DataType.UInt4 or DataType.Int4;

    /// <summary>Lower-case ONNX-style name: float, uint8, int4, bfloat16 …</summary>
    public static string Name(DataType t) => t switch
    {
        DataType.Float => "float",
        DataType.Float16 => "float16",
        DataType.BFloat16 => "bfloat16",
        _ => t.ToString().ToLowerInvariant(),
    };
}
