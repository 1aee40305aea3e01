using System.Numerics;
using QuantSharp.Graph;
using QuantSharp.Quantization.Math;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators.Quantization;

/// <summary>Conversions and shape helpers shared by the quantization kernels.</summary>
internal static class QuantTensorOps
{
    /// <summary>Values of a float, float16, bfloat16 or double tensor as doubles (exact).</summary>
    public static double[] ToDoubles(Tensor t, string what)
    {
        var r = new double[t.Length];
        switch (t)
        {
            case Tensor<float> f: for (int i = 0; i < r.Length; i++) r[i] = f.Data[i]; break;
            case Tensor<Half> h: for (int i = 0; i < r.Length; i++) r[i] = (double)h.Data[i]; break;
            case Tensor<BFloat16> b: for (int i = 0; i < r.Length; i++) r[i] = (float)b.Data[i]; break;
            case Tensor<double> d: Array.Copy(d.Data, r, r.Length); break;
            default: throw new QuantSharpException($"{what} must be a floating-point tensor, got {DataTypes.Name(t.DataType)}");
        }
        return r;
    }

    /// <summary>Values of a float, float16 or bfloat16 tensor as float32 (exact); float tensors are returned as-is (do not modify).</summary>
    public static float[] ToFloats(Tensor t, string what)
    {
        switch (t)
        {
            case Tensor<float> f: return f.Data;
            case Tensor<Half> h:
            {
                var r = new float[t.Length];
                for (int i = 0; i < r.Length; i++) r[i] = (float)h.Data[i];
                return r;
            }
            case Tensor<BFloat16> b:
            {
                var r = new float[t.Length];
                for (int i = 0; i < r.Length; i++) r[i] = (float)b.Data[i];
                return r;
            }
            default: throw new QuantSharpException($"{what} must be float, float16 or bfloat16, got {DataTypes.Name(t.DataType)}");
        }
    }

    /// <summary>Values of an integer tensor (8, 16 or 32 bit, or 4-bit unpacked) as int32.</summary>
    public static int[] ToInts(Tensor t, string what) => t switch
    {
        Tensor<byte> x => Widen(x.Data),
        Tensor<sbyte> x => Widen(x.Data),
        Tensor<short> x => Widen(x.Data),
        Tensor<ushort> x => Widen(x.Data),
        Tensor<int> x => (int[])x.Data.Clone(),
        _ => throw new QuantSharpException($"{what} must be an integer tensor, got {DataTypes.Name(t.DataType)}"),
    };

    private static int[] Widen<T>(T[] data) where T : unmanaged, IBinaryInteger<T>
    {
        var r = new int[data.Length];
        for (int i = 0; i < r.Length; i++) r[i] = int.CreateTruncating(data[i]);
        return r;
    }

    /// <summary>Stores int values (already inside the type's range) into an integer output tensor.</summary>
    public static void StoreInts(Tensor t, ReadOnlySpan<int> values)
    {
        switch (t)
        {
            case Tensor<byte> x: Narrow(values, x.Data); break;
            case Tensor<sbyte> x: Narrow(values, x.Data); break;
            case Tensor<short> x: Narrow(values, x.Data); break;
            case Tensor<ushort> x: Narrow(values, x.Data); break;
            case Tensor<int> x: values.CopyTo(x.Data); break;
            default: throw new QuantSharpException($"cannot store integers into a {DataTypes.Name(t.DataType)} tensor");
        }
    }

    private static void Narrow<T>(ReadOnlySpan<int> values, T[] dst) where T : unmanaged, IBinaryInteger<T>
    {
        for (int i = 0; i < values.Length; i++) dst[i] = T.CreateTruncating(values[i]);
    }

    /// <summary>Reads the <c>output_dtype</c> attribute (0 / absent → null), refusing float8 and non-integer types.</summary>
    public static DataType? QuantizedDtypeAttribute(Node node, string name = "output_dtype")
    {
        long v = node.GetInt(name, 0);
        if (v == 0) return null;
        var t = (DataType)v;
        if (QuantMath.IsFloat8(t) || t == DataType.Float4E2M1)
            throw new QuantSharpException($"{name} {DataTypes.Name(t)}: float8/float4 quantization is not supported by QuantSharp");
        if (!Enum.IsDefined(t)) throw new QuantSharpException($"{name} {v} is not a known data type");
        return t;
    }

    /// <summary>Refuses float8/float4 quantized types with one clear message.</summary>
    public static void RefuseFloat8(DataType t, string what)
    {
        if (QuantMath.IsFloat8(t) || t == DataType.Float4E2M1)
            throw new QuantSharpException($"{what} is {DataTypes.Name(t)}: float8/float4 quantization is not supported by QuantSharp");
    }

    /// <summary>A scalar (or one-element) parameter as double.</summary>
    public static double ScalarDouble(Tensor t, string what)
    {
        if (t.Length != 1) throw new QuantSharpException($"{what} must be a scalar, got shape {ShapeUtil.Format(t.Shape)}");
        return ToDoubles(t, what)[0];
    }

    /// <summary>A scalar (or one-element) integer parameter.</summary>
    public static int ScalarInt(Tensor t, string what)
    {
        if (t.Length != 1) throw new QuantSharpException($"{what} must be a scalar, got shape {ShapeUtil.Format(t.Shape)}");
        return ToInts(t, what)[0];
    }

