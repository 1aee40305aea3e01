using System.Runtime.CompilerServices;
using System.Numerics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// Base of elementwise unary kernels. float runs through <see cref="Apply(ReadOnlySpan{float}, Span{float})"/>
/// in parallel chunks; double through <see cref="Apply(ReadOnlySpan{double}, Span{double})"/>; float16 and
/// bfloat16 are computed in float and rounded once; integer types only where <see cref="ApplyInteger"/> handles them.
/// </summary>
public abstract class UnaryKernel : OpKernel
{
    protected abstract void Apply(ReadOnlySpan<float> x, Span<float> y);

    protected abstract void Apply(ReadOnlySpan<double> x, Span<double> y);

    /// <summary>Integer inputs: writes y and returns true, or returns false when the op does not accept them.</summary>
    protected virtual bool ApplyInteger(Tensor x, Tensor y) => false;

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0, x.DataType, (int[])x.Shape.Clone());
        switch (x)
        {
            case Tensor<float> xf:
                var yf = ((Tensor<float>)y).Data;
                Broadcast.Chunked(ctx.Threads, x.Length, (s, e) => Apply(xf.Data.AsSpan(s, e - s), yf.AsSpan(s, e - s)));
                break;
            case Tensor<double> xd:
                var yd = ((Tensor<double>)y).Data;
                Broadcast.Chunked(ctx.Threads, x.Length, (s, e) => Apply(xd.Data.AsSpan(s, e - s), yd.AsSpan(s, e - s)));
                break;
            case Tensor<Half> or Tensor<BFloat16>:
                var f = Conversions.ToFloat(x);
                Broadcast.Chunked(ctx.Threads, f.Length, (s, e) => Apply(f.AsSpan(s, e - s), f.AsSpan(s, e - s)));
                Conversions.FromFloat(f, y);
                break;
            default:
                if (!ApplyInteger(x, y))
                    throw new QuantSharpException($"{Node.OpType} does not accept {DataTypes.Name(x.DataType)} inputs");
                break;
        }
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is { } t) ctx.SetOutputType(0, t);
    }

    /// <summary>Dispatches an integer tensor to a generic element function.</summary>
    protected static bool ForIntegers(Tensor x, Tensor y, IIntegerMap map)
    {
        switch (x)
        {
            case Tensor<int> a: map.Map(a.Data, ((Tensor<int>)y).Data); return true;
            case Tensor<long> a: map.Map(a.Data, ((Tensor<long>)y).Data); return true;
            case Tensor<sbyte> a: map.Map(a.Data, ((Tensor<sbyte>)y).Data); return true;
            case Tensor<short> a: map.Map(a.Data, ((Tensor<short>)y).Data); return true;
            case Tensor<byte> a: map.Map(a.Data, ((Tensor<byte>)y).Data); return true;
            case Tensor<ushort> a: map.Map(a.Data, ((Tensor<ushort>)y).Data); return true;
            case Tensor<uint> a: map.Map(a.Data, ((Tensor<uint>)y).Data); return true;
            case Tensor<ulong> a: map.Map(a.Data, ((Tensor<ulong>)y).Data); return true;
            default: return false;
        }
    }

    protected interface IIntegerMap
    {
        void Map<T>(T[] x, T[] y) where T : IBinaryInteger<T>;
    }
}

[OnnxOperator("Sqrt", 1)]
public sealed class SqrtKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Sqrt(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Sqrt(x, y);
}

[OnnxOperator("Reciprocal", 1)]
public sealed class ReciprocalKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Reciprocal(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Reciprocal(x, y);
}

[OnnxOperator("Exp", 1)]
public sealed class ExpKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Exp(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Exp(x, y);
}

[OnnxOperator("Log", 1)]
public sealed class LogKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Log(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Log(x, y);
}

[OnnxOperator("Floor", 1)]
public sealed class FloorKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Floor(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Floor(x, y);
}

[OnnxOperator("Ceil", 1)]
public sealed class CeilKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Ceiling(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Ceiling(x, y);
}

/// <summary>Round (opset 11): to nearest integer, halves to even.</summary>
[OnnxOperator("Round", 11)]
public sealed class RoundKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Round(x, MidpointRounding.ToEven, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Round(x, MidpointRounding.ToEven, y);
}

/// <summary>Neg; integers wrap (−MinValue = MinValue), as NumPy does.</summary>
[OnnxOperator("Neg", 1)]
public sealed class NegKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Negate(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Negate(x, y);
    protected override bool ApplyInteger(Tensor x, Tensor y) => ForIntegers(x, y, new NegMap());

    private sealed class NegMap : IIntegerMap
    {
        public void Map<T>(T[] x, T[] y) where T : IBinaryInteger<T>
        {
            for (int i = 0; i < x.Length; i++) y[i] = T.Zero - x[i];
        }
    }
}

/// <summary>Abs; integers wrap (|MinValue| = MinValue), as NumPy does.</summary>
[OnnxOperator("Abs", 1)]
public sealed class AbsKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Abs(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Abs(x, y);
    protected override bool ApplyInteger(Tensor x, Tensor y) => ForIntegers(x, y, new AbsMap());

    private sealed class AbsMap : IIntegerMap
    {
        public void Map<T>(T[] x, T[] y) where T : IBinaryInteger<T>
        {
            for (int i = 0; i < x.Length; i++) y[i] = T.IsNegative(x[i]) ? T.Zero - x[i] : x[i];
        }
    }
}

