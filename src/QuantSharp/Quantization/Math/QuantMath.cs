using QuantSharp.Tensors;

namespace QuantSharp.Quantization.Math;

/// <summary>
/// Scalar integer-quantization arithmetic shared by the runtime kernels and the quantizers: the value range of
/// each quantized type, round-half-to-even, saturating casts, and the affine formulas
/// q = saturate(round_half_even(x / scale) + zero_point) and x = (q − zero_point) · scale.
/// </summary>
public static class QuantMath
{
    /// <summary>Whether <paramref name="t"/> is an integer type QuantizeLinear can produce (8/16-bit and 4-bit).</summary>
    public static bool IsQuantizedInteger(DataType t) => t is DataType.UInt8 or DataType.Int8 or DataType.UInt16
        or DataType.Int16 or DataType.UInt4 or DataType.Int4;

    /// <summary>Whether <paramref name="t"/> is one of the float8 types (not executed by QuantSharp).</summary>
    public static bool IsFloat8(DataType t) => t is DataType.Float8E4M3FN or DataType.Float8E4M3FNUZ
        or DataType.Float8E5M2 or DataType.Float8E5M2FNUZ;

    /// <summary>Inclusive value range of an integer type; int4 is [-8, 7] and uint4 [0, 15].</summary>
    public static (int Min, int Max) Range(DataType t) => t switch
    {
        DataType.UInt8 => (byte.MinValue, byte.MaxValue),
        DataType.Int8 => (sbyte.MinValue, sbyte.MaxValue),
        DataType.UInt16 => (ushort.MinValue, ushort.MaxValue),
        DataType.Int16 => (short.MinValue, short.MaxValue),
        DataType.UInt4 => (Int4.UInt4Min, Int4.UInt4Max),
        DataType.Int4 => (Int4.Int4Min, Int4.Int4Max),
        DataType.Int32 => (int.MinValue, int.MaxValue),
        _ => throw new QuantSharpException($"{DataTypes.Name(t)} is not an integer quantization type"),
    };

    /// <summary>Round to nearest, ties to even (2.5 → 2, 3.5 → 4, −2.5 → −2), as ONNX prescribes.</summary>
    public static float RoundHalfToEven(float x) => MathF.Round(x, MidpointRounding.ToEven);

    /// <inheritdoc cref="RoundHalfToEven(float)"/>
    public static double RoundHalfToEven(double x) => System.Math.Round(x, MidpointRounding.ToEven);

    /// <summary>Clamps <paramref name="v"/> into [min, max].</summary>
    public static int Saturate(long v, int min, int max) => v < min ? min : v > max ? max : (int)v;

    /// <summary>
    /// Clamps a real value into [min, max] and converts it to int (the value is expected to be integral already,
    /// e.g. after rounding). ±∞ saturate; NaN has no meaningful code and maps to 0 clamped into the range.
    /// </summary>
    public static int Saturate(double v, int min, int max)
    {
        if (double.IsNaN(v)) return System.Math.Clamp(0, min, max);
        return v <= min ? min : v >= max ? max : (int)v;
    }

    public static byte SaturateToUInt8(long v) => (byte)Saturate(v, byte.MinValue, byte.MaxValue);
    public static sbyte SaturateToInt8(long v) => (sbyte)Saturate(v, sbyte.MinValue, sbyte.MaxValue);
    public static ushort SaturateToUInt16(long v) => (ushort)Saturate(v, ushort.MinValue, ushort.MaxValue);
    public static short SaturateToInt16(long v) => (short)Saturate(v, short.MinValue, short.MaxValue);
    public static sbyte SaturateToInt4(long v) => (sbyte)Saturate(v, Int4.Int4Min, Int4.Int4Max);
    public static byte SaturateToUInt4(long v) => (byte)Saturate(v, Int4.UInt4Min, Int4.UInt4Max);
    public static int SaturateToInt32(long v) => Saturate(v, int.MinValue, int.MaxValue);

    /// <summary>Saturating double → int32 after round-half-to-even (NaN → 0).</summary>
    public static int RoundToInt32(double v) => Saturate(RoundHalfToEven(v), int.MinValue, int.MaxValue);

    /// <summary>
    /// y = saturate(round_half_even(x / scale) + zeroPoint) into [qmin, qmax]. The quotient is rounded to float32
    /// first (float32 division, as the ONNX reference computes it for float scales).
    /// </summary>
    public static int Quantize(float x, float scale, int zeroPoint, int qmin, int qmax)
    {
        float q = x / scale;
        return Saturate(RoundHalfToEven((double)q) + zeroPoint, qmin, qmax);
    }

    /// <summary>x = (q − zeroPoint) · scale in float32.</summary>
    public static float Dequantize(int q, float scale, int zeroPoint) => (float)((long)q - zeroPoint) * scale;

    /// <summary>
    /// Rounds a real value to the precision of <paramref name="precision"/> (float, float16, bfloat16; double
    /// leaves it unchanged). Used to emulate a division carried out in that type: for operands already in the
    /// narrower type, the correctly rounded double quotient rounded once more equals the correctly rounded quotient
    /// in that type, because double has at least twice its mantissa bits plus two. (Operands in a wider type must
    /// be rounded to the narrow type first; otherwise the double rounding is not innocuous.)
    /// </summary>
    public static double RoundToPrecision(double v, DataType precision) => precision switch
    {
        DataType.Float => (float)v,
        DataType.Float16 => (double)(Half)v,
        DataType.BFloat16 => (float)(BFloat16)(float)v,
        DataType.Double => v,
        _ => throw new QuantSharpException($"precision {DataTypes.Name(precision)} is not a floating-point type"),
    };
}
