using System.Runtime.CompilerServices;
using System.Numerics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using System.Runtime.InteropServices;
using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>A scalar predicate; <see cref="CompareOp{T,TPred}"/> turns it into a broadcastable span op.</summary>
public interface IPredicate<T>
{
    static abstract bool Test(T a, T b);
}

public readonly struct CompareOp<T, TPred> : IBinaryOp<T, bool> where TPred : IPredicate<T>
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<bool> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] = TPred.Test(a[i], b[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Apply(ReadOnlySpan<T> a, T b, Span<bool> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] = TPred.Test(a[i], b);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Apply(T a, ReadOnlySpan<T> b, Span<bool> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] = TPred.Test(a, b[i]);
    }
}

// IEEE comparisons: every comparison with NaN is false except "not equal".
public readonly struct EqualPred<T> : IPredicate<T> where T : IEqualityOperators<T, T, bool> { public static bool Test(T a, T b) => a == b; }
public readonly struct LessPred<T> : IPredicate<T> where T : IComparisonOperators<T, T, bool> { public static bool Test(T a, T b) => a < b; }
public readonly struct GreaterPred<T> : IPredicate<T> where T : IComparisonOperators<T, T, bool> { public static bool Test(T a, T b) => a > b; }
public readonly struct LessOrEqualPred<T> : IPredicate<T> where T : IComparisonOperators<T, T, bool> { public static bool Test(T a, T b) => a <= b; }
public readonly struct GreaterOrEqualPred<T> : IPredicate<T> where T : IComparisonOperators<T, T, bool> { public static bool Test(T a, T b) => a >= b; }
public readonly struct BoolEqualPred : IPredicate<bool> { public static bool Test(bool a, bool b) => a == b; }
public readonly struct StringEqualPred : IPredicate<string> { public static bool Test(string a, string b) => string.Equals(a, b, StringComparison.Ordinal); }

/// <summary>Comparison kernels: broadcasting, numeric inputs of one type, bool output.</summary>
public abstract class ComparisonKernel : OpKernel
{
    protected abstract void Run<T>(KernelContext ctx, T[] a, int[] aShape, T[] b, int[] bShape, bool[] y) where T : INumber<T>;

    /// <summary>Handles bool and string inputs (only Equal accepts them); false when unsupported.</summary>
    protected virtual bool RunOther(KernelContext ctx, Tensor a, int[] bShape, Tensor b, bool[] y) => false;

    public override void Compute(KernelContext ctx)
    {
        var a = ctx.Input(0);
        var b = ctx.Input(1);
        if (a.DataType != b.DataType)
            throw new QuantSharpException($"{Node.OpType} inputs have different types {DataTypes.Name(a.DataType)} and {DataTypes.Name(b.DataType)}");
        int[] bShape = LegacyBroadcast.BShape(this, a.Shape, b.Shape);
        var y = ctx.Output<bool>(0, ShapeUtil.Broadcast(a.Shape, bShape)).Data;
        switch (a)
        {
            case Tensor<float> t: Run(ctx, t.Data, a.Shape, b.As<float>().Data, bShape, y); break;
            case Tensor<double> t: Run(ctx, t.Data, a.Shape, b.As<double>().Data, bShape, y); break;
            case Tensor<int> t: Run(ctx, t.Data, a.Shape, b.As<int>().Data, bShape, y); break;
            case Tensor<long> t: Run(ctx, t.Data, a.Shape, b.As<long>().Data, bShape, y); break;
            case Tensor<sbyte> t: Run(ctx, t.Data, a.Shape, b.As<sbyte>().Data, bShape, y); break;
            case Tensor<byte> t: Run(ctx, t.Data, a.Shape, b.As<byte>().Data, bShape, y); break;
            case Tensor<short> t: Run(ctx, t.Data, a.Shape, b.As<short>().Data, bShape, y); break;
            case Tensor<ushort> t: Run(ctx, t.Data, a.Shape, b.As<ushort>().Data, bShape, y); break;
            case Tensor<uint> t: Run(ctx, t.Data, a.Shape, b.As<uint>().Data, bShape, y); break;
            case Tensor<ulong> t: Run(ctx, t.Data, a.Shape, b.As<ulong>().Data, bShape, y); break;
            case Tensor<Half> or Tensor<BFloat16>: Run(ctx, Conversions.ToFloat(a), a.Shape, Conversions.ToFloat(b), bShape, y); break;
            default:
                if (!RunOther(ctx, a, bShape, b, y))
                    throw new QuantSharpException($"{Node.OpType} does not accept {DataTypes.Name(a.DataType)} inputs");
                break;
        }
    }

