using System.Globalization;
using System.Numerics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using System.Runtime.InteropServices;
using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// Element type conversions between every tensor dtype the runtime holds (float, double, float16, bfloat16,
/// int8/16/32/64, uint8/16/32/64, bool, string). Semantics follow ONNX Cast / NumPy astype: float→float rounds
/// to nearest even; float→integer truncates toward zero (out-of-range values saturate, NaN gives 0, both
/// undefined in ONNX); integer→integer keeps the low bits (wraps); anything→bool is "≠ 0" (NaN is true);
/// bool→number is 1 or 0; strings parse and print in the invariant culture.
/// </summary>
public static class Conversions
{
    /// <summary>Converts every element of <paramref name="src"/> into <paramref name="dst"/> (same length).</summary>
    public static void Convert(Tensor src, Tensor dst)
    {
        if (src.Length != dst.Length)
            throw new QuantSharpException($"cannot convert {src} into {dst}: element counts differ");
        if (dst.DataType is DataType.Int4 or DataType.UInt4 && src.DataType != dst.DataType)
        {
            ToNibbles(src, dst);
            return;
        }
        if (src.DataType == dst.DataType || (src.Buffer.GetType() == dst.Buffer.GetType() && src.DataType != DataType.String))
        {
            Array.Copy(src.Buffer, dst.Buffer, src.Length);
            return;
        }
        switch (src)
        {
            case Tensor<float> s: From(s.Data, dst); break;
            case Tensor<double> s: From(s.Data, dst); break;
            case Tensor<Half> s: From(s.Data, dst); break;
            case Tensor<sbyte> s: From(s.Data, dst); break;
            case Tensor<byte> s: From(s.Data, dst); break;
            case Tensor<short> s: From(s.Data, dst); break;
            case Tensor<ushort> s: From(s.Data, dst); break;
            case Tensor<int> s: From(s.Data, dst); break;
            case Tensor<uint> s: From(s.Data, dst); break;
            case Tensor<long> s: From(s.Data, dst); break;
            case Tensor<ulong> s: From(s.Data, dst); break;
            case Tensor<bool> s: From(MemoryMarshal.Cast<bool, byte>(s.Data.AsSpan()).ToArray(), dst); break;
            case Tensor<BFloat16> s: From(ToFloat(s), dst); break;
            case Tensor<string> s: FromStrings(s.Data, dst); break;
            default: throw new QuantSharpException($"cannot convert from {DataTypes.Name(src.DataType)}");
        }
    }

    /// <summary>
    /// To int4/uint4 (held one value per byte): convert to int32 as for any integer target, then keep the low
    /// 4 bits, sign-extended for int4 (so 8 → −8 and −9 → 7, as ONNX's reference does).
    /// </summary>
    private static void ToNibbles(Tensor src, Tensor dst)
    {
        var tmp = new Tensor<int>((int[])src.Shape.Clone());
        Convert(src, tmp);
        if (dst is Tensor<sbyte> s4 && dst.DataType == DataType.Int4)
            for (int i = 0; i < tmp.Length; i++) s4.Data[i] = (sbyte)(((tmp.Data[i] & 0xF) ^ 8) - 8);
        else if (dst is Tensor<byte> u4)
            for (int i = 0; i < tmp.Length; i++) u4.Data[i] = (byte)(tmp.Data[i] & 0xF);
        else throw new QuantSharpException($"cannot convert to {DataTypes.Name(dst.DataType)}");
    }

    /// <summary>A new tensor of dtype <paramref name="to"/> holding <paramref name="src"/>'s values converted.</summary>
    public static Tensor Convert(Tensor src, DataType to)
    {
        var dst = Tensor.Zeros(to, (int[])src.Shape.Clone());
        Convert(src, dst);
        return dst;
    }

