using System.Runtime.CompilerServices;
using System.Numerics;
using QuantSharp.Graph;
using QuantSharp.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace QuantSharp.Runtime.Operators;

[OnnxOperator("Sin", 7)]
public sealed class SinKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Sin(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Sin(x, y);
}

[OnnxOperator("Cos", 7)]
public sealed class CosKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Cos(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Cos(x, y);
}

[OnnxOperator("Tan", 7)]
public sealed class TanKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Tan(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Tan(x, y);
}

[OnnxOperator("Asin", 7)]
public sealed class AsinKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Asin(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Asin(x, y);
}

[OnnxOperator("Acos", 7)]
public sealed class AcosKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Acos(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Acos(x, y);
}

[OnnxOperator("Atan", 7)]
public sealed class AtanKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Atan(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Atan(x, y);
}

[OnnxOperator("Sinh", 9)]
public sealed class SinhKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Sinh(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Sinh(x, y);
}

[OnnxOperator("Cosh", 9)]
public sealed class CoshKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Cosh(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Cosh(x, y);
}

[OnnxOperator("Asinh", 9)]
public sealed class AsinhKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Asinh(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Asinh(x, y);
}

[OnnxOperator("Acosh", 9)]
public sealed class AcoshKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Acosh(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Acosh(x, y);
}

[OnnxOperator("Atanh", 9)]
public sealed class AtanhKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Atanh(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Atanh(x, y);
}

/// <summary>A unary op given by a scalar formula in double (for the less common activations).</summary>
public abstract class ScalarUnaryKernel : UnaryKernel
{
    protected abstract double F(double x);

    /// <summary>eˣ − 1 without cancellation for small |x| (first series terms below 1e-5).</summary>
    internal static double Expm1(double x) => Math.Abs(x) < 1e-5 ? x + x * x / 2 + x * x * x / 6 : Math.Exp(x) - 1;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = (float)F(x[i]);
    }

    protected override void Apply(ReadOnlySpan<double> x, Span<double> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = F(x[i]);
    }
}

/// <summary>Elu: x for x ≥ 0, alpha·(eˣ − 1) otherwise (alpha 1).</summary>
[OnnxOperator("Elu", 6)]
public sealed class EluKernel : ScalarUnaryKernel
{
    private double _alpha;
    public override void Initialize(KernelInitContext ctx) => _alpha = Node.GetFloat("alpha", 1f);
    protected override double F(double x) => x < 0 ? _alpha * ScalarUnaryKernel.Expm1(x) : x;
}

/// <summary>Selu: gamma·(x for x &gt; 0, alpha·(eˣ − 1) otherwise), with ONNX's default alpha and gamma.</summary>
[OnnxOperator("Selu", 6)]
public sealed class SeluKernel : ScalarUnaryKernel
{
    private double _alpha, _gamma;

    public override void Initialize(KernelInitContext ctx)
    {
        _alpha = Node.GetFloat("alpha", 1.67326319217681884765625f);
        _gamma = Node.GetFloat("gamma", 1.05070102214813232421875f);
    }

    protected override double F(double x) => _gamma * (x > 0 ? x : _alpha * ScalarUnaryKernel.Expm1(x));
}

/// <summary>Celu (opset 12): max(0, x) + min(0, alpha·(e^(x/alpha) − 1)).</summary>
[OnnxOperator("Celu", 12)]
public sealed class CeluKernel : ScalarUnaryKernel
{
    private double _alpha;
    public override void Initialize(KernelInitContext ctx) => _alpha = Node.GetFloat("alpha", 1f);
    protected override double F(double x) => Math.Max(0, x) + Math.Min(0, _alpha * ScalarUnaryKernel.Expm1(x / _alpha));
}

/// <summary>Softplus: log(1 + eˣ) = max(x, 0) + log(1 + e^−|x|), which neither overflows nor loses small values.</summary>
[OnnxOperator("Softplus", 1)]
public sealed class SoftplusKernel : ScalarUnaryKernel
{
    protected override double F(double x) => Math.Max(x, 0) + Math.Log(1 + Math.Exp(-Math.Abs(x)));
}

/// <summary>Softsign: x / (1 + |x|).</summary>
[OnnxOperator("Softsign", 1)]
public sealed class SoftsignKernel : ScalarUnaryKernel
{
    protected override double F(double x) => x / (1 + Math.Abs(x));
}

