using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// Base for data-movement kernels that work for every element type: <see cref="Compute"/> picks the CLR
/// element type of input <see cref="DispatchInput"/> and calls <see cref="Run{T}"/> with it, so one generic
/// body serves float, int64, bool, float16, string and the rest.
/// </summary>
public abstract class MovementKernel : OpKernel
{
    /// <summary>The input whose element type selects T.</summary>
    protected virtual int DispatchInput => 0;

    public override void Compute(KernelContext ctx) => Dispatch(ctx, ctx.Input(DispatchInput).Buffer.GetType().GetElementType()!);

    /// <summary>
    /// Calls <see cref="Run{T}"/> for element type <paramref name="t"/>. Compares Type objects rather than using
    /// `is byte[]`, because the CLR lets an sbyte[] pass as byte[] (and int[] as uint[] and so on).
    /// </summary>
    protected void Dispatch(KernelContext ctx, Type t)
    {
        if (t == typeof(float)) Run<float>(ctx);
        else if (t == typeof(double)) Run<double>(ctx);
        else if (t == typeof(long)) Run<long>(ctx);
        else if (t == typeof(int)) Run<int>(ctx);
        else if (t == typeof(byte)) Run<byte>(ctx);
        else if (t == typeof(sbyte)) Run<sbyte>(ctx);
        else if (t == typeof(bool)) Run<bool>(ctx);
        else if (t == typeof(Half)) Run<Half>(ctx);
        else if (t == typeof(BFloat16)) Run<BFloat16>(ctx);
        else if (t == typeof(short)) Run<short>(ctx);
        else if (t == typeof(ushort)) Run<ushort>(ctx);
        else if (t == typeof(uint)) Run<uint>(ctx);
        else if (t == typeof(ulong)) Run<ulong>(ctx);
        else if (t == typeof(string)) Run<string>(ctx);
        else throw new QuantSharpException($"{Node.OpType} does not support element type {t.Name}");
    }

    protected abstract void Run<T>(KernelContext ctx);

    /// <summary>Allocates output i with the dtype of <paramref name="like"/> (keeps int4 vs int8 and the like).</summary>
    protected static Tensor<T> OutputLike<T>(KernelContext ctx, int i, Tensor like, int[] shape) =>
        (Tensor<T>)ctx.Output(i, like.DataType, shape);
}

/// <summary>Shared helpers of the shape and data-movement kernels.</summary>
public static class Movement
{
    /// <summary>Values of an integer tensor (int64, int32, or any integer type) as long.</summary>
    public static long[] ToLongs(Tensor t, string what)
    {
        switch (t)
        {
            case Tensor<long> l: return (long[])l.Data.Clone();
            case Tensor<int> i: return Array.ConvertAll(i.Data, v => (long)v);
            default:
                if (!DataTypes.IsInteger(t.DataType))
                    throw new QuantSharpException($"{what} must be an integer tensor, got {DataTypes.Name(t.DataType)}");
                var r = new long[t.Length];
                for (int k = 0; k < r.Length; k++) r[k] = (long)t.GetDouble(k);
                return r;
        }
    }

    /// <summary>Values of a numeric tensor as double.</summary>
    public static double[] ToDoubles(Tensor t)
    {
        var r = new double[t.Length];
        if (t is Tensor<float> f) for (int k = 0; k < r.Length; k++) r[k] = f.Data[k];
        else if (t is Tensor<long> l) for (int k = 0; k < r.Length; k++) r[k] = l.Data[k];
        else for (int k = 0; k < r.Length; k++) r[k] = t.GetDouble(k);
        return r;
    }

    /// <summary>A long dimension or count narrowed to int; throws naming <paramref name="what"/> when it does not fit.</summary>
    public static int ToInt(long v, string what)
    {
        if (v < 0 || v > Array.MaxLength) throw new QuantSharpException($"{what} {v} is out of range");
        return (int)v;
    }