    private static void From<TFrom>(TFrom[] s, Tensor dst) where TFrom : unmanaged, INumberBase<TFrom>
    {
        switch (dst)
        {
            case Tensor<float> d:
                if (typeof(TFrom) == typeof(Half)) TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<TFrom, Half>(s), d.Data);
                else TensorPrimitives.ConvertTruncating<TFrom, float>(s, d.Data);
                break;
            case Tensor<double> d: TensorPrimitives.ConvertTruncating<TFrom, double>(s, d.Data); break;
            case Tensor<Half> d:
                if (typeof(TFrom) == typeof(float)) TensorPrimitives.ConvertToHalf(MemoryMarshal.Cast<TFrom, float>(s), d.Data);
                else for (int i = 0; i < s.Length; i++) d.Data[i] = ToHalf(s[i]);
                break;
            case Tensor<sbyte> d: ToInteger(s, d.Data); break;
            case Tensor<byte> d: ToInteger(s, d.Data); break;
            case Tensor<short> d: ToInteger(s, d.Data); break;
            case Tensor<ushort> d: ToInteger(s, d.Data); break;
            case Tensor<int> d: ToInteger(s, d.Data); break;
            case Tensor<uint> d: ToInteger(s, d.Data); break;
            case Tensor<long> d: ToInteger(s, d.Data); break;
            case Tensor<ulong> d: ToInteger(s, d.Data); break;
            case Tensor<bool> d:
                for (int i = 0; i < s.Length; i++) d.Data[i] = !TFrom.IsZero(s[i]);
                break;
            case Tensor<BFloat16> d:
                // Integers and doubles go through float (one rounding for every value up to 2^24; beyond, the
                // double rounding matches what float32-based references produce).
                for (int i = 0; i < s.Length; i++) d.Data[i] = (BFloat16)float.CreateTruncating(s[i]);
                break;
            case Tensor<string> d:
                for (int i = 0; i < s.Length; i++) d.Data[i] = FormatNumber(s[i]);
                break;
            default: throw new QuantSharpException($"cannot convert to {DataTypes.Name(dst.DataType)}");
        }
    }

    private static Half ToHalf<TFrom>(TFrom v) where TFrom : INumberBase<TFrom>
    {
        // double→half rounds once; integers are exact in double.
        return (Half)double.CreateTruncating(v);
    }

    private static void ToInteger<TFrom, TTo>(TFrom[] s, TTo[] d) where TFrom : INumberBase<TFrom> where TTo : INumberBase<TTo>
    {
        if (typeof(TFrom) == typeof(Half))
        {
            // Half→integer through float: exact, then truncation toward zero.
            for (int i = 0; i < s.Length; i++) d[i] = TTo.CreateTruncating(float.CreateTruncating(s[i]));
            return;
        }
        TensorPrimitives.ConvertTruncating<TFrom, TTo>(s, d);
    }

    private static string FormatNumber<T>(T v) where T : INumberBase<T>
    {
        // Shortest round-trip form, NumPy spelling for exponents and specials.
        string r = v switch
        {
            float f when float.IsPositiveInfinity(f) => "inf",
            float f when float.IsNegativeInfinity(f) => "-inf",
            float f when float.IsNaN(f) => "nan",
            double x when double.IsPositiveInfinity(x) => "inf",
            double x when double.IsNegativeInfinity(x) => "-inf",
            double x when double.IsNaN(x) => "nan",
            _ => v.ToString(null, CultureInfo.InvariantCulture),
        };
        return r.Replace('E', 'e');
    }

    private static void FromStrings(string[] s, Tensor dst)
    {
        if (dst is Tensor<string> ds) { Array.Copy(s, ds.Data, s.Length); return; }
        if (dst.DataType is DataType.Int64 or DataType.Int32 or DataType.Int16 or DataType.Int8
            or DataType.UInt8 or DataType.UInt16 or DataType.UInt32 or DataType.UInt64)
        {
            var l = new long[s.Length];
            for (int i = 0; i < s.Length; i++)
            {
                var t = s[i].Trim();
                l[i] = long.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v : (long)ParseDouble(t);
            }
            From(l, dst);
            return;
        }
        var d = new double[s.Length];
        for (int i = 0; i < s.Length; i++) d[i] = ParseDouble(s[i]);
        From(d, dst);
    }

    private static double ParseDouble(string text)
    {
        var t = text.Trim();
        string lower = t.ToLowerInvariant().TrimStart('+');
        if (lower is "inf" or "infinity") return double.PositiveInfinity;
        if (lower is "-inf" or "-infinity") return double.NegativeInfinity;
        if (lower is "nan" or "-nan") return double.NaN;
        if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)) return v;
        throw new QuantSharpException($"cannot parse '{text}' as a number");
    }

    /// <summary>The elements of a float16, bfloat16 or float tensor as float (a copy).</summary>
    public static float[] ToFloat(Tensor t)
    {
        var r = new float[t.Length];
        switch (t)
        {
            case Tensor<float> f: Array.Copy(f.Data, r, r.Length); break;
            case Tensor<Half> h: TensorPrimitives.ConvertToSingle(h.Data, r); break;
            case Tensor<BFloat16> b:
                var bits = MemoryMarshal.Cast<BFloat16, ushort>(b.Data.AsSpan());
                var dst = MemoryMarshal.Cast<float, uint>(r.AsSpan());
                for (int i = 0; i < dst.Length; i++) dst[i] = (uint)bits[i] << 16;
                break;
            default: Convert(t, new Tensor<float>(r, (int[])t.Shape.Clone())); break;
        }
        return r;
    }

    /// <summary>Writes float values into a float16, bfloat16 or float tensor, rounding to nearest even.</summary>
    public static void FromFloat(ReadOnlySpan<float> src, Tensor dst)
    {
        switch (dst)
        {
            case Tensor<float> f: src.CopyTo(f.Data); break;
            case Tensor<Half> h: TensorPrimitives.ConvertToHalf(src, h.Data); break;
            case Tensor<BFloat16> b: for (int i = 0; i < src.Length; i++) b.Data[i] = (BFloat16)src[i]; break;
            default: Convert(new Tensor<float>(src.ToArray(), (int[])dst.Shape.Clone()), dst); break;
        }
    }

    /// <summary>Parses Cast's <c>to</c> attribute: an int dtype (opset 6+) or a dtype name such as "FLOAT" (opset 1).</summary>
    internal static DataType TargetType(Node node)
    {
        var a = node.Attribute("to") ?? throw new QuantSharpException($"node {node.Describe()} has no 'to' attribute");
        if (a.Kind == AttributeKind.Int)
        {
            var dt = (DataType)a.Int;
            if (!Enum.IsDefined(dt)) throw new QuantSharpException($"node {node.Describe()}: unknown data type {a.Int} in 'to'");
            return dt;
        }
        if (a.Kind == AttributeKind.String && Enum.TryParse<DataType>(a.String, ignoreCase: true, out var named)) return named;
        throw new QuantSharpException($"node {node.Describe()}: cannot read 'to' attribute {a}");
    }

    internal static void CheckSupported(DataType dt, Node node)
    {
        if (dt is DataType.Undefined or DataType.Complex64 or DataType.Complex128
            or DataType.Float8E4M3FN or DataType.Float8E4M3FNUZ or DataType.Float8E5M2 or DataType.Float8E5M2FNUZ or DataType.Float4E2M1)
            throw new QuantSharpException($"node {node.Describe()}: Cast to or from {DataTypes.Name(dt)} is not supported");
    }
}

/// <summary>Cast (opset 1: <c>to</c> is a name; 6+: a dtype number; 19+: <c>saturate</c> only affects float8 types).</summary>
[OnnxOperator("Cast", 1)]
public sealed class CastKernel : OpKernel
{
    private DataType _to;

    public override void Initialize(KernelInitContext ctx)
    {
        _to = Conversions.TargetType(Node);
        Conversions.CheckSupported(_to, Node);
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0, _to, (int[])x.Shape.Clone());
        Conversions.Convert(x, y);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var to = Conversions.TargetType(Node);
        ctx.SetOutputType(0, new TensorTypeInfo(to, ctx.InputType(0)?.Shape));
    }
}

/// <summary>CastLike (opset 15+): Cast to the dtype of input 1.</summary>
[OnnxOperator("CastLike", 15)]
public sealed class CastLikeKernel : OpKernel
{
    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var like = ctx.Input(1);
        var y = ctx.Output(0, like.DataType, (int[])x.Shape.Clone());
        Conversions.Convert(x, y);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(1) is { } t) ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, ctx.InputType(0)?.Shape));
    }
}