/// <summary>ThresholdedRelu (opset 10): x where x &gt; alpha (default 1), else 0.</summary>
[OnnxOperator("ThresholdedRelu", 10)]
public sealed class ThresholdedReluKernel : ScalarUnaryKernel
{
    private double _alpha;
    public override void Initialize(KernelInitContext ctx) => _alpha = Node.GetFloat("alpha", 1f);
    protected override double F(double x) => x > _alpha ? x : 0;
}

/// <summary>Shrink (opset 9): x + bias below −lambd, x − bias above lambd, 0 between (lambd 0.5, bias 0).</summary>
[OnnxOperator("Shrink", 9)]
public sealed class ShrinkKernel : ScalarUnaryKernel
{
    private double _lambd, _bias;

    public override void Initialize(KernelInitContext ctx)
    {
        _lambd = Node.GetFloat("lambd", 0.5f);
        _bias = Node.GetFloat("bias", 0f);
    }

    protected override double F(double x) => x < -_lambd ? x + _bias : x > _lambd ? x - _bias : 0;

    protected override bool ApplyInteger(Tensor x, Tensor y)
    {
        var d = Conversions.Convert(x, DataType.Double).As<double>().Data;
        for (int i = 0; i < d.Length; i++) d[i] = F(d[i]);
        Conversions.Convert(new Tensor<double>(d, (int[])x.Shape.Clone()), y);
        return true;
    }
}

/// <summary>IsNaN (opset 9): bool tensor, true where x is NaN.</summary>
[OnnxOperator("IsNaN", 9)]
public sealed class IsNaNKernel : OpKernel
{
    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output<bool>(0, (int[])x.Shape.Clone()).Data;
        var d = Conversions.Convert(x, DataType.Double).As<double>().Data;
        for (int i = 0; i < y.Length; i++) y[i] = double.IsNaN(d[i]);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is { } t) ctx.SetOutputType(0, t with { ElementType = DataType.Bool });
    }
}

/// <summary>IsInf (opset 10): bool tensor, true at +inf (detect_positive, default 1) and −inf (detect_negative, default 1).</summary>
[OnnxOperator("IsInf", 10)]
public sealed class IsInfKernel : OpKernel
{
    public override void Compute(KernelContext ctx)
    {
        bool pos = Node.GetInt("detect_positive", 1) != 0, neg = Node.GetInt("detect_negative", 1) != 0;
        var x = ctx.Input(0);
        var y = ctx.Output<bool>(0, (int[])x.Shape.Clone()).Data;
        var d = Conversions.Convert(x, DataType.Double).As<double>().Data;
        for (int i = 0; i < y.Length; i++)
        {
            double v = d[i];
            y[i] = (pos && double.IsPositiveInfinity(v)) || (neg && double.IsNegativeInfinity(v));
        }
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is { } t) ctx.SetOutputType(0, t with { ElementType = DataType.Bool });
    }
}

/// <summary>Remainder with the sign of the dividend (C fmod); Mod with fmod=1.</summary>
public readonly struct FModOp<T> : IBinaryOp<T, T> where T : INumber<T>
{
    public static void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) { for (int i = 0; i < y.Length; i++) y[i] = Rem(a[i], b[i]); }
    public static void Apply(ReadOnlySpan<T> a, T b, Span<T> y) { for (int i = 0; i < y.Length; i++) y[i] = Rem(a[i], b); }
    public static void Apply(T a, ReadOnlySpan<T> b, Span<T> y) { for (int i = 0; i < y.Length; i++) y[i] = Rem(a, b[i]); }

    internal static T Rem(T a, T b)
    {
        if (T.IsZero(b) && T.IsInteger(b) && !(typeof(T) == typeof(float) || typeof(T) == typeof(double)))
            throw new QuantSharpException("integer modulo by zero");
        return a % b;
    }
}

/// <summary>Remainder with the sign of the divisor (Python/NumPy %); Mod with fmod=0.</summary>
public readonly struct FloorModOp<T> : IBinaryOp<T, T> where T : INumber<T>
{
    public static void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) { for (int i = 0; i < y.Length; i++) y[i] = Mod(a[i], b[i]); }
    public static void Apply(ReadOnlySpan<T> a, T b, Span<T> y) { for (int i = 0; i < y.Length; i++) y[i] = Mod(a[i], b); }
    public static void Apply(T a, ReadOnlySpan<T> b, Span<T> y) { for (int i = 0; i < y.Length; i++) y[i] = Mod(a, b[i]); }

    private static T Mod(T a, T b)
    {
        T r = FModOp<T>.Rem(a, b);
        if (!T.IsZero(r) && T.IsNegative(r) != T.IsNegative(b)) r += b;
        return r;
    }
}