    /// <summary>Normalised, de-duplicated axes; throws naming <paramref name="what"/> on repeats or range errors.</summary>
    public static int[] NormalizeAxes(IReadOnlyList<long> axes, int rank, string what = "axes")
    {
        var r = new int[axes.Count];
        for (int i = 0; i < r.Length; i++)
        {
            r[i] = ShapeUtil.NormalizeAxis(axes[i], rank, what);
            for (int j = 0; j < i; j++)
                if (r[j] == r[i]) throw new QuantSharpException($"{what} [{string.Join(",", axes)}] repeats axis {r[i]}");
        }
        return r;
    }

    public static int Product(ReadOnlySpan<int> shape, int from, int to)
    {
        long p = 1;
        for (int i = from; i < to; i++) p *= shape[i];
        return (int)p;
    }

    /// <summary>Converts a double to element type T (numeric types round to nearest and saturate; bool is v != 0).</summary>
    public static T FromDouble<T>(double v)
    {
        if (typeof(T) == typeof(float)) return (T)(object)(float)v;
        if (typeof(T) == typeof(double)) return (T)(object)v;
        if (typeof(T) == typeof(Half)) return (T)(object)(Half)v;
        if (typeof(T) == typeof(BFloat16)) return (T)(object)(BFloat16)(float)v;
        if (typeof(T) == typeof(bool)) return (T)(object)(v != 0);
        if (typeof(T) == typeof(string)) return (T)(object)v.ToString(System.Globalization.CultureInfo.InvariantCulture);
        double r = double.IsNaN(v) ? 0 : Math.Round(v, MidpointRounding.ToEven);
        if (typeof(T) == typeof(byte)) return (T)(object)(byte)Math.Clamp(r, byte.MinValue, byte.MaxValue);
        if (typeof(T) == typeof(sbyte)) return (T)(object)(sbyte)Math.Clamp(r, sbyte.MinValue, sbyte.MaxValue);
        if (typeof(T) == typeof(short)) return (T)(object)(short)Math.Clamp(r, short.MinValue, short.MaxValue);
        if (typeof(T) == typeof(ushort)) return (T)(object)(ushort)Math.Clamp(r, ushort.MinValue, ushort.MaxValue);
        if (typeof(T) == typeof(int)) return (T)(object)(int)Math.Clamp(r, int.MinValue, int.MaxValue);
        if (typeof(T) == typeof(uint)) return (T)(object)(uint)Math.Clamp(r, uint.MinValue, uint.MaxValue);
        if (typeof(T) == typeof(long)) return (T)(object)(long)Math.Clamp(r, long.MinValue, long.MaxValue);
        if (typeof(T) == typeof(ulong)) return (T)(object)(ulong)Math.Clamp(r, ulong.MinValue, ulong.MaxValue);
        throw new QuantSharpException($"cannot convert a number to {typeof(T).Name}");
    }

    /// <summary>A numeric element as double (bool is 0/1).</summary>
    public static double ToDoubleValue<T>(T v) => v switch
    {
        float f => f,
        double d => d,
        Half h => (double)h,
        BFloat16 b => (float)b,
        byte b => b,
        sbyte sb => sb,
        short sh => sh,
        ushort us => us,
        int n => n,
        uint u => u,
        long l => l,
        ulong ul => ul,
        bool bo => bo ? 1 : 0,
        _ => throw new QuantSharpException($"{typeof(T).Name} is not numeric"),
    };

    /// <summary>Element i of <paramref name="t"/> as T when t holds T, else converted through double.</summary>
    public static T ScalarAs<T>(Tensor t, string what)
    {
        if (t.Length < 1) throw new QuantSharpException($"{what} is empty");
        if (t is Tensor<T> typed) return typed.Data[0];
        return FromDouble<T>(t.GetDouble(0));
    }