    public override void InferTypes(TypeInferenceContext ctx) => Broadcast.InferElementwise(ctx, DataType.Bool);
}

[OnnxOperator("Equal", 1)]
public sealed class EqualKernel : ComparisonKernel
{
    protected override void Run<T>(KernelContext ctx, T[] a, int[] aShape, T[] b, int[] bShape, bool[] y) =>
        Broadcast.Binary<T, bool, CompareOp<T, EqualPred<T>>>(ctx, a, aShape, b, bShape, y);

    protected override bool RunOther(KernelContext ctx, Tensor a, int[] bShape, Tensor b, bool[] y)
    {
        if (a is Tensor<bool> ab) Broadcast.Binary<bool, bool, CompareOp<bool, BoolEqualPred>>(ctx, ab.Data, a.Shape, b.As<bool>().Data, bShape, y);
        else if (a is Tensor<string> sa) Broadcast.Binary<string, bool, CompareOp<string, StringEqualPred>>(ctx, sa.Data, a.Shape, b.As<string>().Data, bShape, y);
        else return false;
        return true;
    }
}

[OnnxOperator("Less", 1)]
public sealed class LessKernel : ComparisonKernel
{
    protected override void Run<T>(KernelContext ctx, T[] a, int[] aShape, T[] b, int[] bShape, bool[] y) =>
        Broadcast.Binary<T, bool, CompareOp<T, LessPred<T>>>(ctx, a, aShape, b, bShape, y);
}

[OnnxOperator("Greater", 1)]
public sealed class GreaterKernel : ComparisonKernel
{
    protected override void Run<T>(KernelContext ctx, T[] a, int[] aShape, T[] b, int[] bShape, bool[] y) =>
        Broadcast.Binary<T, bool, CompareOp<T, GreaterPred<T>>>(ctx, a, aShape, b, bShape, y);
}

[OnnxOperator("LessOrEqual", 12)]
public sealed class LessOrEqualKernel : ComparisonKernel
{
    protected override void Run<T>(KernelContext ctx, T[] a, int[] aShape, T[] b, int[] bShape, bool[] y) =>
        Broadcast.Binary<T, bool, CompareOp<T, LessOrEqualPred<T>>>(ctx, a, aShape, b, bShape, y);
}

[OnnxOperator("GreaterOrEqual", 12)]
public sealed class GreaterOrEqualKernel : ComparisonKernel
{
    protected override void Run<T>(KernelContext ctx, T[] a, int[] aShape, T[] b, int[] bShape, bool[] y) =>
        Broadcast.Binary<T, bool, CompareOp<T, GreaterOrEqualPred<T>>>(ctx, a, aShape, b, bShape, y);
}

/// <summary>Logical ops on bool tensors, computed as bytes (a bool is stored as 0 or 1).</summary>
public readonly struct AndOp : IBinaryOp<byte, byte>
{
    public static void Apply(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> y) => TensorPrimitives.BitwiseAnd(a, b, y);
    public static void Apply(ReadOnlySpan<byte> a, byte b, Span<byte> y) => TensorPrimitives.BitwiseAnd(a, b, y);
    public static void Apply(byte a, ReadOnlySpan<byte> b, Span<byte> y) => TensorPrimitives.BitwiseAnd(b, a, y);
}

