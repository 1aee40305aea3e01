using System.Globalization;

namespace QuantSharp.Llm.Gguf;

/// <summary>
/// One GGUF metadata value. Scalars hold the matching CLR type (byte, sbyte, ushort, short, uint, int, float, bool,
/// string, ulong, long, double); arrays hold a CLR array of the element type (string[] for strings, GgufValue[] for
/// nested arrays) with <see cref="ElementType"/> set.
/// </summary>
public sealed class GgufValue
{
    private GgufValue(GgufValueType type, object value, GgufValueType elementType)
    {
        Type = type;
        Value = value;
        ElementType = elementType;
    }

    public GgufValueType Type { get; }
    public object Value { get; }
    /// <summary>Element type of an array (meaningless for scalars).</summary>
    public GgufValueType ElementType { get; }

    public static GgufValue UInt8(byte v) => new(GgufValueType.UInt8, v, default);
    public static GgufValue Int8(sbyte v) => new(GgufValueType.Int8, v, default);
    public static GgufValue UInt16(ushort v) => new(GgufValueType.UInt16, v, default);
    public static GgufValue Int16(short v) => new(GgufValueType.Int16, v, default);
    public static GgufValue UInt32(uint v) => new(GgufValueType.UInt32, v, default);
    public static GgufValue Int32(int v) => new(GgufValueType.Int32, v, default);
    public static GgufValue Float32(float v) => new(GgufValueType.Float32, v, default);
    public static GgufValue Bool(bool v) => new(GgufValueType.Bool, v, default);
    public static GgufValue String(string v) => new(GgufValueType.String, v, default);
    public static GgufValue UInt64(ulong v) => new(GgufValueType.UInt64, v, default);
    public static GgufValue Int64(long v) => new(GgufValueType.Int64, v, default);
    public static GgufValue Float64(double v) => new(GgufValueType.Float64, v, default);

    public static GgufValue Array(byte[] v) => new(GgufValueType.Array, v, GgufValueType.UInt8);
    public static GgufValue Array(sbyte[] v) => new(GgufValueType.Array, v, GgufValueType.Int8);
    public static GgufValue Array(ushort[] v) => new(GgufValueType.Array, v, GgufValueType.UInt16);
    public static GgufValue Array(short[] v) => new(GgufValueType.Array, v, GgufValueType.Int16);
    public static GgufValue Array(uint[] v) => new(GgufValueType.Array, v, GgufValueType.UInt32);
    public static GgufValue Array(int[] v) => new(GgufValueType.Array, v, GgufValueType.Int32);
    public static GgufValue Array(float[] v) => new(GgufValueType.Array, v, GgufValueType.Float32);
    public static GgufValue Array(bool[] v) => new(GgufValueType.Array, v, GgufValueType.Bool);
    public static GgufValue Array(string[] v) => new(GgufValueType.Array, v, GgufValueType.String);
    public static GgufValue Array(ulong[] v) => new(GgufValueType.Array, v, GgufValueType.UInt64);
    public static GgufValue Array(long[] v) => new(GgufValueType.Array, v, GgufValueType.Int64);
    public static GgufValue Array(double[] v) => new(GgufValueType.Array, v, GgufValueType.Float64);

    /// <summary>An array of arrays; every element must itself be an array.</summary>
    public static GgufValue Array(GgufValue[] v)
    {
        if (v.Any(e => e.Type != GgufValueType.Array)) throw new ArgumentException("a nested GGUF array holds only arrays");
        return new(GgufValueType.Array, v, GgufValueType.Array);
    }

    /// <summary>Number of elements of an array value.</summary>
    public int Count => Type == GgufValueType.Array ? ((System.Array)Value).Length : throw new InvalidOperationException($"{Type} is not an array");

    public override string ToString() => Type switch
    {
        GgufValueType.Array => $"[{ElementType} × {Count}]",
        GgufValueType.String => $"\"{Value}\"",
        _ => Convert.ToString(Value, CultureInfo.InvariantCulture) ?? "",
    };

    public override bool Equals(object? obj) => obj is GgufValue o && o.Type == Type && o.ElementType == ElementType && ValueEquals(Value, o.Value);

    public override int GetHashCode() => HashCode.Combine(Type, ElementType);

    private static bool ValueEquals(object a, object b)
    {
        if (a is System.Array x && b is System.Array y)
        {
            if (x.Length != y.Length) return false;
            for (int i = 0; i < x.Length; i++)
                if (!ValueEquals(x.GetValue(i)!, y.GetValue(i)!)) return false;
            return true;
        }
        // Floats compare by bit pattern so NaN payloads and -0 survive a round trip check.
        if (a is float fa && b is float fb) return BitConverter.SingleToInt32Bits(fa) == BitConverter.SingleToInt32Bits(fb);
        if (a is double da && b is double db) return BitConverter.DoubleToInt64Bits(da) == BitConverter.DoubleToInt64Bits(db);
        return a.Equals(b);
    }
}