/// <summary>Mod (opset 10): fmod=0 (integers only) takes the divisor's sign, fmod=1 the dividend's.</summary>
[OnnxOperator("Mod", 10)]
public sealed class ModKernel : NumericBinaryKernel
{
    protected override void Run<T>(KernelContext ctx, T[] a, int[] aShape, T[] b, int[] bShape, T[] y)
    {
        if (Node.GetInt("fmod", 0) != 0) Broadcast.Binary<T, T, FModOp<T>>(ctx, a, aShape, b, bShape, y);
        else Broadcast.Binary<T, T, FloorModOp<T>>(ctx, a, aShape, b, bShape, y);
    }
}

public readonly struct ShiftLeftOp<T> : IBinaryOp<T, T> where T : IBinaryInteger<T>, IUnsignedNumber<T>
{
    public static void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) { for (int i = 0; i < y.Length; i++) y[i] = Shift(a[i], b[i]); }
    public static void Apply(ReadOnlySpan<T> a, T b, Span<T> y) { for (int i = 0; i < y.Length; i++) y[i] = Shift(a[i], b); }
    public static void Apply(T a, ReadOnlySpan<T> b, Span<T> y) { for (int i = 0; i < y.Length; i++) y[i] = Shift(a, b[i]); }

    // Shifting by the bit width or more gives 0 (NumPy), not the hardware's modulo-width shift.
    private static T Shift(T a, T n) => ulong.CreateTruncating(n) >= (ulong)(a.GetByteCount() * 8) ? T.Zero : a << int.CreateTruncating(n);
}

public readonly struct ShiftRightOp<T> : IBinaryOp<T, T> where T : IBinaryInteger<T>, IUnsignedNumber<T>
{
    public static void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) { for (int i = 0; i < y.Length; i++) y[i] = Shift(a[i], b[i]); }
    public static void Apply(ReadOnlySpan<T> a, T b, Span<T> y) { for (int i = 0; i < y.Length; i++) y[i] = Shift(a[i], b); }
    public static void Apply(T a, ReadOnlySpan<T> b, Span<T> y) { for (int i = 0; i < y.Length; i++) y[i] = Shift(a, b[i]); }

    private static T Shift(T a, T n) => ulong.CreateTruncating(n) >= (ulong)(a.GetByteCount() * 8) ? T.Zero : a >>> int.CreateTruncating(n);
}

/// <summary>BitShift (opset 11): unsigned integers shifted LEFT or RIGHT by the second input, with broadcasting.</summary>
[OnnxOperator("BitShift", 11)]
public sealed class BitShiftKernel : OpKernel
{
    public override void Compute(KernelContext ctx)
    {
        var a = ctx.Input(0);
        var b = ctx.Input(1);
        if (a.DataType != b.DataType) throw new QuantSharpException("BitShift inputs have different types");
        bool left = Node.GetString("direction", "") switch
        {
            "LEFT" => true,
            "RIGHT" => false,
            var d => throw new QuantSharpException($"BitShift direction must be LEFT or RIGHT, got '{d}'"),
        };
        var y = ctx.Output(0, a.DataType, ShapeUtil.Broadcast(a.Shape, b.Shape));
        switch (y)
        {
            case Tensor<byte> t: Run(ctx, a.As<byte>(), b.As<byte>(), t.Data, left); break;
            case Tensor<ushort> t: Run(ctx, a.As<ushort>(), b.As<ushort>(), t.Data, left); break;
            case Tensor<uint> t: Run(ctx, a.As<uint>(), b.As<uint>(), t.Data, left); break;
            case Tensor<ulong> t: Run(ctx, a.As<ulong>(), b.As<ulong>(), t.Data, left); break;
            default: throw new QuantSharpException($"BitShift does not accept {DataTypes.Name(a.DataType)} inputs");
        }
    }

    private static void Run<T>(KernelContext ctx, Tensor<T> a, Tensor<T> b, T[] y, bool left) where T : IBinaryInteger<T>, IUnsignedNumber<T>
    {
        if (left) Broadcast.Binary<T, T, ShiftLeftOp<T>>(ctx, a.Data, a.Shape, b.Data, b.Shape, y);
        else Broadcast.Binary<T, T, ShiftRightOp<T>>(ctx, a.Data, a.Shape, b.Data, b.Shape, y);
    }

    public override void InferTypes(TypeInferenceContext ctx) => Broadcast.InferElementwise(ctx);
}