public readonly struct OrOp : IBinaryOp<byte, byte>
{
    public static void Apply(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> y) => TensorPrimitives.BitwiseOr(a, b, y);
    public static void Apply(ReadOnlySpan<byte> a, byte b, Span<byte> y) => TensorPrimitives.BitwiseOr(a, b, y);
    public static void Apply(byte a, ReadOnlySpan<byte> b, Span<byte> y) => TensorPrimitives.BitwiseOr(b, a, y);
}

public readonly struct XorOp : IBinaryOp<byte, byte>
{
    public static void Apply(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> y) => TensorPrimitives.Xor(a, b, y);
    public static void Apply(ReadOnlySpan<byte> a, byte b, Span<byte> y) => TensorPrimitives.Xor(a, b, y);
    public static void Apply(byte a, ReadOnlySpan<byte> b, Span<byte> y) => TensorPrimitives.Xor(b, a, y);
}

public abstract class LogicalKernel : OpKernel
{
    protected abstract void Run(KernelContext ctx, byte[] a, int[] aShape, byte[] b, int[] bShape, byte[] y);

    public override void Compute(KernelContext ctx)
    {
        var a = ctx.Input<bool>(0);
        var b = ctx.Input<bool>(1);
        int[] bShape = LegacyBroadcast.BShape(this, a.Shape, b.Shape);
        var y = ctx.Output<bool>(0, ShapeUtil.Broadcast(a.Shape, bShape));
        Run(ctx, AsBytes(a.Data), a.Shape, AsBytes(b.Data), bShape, AsBytes(y.Data));
    }

    /// <summary>Reinterprets a bool[] as byte[] (same layout: one byte per element, 0 or 1) without copying.</summary>
    internal static byte[] AsBytes(bool[] a) => System.Runtime.CompilerServices.Unsafe.As<bool[], byte[]>(ref a);

    public override void InferTypes(TypeInferenceContext ctx) => Broadcast.InferElementwise(ctx, DataType.Bool);
}

[OnnxOperator("And", 1)]
public sealed class AndKernel : LogicalKernel
{
    protected override void Run(KernelContext ctx, byte[] a, int[] aShape, byte[] b, int[] bShape, byte[] y) =>
        Broadcast.Binary<byte, byte, AndOp>(ctx, a, aShape, b, bShape, y);
}

[OnnxOperator("Or", 1)]
public sealed class OrKernel : LogicalKernel
{
    protected override void Run(KernelContext ctx, byte[] a, int[] aShape, byte[] b, int[] bShape, byte[] y) =>
        Broadcast.Binary<byte, byte, OrOp>(ctx, a, aShape, b, bShape, y);
}

[OnnxOperator("Xor", 1)]
public sealed class XorKernel : LogicalKernel
{
    protected override void Run(KernelContext ctx, byte[] a, int[] aShape, byte[] b, int[] bShape, byte[] y) =>
        Broadcast.Binary<byte, byte, XorOp>(ctx, a, aShape, b, bShape, y);
}

/// <summary>Not: y = !x on bool tensors (x XOR 1 on the byte view).</summary>
[OnnxOperator("Not", 1)]
public sealed class NotKernel : OpKernel
{
    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input<bool>(0);
        var y = ctx.Output<bool>(0, (int[])x.Shape.Clone());
        TensorPrimitives.Xor(LogicalKernel.AsBytes(x.Data), (byte)1, LogicalKernel.AsBytes(y.Data));
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is { } t) ctx.SetOutputType(0, t);
    }
}