    /// <summary>
    /// Broadcasts <paramref name="values"/> of shape <paramref name="from"/> to <paramref name="to"/> (NumPy rules,
    /// right-aligned); throws naming <paramref name="what"/> when the shapes are incompatible.
    /// </summary>
    public static T[] BroadcastTo<T>(T[] values, ReadOnlySpan<int> from, ReadOnlySpan<int> to, string what)
    {
        if (from.Length > to.Length) throw new QuantSharpException($"{what} of shape {ShapeUtil.Format(from)} cannot be broadcast to {ShapeUtil.Format(to)}");
        int rank = to.Length;
        var srcStrides = new int[rank];
        int acc = 1;
        for (int d = rank - 1; d >= 0; d--)
        {
            int fd = d - (rank - from.Length);
            int dim = fd >= 0 ? from[fd] : 1;
            if (dim != 1 && dim != to[d])
                throw new QuantSharpException($"{what} of shape {ShapeUtil.Format(from)} cannot be broadcast to {ShapeUtil.Format(to)}");
            srcStrides[d] = dim == 1 ? 0 : acc;
            acc *= dim;
        }
        int n = ShapeUtil.Product(to);
        var r = new T[n];
        var idx = new int[rank];
        for (int i = 0; i < n; i++)
        {
            int s = 0;
            for (int d = 0; d < rank; d++) s += idx[d] * srcStrides[d];
            r[i] = values[s];
            for (int d = rank - 1; d >= 0; d--)
            {
                if (++idx[d] < to[d]) break;
                idx[d] = 0;
            }
        }
        return r;
    }

    /// <summary>Element type of input i as declared or inferred, or Undefined.</summary>
    public static DataType InputDtype(TypeInferenceContext ctx, int i) => ctx.InputType(i)?.ElementType ?? DataType.Undefined;
}

/// <summary>
/// NumPy matmul shape rules for MatMulInteger, QLinearMatMul: A [..., M, K] · B [..., K, N] → [..., M, N] with
/// broadcast batch dimensions; a 1-D A is treated as [1, K] and a 1-D B as [K, 1], and those unit dimensions are
/// dropped from the result.
/// </summary>
internal sealed class MatMulShape
{
    public int M, N, K;
    public int[] OutputShape = [];
    public int[] BatchShape = [];
    public int BatchCount;
    /// <summary>For every output batch index, the batch index into A and into B.</summary>
    public int[] ABatch = [], BBatch = [];
    public int[] ABatchShape = [], BBatchShape = [];

    public static MatMulShape Resolve(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        if (a.Length == 0 || b.Length == 0) throw new QuantSharpException("matmul inputs must have rank >= 1");
        int[] a2 = a.Length == 1 ? [1, a[0]] : a.ToArray();
        int[] b2 = b.Length == 1 ? [b[0], 1] : b.ToArray();
        var r = new MatMulShape
        {
            M = a2[^2], K = a2[^1], N = b2[^1],
            ABatchShape = a2[..^2], BBatchShape = b2[..^2],
        };
        if (b2[^2] != r.K)
            throw new QuantSharpException($"matmul inner dimensions differ: A {ShapeUtil.Format(a)} and B {ShapeUtil.Format(b)}");
        r.BatchShape = ShapeUtil.Broadcast(r.ABatchShape, r.BBatchShape);
        r.BatchCount = ShapeUtil.Product(r.BatchShape);
        r.ABatch = BatchMap(r.ABatchShape, r.BatchShape);
        r.BBatch = BatchMap(r.BBatchShape, r.BatchShape);
        var outShape = new List<int>(r.BatchShape);
        if (a.Length > 1) outShape.Add(r.M);
        if (b.Length > 1) outShape.Add(r.N);
        r.OutputShape = outShape.ToArray();
        return r;
    }

    private static int[] BatchMap(int[] from, int[] to)
    {
        var ids = new int[ShapeUtil.Product(from)];
        for (int i = 0; i < ids.Length; i++) ids[i] = i;
        return QuantTensorOps.BroadcastTo(ids, from, to, "matmul batch");
    }

    /// <summary>Output type inference on declared dims (symbolic batch dims are broadcast when equal or 1).</summary>
    public static Dimension[]? InferDims(TensorTypeInfo? a, TensorTypeInfo? b)
    {
        if (a?.Shape is not { } sa || b?.Shape is not { } sb || sa.Length == 0 || sb.Length == 0) return null;
        Dimension[] a2 = sa.Length == 1 ? [new Dimension(1), sa[0]] : sa;
        Dimension[] b2 = sb.Length == 1 ? [sb[0], new Dimension(1)] : sb;
        int ra = a2.Length - 2, rb = b2.Length - 2, rank = Math.Max(ra, rb);
        var dims = new List<Dimension>();
        for (int i = 0; i < rank; i++)
        {
            Dimension da = i < rank - ra ? new Dimension(1) : a2[i - (rank - ra)];
            Dimension db = i < rank - rb ? new Dimension(1) : b2[i - (rank - rb)];
            if (da.Value == 1) dims.Add(db);
            else if (db.Value == 1 || da == db) dims.Add(da);
            else if (da.IsKnown && db.IsKnown) throw new QuantSharpException($"matmul batch dimensions {da} and {db} cannot be broadcast");
            else dims.Add(da.IsKnown ? da : db.IsKnown ? db : Dimension.Unknown);
        }
        if (sa.Length > 1) dims.Add(a2[^2]);
        if (sb.Length > 1) dims.Add(b2[^1]);
        return dims.ToArray();
    }
}