    /// <summary>
    /// Gathers along every axis independently: dst[o0,…,on] = src[m0[o0],…,mn[on]], where maps[d][o] &lt; 0 means
    /// "outside" and writes <paramref name="fill"/>. Slice, Tile, Expand, Pad and nearest Resize are all of this form.
    /// Rows whose last-axis map is a contiguous run are block-copied.
    /// </summary>
    public static void MapGather<T>(KernelContext? ctx, T[] src, int[] srcShape, T[] dst, int[] dstShape, int[][] maps, T fill)
    {
        int rank = dstShape.Length;
        if (dst.Length == 0) return;
        if (rank == 0)
        {
            dst[0] = src[0];
            return;
        }
        var srcStrides = ShapeUtil.Strides(srcShape);
        // Offsets into src per axis (-1 = fill).
        var off = new int[rank][];
        for (int d = 0; d < rank; d++)
        {
            var m = maps[d];
            var o = new int[m.Length];
            for (int i = 0; i < m.Length; i++) o[i] = m[i] < 0 ? -1 : m[i] * srcStrides[d];
            off[d] = o;
        }
        int inner = dstShape[rank - 1];
        var last = off[rank - 1];
        bool contiguous = last[0] >= 0;
        for (int i = 1; i < inner && contiguous; i++) contiguous = last[i] == last[0] + i;
        bool broadcast = last[0] >= 0;
        for (int i = 1; i < inner && broadcast; i++) broadcast = last[i] == last[0];
        int rows = dst.Length / inner;

        void Body(int start, int end)
        {
            var idx = new int[rank - 1];
            int rem = start;
            for (int d = rank - 2; d >= 0; d--)
            {
                idx[d] = rem % dstShape[d];
                rem /= dstShape[d];
            }
            for (int r = start; r < end; r++)
            {
                int baseOff = 0;
                bool outside = false;
                for (int d = 0; d < rank - 1; d++)
                {
                    int o = off[d][idx[d]];
                    if (o < 0) { outside = true; break; }
                    baseOff += o;
                }
                var row = dst.AsSpan(r * inner, inner);
                if (outside) row.Fill(fill);
                else if (contiguous) src.AsSpan(baseOff + last[0], inner).CopyTo(row);
                else if (broadcast) row.Fill(src[baseOff + last[0]]);
                else
                {
                    for (int i = 0; i < inner; i++)
                    {
                        int o = last[i];
                        row[i] = o < 0 ? fill : src[baseOff + o];
                    }
                }
                for (int d = rank - 2; d >= 0; d--)
                {
                    if (++idx[d] < dstShape[d]) break;
                    idx[d] = 0;
                }
            }
        }

        int minRows = Math.Max(1, 16384 / Math.Max(inner, 1));
        if (ctx is null) Body(0, rows);
        else ctx.ParallelFor(rows, minRows, Body);
    }

    /// <summary>The identity map 0..n-1 offset by <paramref name="start"/>.</summary>
    public static int[] Range(int n, int start = 0)
    {
        var r = new int[n];
        for (int i = 0; i < n; i++) r[i] = start + i;
        return r;
    }

    // ---- type inference helpers ----

    /// <summary>Product of known dimensions, or null when any is unknown.</summary>
    public static long? KnownProduct(ReadOnlySpan<Dimension> dims)
    {
        long p = 1;
        foreach (var d in dims)
        {
            if (d.Value is not long v) return null;
            p *= v;
        }
        return p;
    }

    /// <summary>a·b; a symbolic dimension times a known 1 keeps its symbol.</summary>
    public static Dimension Mul(Dimension a, Dimension b) =>
        a.Value is long x && b.Value is long y ? new Dimension(x * y) : a.Value == 1 ? b : b.Value == 1 ? a : Dimension.Unknown;

    /// <summary>a+b; a symbolic dimension plus a known 0 keeps its symbol.</summary>
    public static Dimension Add(Dimension a, Dimension b) =>
        a.Value is long x && b.Value is long y ? new Dimension(x + y) : a.Value == 0 ? b : b.Value == 0 ? a : Dimension.Unknown;

    /// <summary>A type with the given element type and unknown rank.</summary>
    public static TensorTypeInfo Unranked(DataType dt) => new(dt, null);

    /// <summary>Values of a constant integer input during inference, or null when unknown.</summary>
    public static long[]? ConstLongs(TypeInferenceContext ctx, int i)
    {
        var t = ctx.ConstantInput(i);
        if (t is null) return null;
        try { return ToLongs(t, "input"); }
        catch (QuantSharpException) { return null; }
    }
}