/// <summary>Where (opset 9+): y = condition ? x : y with three-way broadcasting; any element type.</summary>
[OnnxOperator("Where", 9)]
public sealed class WhereKernel : OpKernel
{
    public override void Compute(KernelContext ctx)
    {
        var c = ctx.Input<bool>(0);
        var x = ctx.Input(1);
        var yv = ctx.Input(2);
        if (x.DataType != yv.DataType)
            throw new QuantSharpException($"Where inputs X and Y have different types {DataTypes.Name(x.DataType)} and {DataTypes.Name(yv.DataType)}");
        var plan = new BroadcastPlan(c.Shape, x.Shape, yv.Shape);
        var o = ctx.Output(0, x.DataType, plan.OutputShape);
        switch (o)
        {
            case Tensor<float> t: Select(ctx, plan, c.Data, x.As<float>().Data, yv.As<float>().Data, t.Data); break;
            case Tensor<double> t: Select(ctx, plan, c.Data, x.As<double>().Data, yv.As<double>().Data, t.Data); break;
            case Tensor<long> t: Select(ctx, plan, c.Data, x.As<long>().Data, yv.As<long>().Data, t.Data); break;
            case Tensor<int> t: Select(ctx, plan, c.Data, x.As<int>().Data, yv.As<int>().Data, t.Data); break;
            case Tensor<bool> t: Select(ctx, plan, c.Data, x.As<bool>().Data, yv.As<bool>().Data, t.Data); break;
            case Tensor<byte> t: Select(ctx, plan, c.Data, x.As<byte>().Data, yv.As<byte>().Data, t.Data); break;
            case Tensor<sbyte> t: Select(ctx, plan, c.Data, x.As<sbyte>().Data, yv.As<sbyte>().Data, t.Data); break;
            case Tensor<short> t: Select(ctx, plan, c.Data, x.As<short>().Data, yv.As<short>().Data, t.Data); break;
            case Tensor<ushort> t: Select(ctx, plan, c.Data, x.As<ushort>().Data, yv.As<ushort>().Data, t.Data); break;
            case Tensor<uint> t: Select(ctx, plan, c.Data, x.As<uint>().Data, yv.As<uint>().Data, t.Data); break;
            case Tensor<ulong> t: Select(ctx, plan, c.Data, x.As<ulong>().Data, yv.As<ulong>().Data, t.Data); break;
            case Tensor<Half> t: Select(ctx, plan, c.Data, x.As<Half>().Data, yv.As<Half>().Data, t.Data); break;
            case Tensor<BFloat16> t: Select(ctx, plan, c.Data, x.As<BFloat16>().Data, yv.As<BFloat16>().Data, t.Data); break;
            case Tensor<string> t: Select(ctx, plan, c.Data, x.As<string>().Data, yv.As<string>().Data, t.Data); break;
            default: throw new QuantSharpException($"Where does not accept {DataTypes.Name(x.DataType)} inputs");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Select<T>(KernelContext ctx, BroadcastPlan plan, bool[] c, T[] x, T[] y, T[] o)
    {
        int sc = plan.InnerStride(0), sx = plan.InnerStride(1), sy = plan.InnerStride(2);
        plan.Run(ctx, (start, offs, len) =>
        {
            int ci = offs[0], xi = offs[1], yi = offs[2];
            if (sc == 0)
            {
                // One condition for the whole run: a block copy or fill.
                bool cond = c[ci];
                int src = cond ? xi : yi, stride = cond ? sx : sy;
                var arr = cond ? x : y;
                if (stride == 1) Array.Copy(arr, src, o, start, len);
                else o.AsSpan(start, len).Fill(arr[src]);
                return;
            }
            for (int i = 0; i < len; i++) o[start + i] = c[ci + i] ? x[xi + i * sx] : y[yi + i * sy];
        });
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var elem = ctx.InputType(1)?.ElementType ?? ctx.InputType(2)?.ElementType;
        if (elem is null) return;
        ctx.SetOutputType(0, new TensorTypeInfo(elem.Value, Broadcast.InferShape(ctx.InputType(0), ctx.InputType(1), ctx.InputType(2))));
    }
}
