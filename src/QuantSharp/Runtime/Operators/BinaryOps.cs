using System.Runtime.CompilerServices;
using System.Numerics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

public readonly struct AddOp<T> : IBinaryOp<T, T> where T : INumber<T>
{
    public static void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Add(a, b, y);
    public static void Apply(ReadOnlySpan<T> a, T b, Span<T> y) => TensorPrimitives.Add(a, b, y);
    public static void Apply(T a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Add(b, a, y);
}

public readonly struct SubOp<T> : IBinaryOp<T, T> where T : INumber<T>
{
    public static void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Subtract(a, b, y);
    public static void Apply(ReadOnlySpan<T> a, T b, Span<T> y) => TensorPrimitives.Subtract(a, b, y);
    public static void Apply(T a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Subtract(a, b, y);
}

public readonly struct MulOp<T> : IBinaryOp<T, T> where T : INumber<T>
{
    public static void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Multiply(a, b, y);
    public static void Apply(ReadOnlySpan<T> a, T b, Span<T> y) => TensorPrimitives.Multiply(a, b, y);
    public static void Apply(T a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Multiply(b, a, y);
}

/// <summary>a / b; integers truncate toward zero (ONNX/NumPy astype semantics) and fail on division by zero.</summary>
public readonly struct DivOp<T> : IBinaryOp<T, T> where T : INumber<T>
{
    public static void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y)
    {
        if (!IsFloat) CheckNonZero(b);
        TensorPrimitives.Divide(a, b, y);
    }

    public static void Apply(ReadOnlySpan<T> a, T b, Span<T> y)
    {
        if (!IsFloat && T.IsZero(b)) throw DivideByZero();
        TensorPrimitives.Divide(a, b, y);
    }

    public static void Apply(T a, ReadOnlySpan<T> b, Span<T> y)
    {
        if (!IsFloat) CheckNonZero(b);
        TensorPrimitives.Divide(a, b, y);
    }

    private static bool IsFloat => typeof(T) == typeof(float) || typeof(T) == typeof(double) || typeof(T) == typeof(Half);

    private static void CheckNonZero(ReadOnlySpan<T> b)
    {
        if (b.IndexOf(T.Zero) >= 0) throw DivideByZero();
    }

    private static QuantSharpException DivideByZero() => new("integer division by zero");
}

/// <summary>Elementwise maximum; NaN in either input gives NaN (NumPy maximum).</summary>
public readonly struct MaxOp<T> : IBinaryOp<T, T> where T : INumber<T>
{
    public static void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Max(a, b, y);
    public static void Apply(ReadOnlySpan<T> a, T b, Span<T> y) => TensorPrimitives.Max(a, b, y);
    public static void Apply(T a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Max(b, a, y);
}

/// <summary>Elementwise minimum; NaN in either input gives NaN (NumPy minimum).</summary>
public readonly struct MinOp<T> : IBinaryOp<T, T> where T : INumber<T>
{
    public static void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Min(a, b, y);
    public static void Apply(ReadOnlySpan<T> a, T b, Span<T> y) => TensorPrimitives.Min(a, b, y);
    public static void Apply(T a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Min(b, a, y);
}

/// <summary>
/// Base of numeric binary kernels with broadcasting: dispatches on the element type. float16 and bfloat16
/// are computed in float and rounded once at the end.
/// </summary>
public abstract class NumericBinaryKernel : OpKernel
{
    /// <summary>y = op(a, b) for one element type; <paramref name="y"/> has the broadcast shape.</summary>
    protected abstract void Run<T>(KernelContext ctx, T[] a, int[] aShape, T[] b, int[] bShape, T[] y) where T : unmanaged, INumber<T>;

    /// <summary>Whether the op accepts integer element types.</summary>
    protected virtual bool AllowsIntegers => true;

    /// <summary>B's shape as broadcast against A (legacy opset-6 alignment by default).</summary>
    protected virtual int[] BShape(int[] aShape, int[] bShape) => LegacyBroadcast.BShape(this, aShape, bShape);

    public override void Compute(KernelContext ctx)
    {
        var a = ctx.Input(0);
        var b = ctx.Input(1);
        if (a.DataType != b.DataType)
            throw new QuantSharpException($"{Node.OpType} inputs have different types {DataTypes.Name(a.DataType)} and {DataTypes.Name(b.DataType)}");
        int[] bShape = BShape(a.Shape, b.Shape);
        int[] shape = ShapeUtil.SameShape(a.Shape, bShape) ? (int[])a.Shape.Clone() : ShapeUtil.Broadcast(a.Shape, bShape);
        var y = ctx.Output(0, a.DataType, shape);
        if (!AllowsIntegers && DataTypes.IsInteger(a.DataType))
            throw new QuantSharpException($"{Node.OpType} does not accept {DataTypes.Name(a.DataType)} inputs");
        switch (y)
        {
            case Tensor<float> t: Run(ctx, a.As<float>().Data, a.Shape, b.As<float>().Data, bShape, t.Data); break;
            case Tensor<double> t: Run(ctx, a.As<double>().Data, a.Shape, b.As<double>().Data, bShape, t.Data); break;
            case Tensor<int> t: Run(ctx, a.As<int>().Data, a.Shape, b.As<int>().Data, bShape, t.Data); break;
            case Tensor<long> t: Run(ctx, a.As<long>().Data, a.Shape, b.As<long>().Data, bShape, t.Data); break;
            case Tensor<sbyte> t: Run(ctx, a.As<sbyte>().Data, a.Shape, b.As<sbyte>().Data, bShape, t.Data); break;
            case Tensor<byte> t: Run(ctx, a.As<byte>().Data, a.Shape, b.As<byte>().Data, bShape, t.Data); break;
            case Tensor<short> t: Run(ctx, a.As<short>().Data, a.Shape, b.As<short>().Data, bShape, t.Data); break;
            case Tensor<ushort> t: Run(ctx, a.As<ushort>().Data, a.Shape, b.As<ushort>().Data, bShape, t.Data); break;
            case Tensor<uint> t: Run(ctx, a.As<uint>().Data, a.Shape, b.As<uint>().Data, bShape, t.Data); break;
            case Tensor<ulong> t: Run(ctx, a.As<ulong>().Data, a.Shape, b.As<ulong>().Data, bShape, t.Data); break;
            case Tensor<Half> or Tensor<BFloat16>:
                var yf = new float[y.Length];
                Run(ctx, Conversions.ToFloat(a), a.Shape, Conversions.ToFloat(b), bShape, yf);
                Conversions.FromFloat(yf, y);
                break;
            default: throw new QuantSharpException($"{Node.OpType} does not accept {DataTypes.Name(a.DataType)} inputs");
        }
    }

    public override void InferTypes(TypeInferenceContext ctx) => Broadcast.InferElementwise(ctx);
}

/// <summary>
/// Opset ≤ 6 binary ops broadcast only when attribute broadcast=1, aligning B's dims with A's starting at
/// <c>axis</c> (default: trailing alignment, which NumPy rules already give).
/// </summary>
internal static class LegacyBroadcast
{
    public static int[] BShape(OpKernel k, int[] aShape, int[] bShape)
    {
        if (k.OpsetVersion >= 7 || k.Node.GetInt("broadcast", 0) == 0 || k.Node.Attribute("axis") is null) return bShape;
        int axis = (int)k.Node.GetInt("axis", 0);
        if (axis < 0) axis += aShape.Length;
        if (axis < 0 || axis + bShape.Length > aShape.Length)
            throw new QuantSharpException($"legacy broadcast axis {axis} does not fit B {ShapeUtil.Format(bShape)} into A {ShapeUtil.Format(aShape)}");
        var r = new int[aShape.Length - axis];
        Array.Fill(r, 1);
        bShape.CopyTo(r, 0);
        return r;
    }
}

[OnnxOperator("Add", 1)]
public sealed class AddKernel : NumericBinaryKernel
{
    protected override void Run<T>(KernelContext ctx, T[] a, int[] aShape, T[] b, int[] bShape, T[] y) =>
        Broadcast.Binary<T, T, AddOp<T>>(ctx, a, aShape, b, bShape, y);
}

[OnnxOperator("Sub", 1)]
public sealed class SubKernel : NumericBinaryKernel
{
    protected override void Run<T>(KernelContext ctx, T[] a, int[] aShape, T[] b, int[] bShape, T[] y) =>
        Broadcast.Binary<T, T, SubOp<T>>(ctx, a, aShape, b, bShape, y);
}

[OnnxOperator("Mul", 1)]
public sealed class MulKernel : NumericBinaryKernel
{
    protected override void Run<T>(KernelContext ctx, T[] a, int[] aShape, T[] b, int[] bShape, T[] y) =>
        Broadcast.Binary<T, T, MulOp<T>>(ctx, a, aShape, b, bShape, y);
}

[OnnxOperator("Div", 1)]
public sealed class DivKernel : NumericBinaryKernel
{
    protected override void Run<T>(KernelContext ctx, T[] a, int[] aShape, T[] b, int[] bShape, T[] y) =>
        Broadcast.Binary<T, T, DivOp<T>>(ctx, a, aShape, b, bShape, y);
}

/// <summary>
/// PRelu: y = x where x ≥ 0, slope·x otherwise; slope broadcasts to x (unidirectionally from opset 7, a
/// per-channel or single value before).
/// </summary>
[OnnxOperator("PRelu", 1)]
public sealed class PReluKernel : NumericBinaryKernel
{
    protected override int[] BShape(int[] aShape, int[] bShape)
    {
        if (OpsetVersion < 7 && aShape.Length >= 2 && bShape.Length == 1 && bShape[0] > 1 && bShape[0] == aShape[1])
        {
            // Opset 6: a 1-D slope of length C applies per channel (axis 1).
            var s = new int[aShape.Length - 1];
            Array.Fill(s, 1);
            s[0] = bShape[0];
            return s;
        }
        return bShape;
    }

    protected override void Run<T>(KernelContext ctx, T[] a, int[] aShape, T[] b, int[] bShape, T[] y) =>
        Broadcast.Binary<T, T, PReluOp<T>>(ctx, a, aShape, b, bShape, y);

    private readonly struct PReluOp<TE> : IBinaryOp<TE, TE> where TE : INumber<TE>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Apply(ReadOnlySpan<TE> a, ReadOnlySpan<TE> b, Span<TE> y)
        {
            for (int i = 0; i < y.Length; i++) y[i] = a[i] < TE.Zero ? a[i] * b[i] : a[i];
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Apply(ReadOnlySpan<TE> a, TE b, Span<TE> y)
        {
            for (int i = 0; i < y.Length; i++) y[i] = a[i] < TE.Zero ? a[i] * b : a[i];
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Apply(TE a, ReadOnlySpan<TE> b, Span<TE> y)
        {
            for (int i = 0; i < y.Length; i++) y[i] = a < TE.Zero ? a * b[i] : a;
        }
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is { } t) ctx.SetOutputType(0, t);
    }
}

/// <summary>
/// Pow: y = a^b. From opset 12 the exponent may have another numeric type than the base; the result has the
/// base's type. Float exponents 1, 2, 3 and 0.5 use multiplications and square roots.
/// </summary>
[OnnxOperator("Pow", 1)]
public sealed class PowKernel : OpKernel
{
    public override void Compute(KernelContext ctx)
    {
        var a = ctx.Input(0);
        var b = ctx.Input(1);
        int[] bShape = LegacyBroadcast.BShape(this, a.Shape, b.Shape);
        int[] shape = ShapeUtil.SameShape(a.Shape, bShape) ? (int[])a.Shape.Clone() : ShapeUtil.Broadcast(a.Shape, bShape);
        var y = ctx.Output(0, a.DataType, shape);
        if (a is Tensor<float> fa && b is Tensor<float> fb)
        {
            var yd = ((Tensor<float>)y).Data;
            if (fb.Length == 1 && fa.Length == y.Length && PowByScalar(ctx, fa.Data, fb.Data[0], yd)) return;
            Broadcast.Binary<float, float, PowOp<float>>(ctx, fa.Data, fa.Shape, fb.Data, bShape, yd);
            return;
        }
        if (a is Tensor<double> da && b is Tensor<double> db)
        {
            Broadcast.Binary<double, double, PowOp<double>>(ctx, da.Data, da.Shape, db.Data, bShape, ((Tensor<double>)y).Data);
            return;
        }
        // Mixed or integer types: compute in double, then convert to the base's type (NumPy astype).
        var ad = ((Tensor<double>)Conversions.Convert(a, DataType.Double)).Data;
        var bd = ((Tensor<double>)Conversions.Convert(b, DataType.Double)).Data;
        var r = new Tensor<double>(shape);
        Broadcast.Binary<double, double, PowOp<double>>(ctx, ad, a.Shape, bd, bShape, r.Data);
        // An integer exponent on an integer base is exact in NumPy; round away the last-bit error of pow().
        // A fractional exponent truncates like astype.
        if (DataTypes.IsInteger(y.DataType) && DataTypes.IsInteger(b.DataType))
            for (int i = 0; i < r.Length; i++) r.Data[i] = Math.Round(r.Data[i]);
        Conversions.Convert(r, y);
    }

    private static bool PowByScalar(KernelContext ctx, float[] x, float e, float[] y)
    {
        switch (e)
        {
            case 1f: Array.Copy(x, y, x.Length); return true;
            case 2f: Broadcast.Chunked(ctx.Threads, x.Length, (s, n) => TensorPrimitives.Multiply(x.AsSpan(s, n - s), x.AsSpan(s, n - s), y.AsSpan(s, n - s))); return true;
            case 3f:
                Broadcast.Chunked(ctx.Threads, x.Length, (s, n) =>
                {
                    var xs = x.AsSpan(s, n - s);
                    var ys = y.AsSpan(s, n - s);
                    TensorPrimitives.Multiply(xs, xs, ys);
                    TensorPrimitives.Multiply(ys, xs, ys);
                });
                return true;
            case 0.5f: Broadcast.Chunked(ctx.Threads, x.Length, (s, n) => TensorPrimitives.Sqrt(x.AsSpan(s, n - s), y.AsSpan(s, n - s))); return true;
            default: return false;
        }
    }

    private readonly struct PowOp<T> : IBinaryOp<T, T> where T : IPowerFunctions<T>, IFloatingPointIeee754<T>
    {
        public static void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Pow(a, b, y);
        public static void Apply(ReadOnlySpan<T> a, T b, Span<T> y) => TensorPrimitives.Pow(a, b, y);
        public static void Apply(T a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Pow(a, b, y);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } a) return;
        ctx.SetOutputType(0, new TensorTypeInfo(a.ElementType, Broadcast.InferShape(a, ctx.InputType(1))));
    }
}

/// <summary>
/// Variadic Max, Min, Sum, Mean with multidirectional broadcasting (opset 8+; earlier versions require equal
/// shapes, which broadcasting includes). The output starts as input 0 broadcast to the full shape, then each
/// further input is folded in place.
/// </summary>
public abstract class VariadicKernel : OpKernel
{
    protected abstract void Fold<T>(KernelContext ctx, T[] acc, int[] shape, T[] x, int[] xShape) where T : unmanaged, INumber<T>;

    protected virtual bool IsMean => false;

    public override void Compute(KernelContext ctx)
    {
        var inputs = new List<Tensor>();
        for (int i = 0; i < ctx.InputCount; i++) if (ctx.HasInput(i)) inputs.Add(ctx.Input(i));
        if (inputs.Count == 0) throw new QuantSharpException($"{Node.OpType} needs at least one input");
        var dt = inputs[0].DataType;
        if (inputs.Any(t => t.DataType != dt)) throw new QuantSharpException($"{Node.OpType} inputs have different types");
        var plan = new BroadcastPlan(inputs.Select(t => t.Shape).ToArray());
        var y = ctx.Output(0, dt, plan.OutputShape);
        switch (y)
        {
            case Tensor<float> t: Run(ctx, inputs.Select(x => x.As<float>().Data).ToList(), inputs, t.Data, plan); break;
            case Tensor<double> t: Run(ctx, inputs.Select(x => x.As<double>().Data).ToList(), inputs, t.Data, plan); break;
            case Tensor<int> t: Run(ctx, inputs.Select(x => x.As<int>().Data).ToList(), inputs, t.Data, plan); break;
            case Tensor<long> t: Run(ctx, inputs.Select(x => x.As<long>().Data).ToList(), inputs, t.Data, plan); break;
            case Tensor<sbyte> t: Run(ctx, inputs.Select(x => x.As<sbyte>().Data).ToList(), inputs, t.Data, plan); break;
            case Tensor<byte> t: Run(ctx, inputs.Select(x => x.As<byte>().Data).ToList(), inputs, t.Data, plan); break;
            case Tensor<short> t: Run(ctx, inputs.Select(x => x.As<short>().Data).ToList(), inputs, t.Data, plan); break;
            case Tensor<ushort> t: Run(ctx, inputs.Select(x => x.As<ushort>().Data).ToList(), inputs, t.Data, plan); break;
            case Tensor<uint> t: Run(ctx, inputs.Select(x => x.As<uint>().Data).ToList(), inputs, t.Data, plan); break;
            case Tensor<ulong> t: Run(ctx, inputs.Select(x => x.As<ulong>().Data).ToList(), inputs, t.Data, plan); break;
            case Tensor<Half> or Tensor<BFloat16>:
                var yf = new float[y.Length];
                Run(ctx, inputs.Select(Conversions.ToFloat).ToList(), inputs, yf, plan);
                Conversions.FromFloat(yf, y);
                break;
            default: throw new QuantSharpException($"{Node.OpType} does not accept {DataTypes.Name(dt)} inputs");
        }
    }

    private void Run<T>(KernelContext ctx, List<T[]> data, List<Tensor> inputs, T[] y, BroadcastPlan plan) where T : unmanaged, INumber<T>
    {
        var first = data[0];
        if (first.Length == y.Length) Array.Copy(first, y, y.Length);
        else
        {
            var expand = new BroadcastPlan(inputs[0].Shape, plan.OutputShape);
            int s0 = expand.InnerStride(0);
            expand.ForEachRun(0, y.Length, (o, offs, len) =>
            {
                if (s0 == 1) Array.Copy(first, offs[0], y, o, len);
                else y.AsSpan(o, len).Fill(first[offs[0]]);
            });
        }
        for (int i = 1; i < data.Count; i++) Fold(ctx, y, plan.OutputShape, data[i], inputs[i].Shape);
        if (IsMean)
        {
            T n = T.CreateTruncating(data.Count);
            TensorPrimitives.Divide(y, n, y);
        }
    }

    public override void InferTypes(TypeInferenceContext ctx) => Broadcast.InferElementwise(ctx);
}

[OnnxOperator("Max", 1)]
public sealed class MaxKernel : VariadicKernel
{
    protected override void Fold<T>(KernelContext ctx, T[] acc, int[] shape, T[] x, int[] xShape) =>
        Broadcast.Binary<T, T, MaxOp<T>>(ctx, acc, shape, x, xShape, acc);
}

[OnnxOperator("Min", 1)]
public sealed class MinKernel : VariadicKernel
{
    protected override void Fold<T>(KernelContext ctx, T[] acc, int[] shape, T[] x, int[] xShape) =>
        Broadcast.Binary<T, T, MinOp<T>>(ctx, acc, shape, x, xShape, acc);
}

[OnnxOperator("Sum", 1)]
public sealed class SumKernel : VariadicKernel
{
    protected override void Fold<T>(KernelContext ctx, T[] acc, int[] shape, T[] x, int[] xShape) =>
        Broadcast.Binary<T, T, AddOp<T>>(ctx, acc, shape, x, xShape, acc);
}

[OnnxOperator("Mean", 1)]
public sealed class MeanKernel : VariadicKernel
{
    protected override bool IsMean => true;

    protected override void Fold<T>(KernelContext ctx, T[] acc, int[] shape, T[] x, int[] xShape) =>
        Broadcast.Binary<T, T, AddOp<T>>(ctx, acc, shape, x, xShape, acc);
}