/// <summary>Sign: −1, 0 or 1 in the input's type; NaN stays NaN.</summary>
[OnnxOperator("Sign", 9)]
public sealed class SignKernel : UnaryKernel
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) { float v = x[i]; y[i] = v > 0 ? 1f : v < 0 ? -1f : v == 0 ? 0f : v; }
    }

    protected override void Apply(ReadOnlySpan<double> x, Span<double> y)
    {
        for (int i = 0; i < x.Length; i++) { double v = x[i]; y[i] = v > 0 ? 1.0 : v < 0 ? -1.0 : v == 0 ? 0.0 : v; }
    }

    protected override bool ApplyInteger(Tensor x, Tensor y) => ForIntegers(x, y, new SignMap());

    private sealed class SignMap : IIntegerMap
    {
        public void Map<T>(T[] x, T[] y) where T : IBinaryInteger<T>
        {
            for (int i = 0; i < x.Length; i++) y[i] = T.IsZero(x[i]) ? T.Zero : T.IsNegative(x[i]) ? T.Zero - T.One : T.One;
        }
    }
}

/// <summary>Relu: max(x, 0); integer types from opset 14.</summary>
[OnnxOperator("Relu", 1)]
public sealed class ReluKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Max(x, 0f, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Max(x, 0.0, y);
    protected override bool ApplyInteger(Tensor x, Tensor y) => ForIntegers(x, y, new ReluMap());

    private sealed class ReluMap : IIntegerMap
    {
        public void Map<T>(T[] x, T[] y) where T : IBinaryInteger<T> => TensorPrimitives.Max<T>(x, T.Zero, y);
    }
}

/// <summary>
/// Clip: y = min(max(x, lo), hi). Opset &lt; 11: attributes min/max (default ∓FLT_MAX); opset 11+: optional
/// scalar inputs 1 and 2 (absent = no bound); integer types from opset 12. When lo &gt; hi every value becomes hi.
/// </summary>
[OnnxOperator("Clip", 1)]
public sealed class ClipKernel : OpKernel
{
    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0, x.DataType, (int[])x.Shape.Clone());
        if (OpsetVersion < 11)
        {
            float lo = Node.GetFloat("min", float.MinValue), hi = Node.GetFloat("max", float.MaxValue);
            RunFloating(ctx, x, y, lo, hi);
            return;
        }
        var loT = ctx.OptionalInput(1);
        var hiT = ctx.OptionalInput(2);
        foreach (var b in new[] { loT, hiT })
            if (b is not null && b.Length != 1) throw new QuantSharpException($"Clip bounds must be scalars, got {b}");
        switch (x)
        {
            case Tensor<float> or Tensor<Half> or Tensor<BFloat16>:
                RunFloating(ctx, x, y, loT is null ? float.NegativeInfinity : (float)loT.GetDouble(0),
                    hiT is null ? float.PositiveInfinity : (float)hiT.GetDouble(0));
                break;
            case Tensor<double> xd:
                Clamp(xd.Data, ((Tensor<double>)y).Data, loT is null ? double.NegativeInfinity : loT.GetDouble(0),
                    hiT is null ? double.PositiveInfinity : hiT.GetDouble(0));
                break;
            case Tensor<int> t: Clamp(t.Data, ((Tensor<int>)y).Data, Bound(loT, int.MinValue), Bound(hiT, int.MaxValue)); break;
            case Tensor<long> t: Clamp(t.Data, ((Tensor<long>)y).Data, Bound(loT, long.MinValue), Bound(hiT, long.MaxValue)); break;
            case Tensor<sbyte> t: Clamp(t.Data, ((Tensor<sbyte>)y).Data, Bound(loT, sbyte.MinValue), Bound(hiT, sbyte.MaxValue)); break;
            case Tensor<byte> t: Clamp(t.Data, ((Tensor<byte>)y).Data, Bound(loT, byte.MinValue), Bound(hiT, byte.MaxValue)); break;
            case Tensor<short> t: Clamp(t.Data, ((Tensor<short>)y).Data, Bound(loT, short.MinValue), Bound(hiT, short.MaxValue)); break;
            case Tensor<ushort> t: Clamp(t.Data, ((Tensor<ushort>)y).Data, Bound(loT, ushort.MinValue), Bound(hiT, ushort.MaxValue)); break;
            case Tensor<uint> t: Clamp(t.Data, ((Tensor<uint>)y).Data, Bound(loT, uint.MinValue), Bound(hiT, uint.MaxValue)); break;
            case Tensor<ulong> t: Clamp(t.Data, ((Tensor<ulong>)y).Data, Bound(loT, ulong.MinValue), Bound(hiT, ulong.MaxValue)); break;
            default: throw new QuantSharpException($"Clip does not accept {DataTypes.Name(x.DataType)} inputs");
        }
    }

    private static T Bound<T>(Tensor? t, T fallback) => t is null ? fallback : t.As<T>().Data[0];

    private static void RunFloating(KernelContext ctx, Tensor x, Tensor y, float lo, float hi)
    {
        if (x is Tensor<float> xf)
        {
            var yf = ((Tensor<float>)y).Data;
            Broadcast.Chunked(ctx.Threads, x.Length, (s, e) => ClampSpan(xf.Data.AsSpan(s, e - s), yf.AsSpan(s, e - s), lo, hi));
            return;
        }
        var f = Conversions.ToFloat(x);
        ClampSpan(f, f, lo, hi);
        Conversions.FromFloat(f, y);
    }

    private static void ClampSpan(ReadOnlySpan<float> x, Span<float> y, float lo, float hi)
    {
        // max then min: NaN inputs stay NaN, and lo > hi yields hi everywhere (ONNX's rule).
        TensorPrimitives.Max(x, lo, y);
        TensorPrimitives.Min(y, hi, y);
    }

    private static void Clamp<T>(T[] x, T[] y, T lo, T hi) where T : INumber<T>
    {
        TensorPrimitives.Max<T>(x, lo, y);
        TensorPrimitives.Min<T>(y, hi, y);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is { } t) ctx.SetOutputType(0, t);
    }
}
