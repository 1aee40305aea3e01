using System.Numerics;
using QuantSharp.Graph;
using QuantSharp.Quantization.Math;
using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators.Quantization;

/// <summary>
/// MatMulInteger (opset 10): Y = (A − a_zero_point) · (B − b_zero_point) in int32, NumPy matmul broadcasting.
/// A and B are uint8 or int8 (independently). a_zero_point is a scalar, an M-vector (per row) or [..., M, 1];
/// b_zero_point is a scalar, an N-vector (per column) or [..., 1, N].
/// </summary>
[OnnxOperator("MatMulInteger", 10)]
public sealed class MatMulIntegerKernel : OpKernel
{
    private ConstantInt8MatMulB? _packedB;

    public override void Initialize(KernelInitContext ctx) => _packedB = ConstantInt8MatMulB.TryCreate(ctx, 1, 3);

    public override void Compute(KernelContext ctx)
    {
        var a = ctx.Input(0);
        var b = ctx.Input(1);
        var s = MatMulShape.Resolve(a.Shape, b.Shape);
        var azp = IntMatMul.RowParams(ctx.OptionalInput(2), a.Shape, s, "a_zero_point", t => QuantTensorOps.ToInts(t, "a_zero_point"), 0);
        var bzp = IntMatMul.ColumnParams(ctx.OptionalInput(3), b.Shape, s, "b_zero_point", t => QuantTensorOps.ToInts(t, "b_zero_point"), 0);
        var y = ctx.Output<int>(0, s.OutputShape);
        if (_packedB is null || !_packedB.TryAccumulate(ctx, a, b, azp, s, y.Data)) IntMatMul.Accumulate(ctx, a, b, azp, bzp, s, y.Data);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var dims = MatMulShape.InferDims(ctx.InputType(0), ctx.InputType(1));
        ctx.SetOutputType(0, new TensorTypeInfo(DataType.Int32, dims));
    }
}

/// <summary>
/// A constant 2-D int8 B (with a constant or absent zero point) packed once at session creation for the int8 GEMM
/// driver (<see cref="Kernels.Simd.Int8Gemm"/>: generated VNNI/AMX code or the best managed kernel), used when A's
/// zero point is one value for all rows; other cases take the general path.
/// </summary>
internal sealed class ConstantInt8MatMulB
{
    private readonly Tensor _source;
    private readonly Kernels.Simd.PackedInt8Weights _packed;
    private readonly Kernels.Simd.IInt8GemmKernel? _kernel;

    /// <summary>How many products took the packed path (process-wide; tests check the path is used).</summary>
    internal static long Uses;

    private ConstantInt8MatMulB(Tensor source, Kernels.Simd.PackedInt8Weights packed, Kernels.Simd.IInt8GemmKernel? kernel)
    {
        _source = source;
        _packed = packed;
        _kernel = kernel;
    }

    /// <summary>Packs input <paramref name="bInput"/> when it is a 2-D int8 initializer and input
    /// <paramref name="zeroPointInput"/> is absent or a constant scalar / [N] vector; else null.</summary>
    public static ConstantInt8MatMulB? TryCreate(KernelInitContext ctx, int bInput, int zeroPointInput)
    {
        if (ctx.Constant(bInput) is not Tensor<sbyte> b || b.Rank != 2) return null;
        int k = b.Shape[0], n = b.Shape[1];
        int[] zp = [];
        if (ctx.Node.Input(zeroPointInput) is not null)
        {
            var z = ctx.Constant(zeroPointInput);
            if (z is null || !(z.Length == 1 || (z.Rank == 1 && z.Length == n))) return null;
            zp = QuantTensorOps.ToInts(z, "b_zero_point");
        }
        var kernel = Kernels.Jit.GeneratedInt8Kernel.Select(ctx.Options.IntegerExecution.GeneratedCode);
        var packed = Kernels.Simd.PackedInt8Weights.Pack(k, n, b.Data, n, false, zp, Kernels.Jit.GeneratedInt8Kernel.KAlignmentFor(kernel));
        return new ConstantInt8MatMulB(b, packed, kernel);
    }

    /// <summary>Y = (A − azp)·(B − bzp) for every row of A at once, when B is the packed tensor and azp is uniform.</summary>
    public bool TryAccumulate(KernelContext ctx, Tensor a, Tensor b, int[] azp, MatMulShape s, int[] y)
    {
        if (!ReferenceEquals(b, _source) || s.BBatchShape.Length != 0) return false;
        foreach (int z in azp) if (z != azp[0]) return false;
        // B has no batch dimensions, so A's batches are the output's in order: all rows are contiguous.
        int rows = s.BatchCount * s.M, za = azp.Length == 0 ? 0 : azp[0];
        Interlocked.Increment(ref Uses);
        switch (a)
        {
            case Tensor<byte> u: Kernels.Simd.Int8Gemm.Multiply(rows, u.Data.AsSpan(0, rows * s.K), s.K, za, _packed, y, s.N, ctx.Threads, _kernel); return true;
            case Tensor<sbyte> v: Kernels.Simd.Int8Gemm.Multiply(rows, v.Data.AsSpan(0, rows * s.K), s.K, za, _packed, y, s.N, ctx.Threads, _kernel); return true;
            default: return false;
        }
    }
}

/// <summary>The integer matmul core shared by MatMulInteger and QLinearMatMul.</summary>
internal static class IntMatMul
{
    /// <summary>
    /// Expands a per-tensor / per-row parameter of A to one value per (A batch, row): result length
    /// aBatchCount · M. Accepted shapes: one element, [M], or anything broadcastable to A's shape with the last
    /// dimension set to 1. Null gives <paramref name="fallback"/>.
    /// </summary>
    public static T[] RowParams<T>(Tensor? p, int[] aShape, MatMulShape s, string what, Func<Tensor, T[]> read, T fallback)
    {
        int count = ShapeUtil.Product(s.ABatchShape) * s.M;
        if (p is null) return Filled(count, fallback);
        var values = read(p);
        if (p.Length == 1) return Filled(count, values[0]);
        int[] target = [.. s.ABatchShape, s.M, 1];
        int[] from = p.Rank == 1 && p.Shape[0] == s.M ? [s.M, 1] : p.Shape;
        if (aShape.Length == 1) throw new QuantSharpException($"{what} of shape {ShapeUtil.Format(p.Shape)} must be a scalar for a 1-D input");
        return QuantTensorOps.BroadcastTo(values, from, target, what);
    }

    /// <summary>
    /// Expands a per-tensor / per-column parameter of B to one value per (B batch, column): length bBatchCount · N.
    /// Accepted shapes: one element, [N], or anything broadcastable to B's shape with the K dimension set to 1.
    /// </summary>
    public static T[] ColumnParams<T>(Tensor? p, int[] bShape, MatMulShape s, string what, Func<Tensor, T[]> read, T fallback)
    {
        int count = ShapeUtil.Product(s.BBatchShape) * s.N;
        if (p is null) return Filled(count, fallback);
        var values = read(p);
        if (p.Length == 1) return Filled(count, values[0]);
        if (bShape.Length == 1) throw new QuantSharpException($"{what} of shape {ShapeUtil.Format(p.Shape)} must be a scalar for a 1-D input");
        int[] target = [.. s.BBatchShape, 1, s.N];
        return QuantTensorOps.BroadcastTo(values, p.Shape, target, what);
    }

    private static T[] Filled<T>(int count, T v)
    {
        var r = new T[count];
        Array.Fill(r, v);
        return r;
    }

    /// <summary>Y[batch, m, n] = Σ_k (A − azp[aBatch, m]) · (B − bzp[bBatch, n]), int32 wrapping.</summary>
    public static void Accumulate(KernelContext ctx, Tensor a, Tensor b, int[] azp, int[] bzp, MatMulShape s, int[] y)
    {
        switch (a)
        {
            case Tensor<byte> ta: WithA(ctx, ta.Data, b, azp, bzp, s, y); break;
            case Tensor<sbyte> ta: WithA(ctx, ta.Data, b, azp, bzp, s, y); break;
            default: throw new QuantSharpException($"A must be uint8 or int8, got {DataTypes.Name(a.DataType)}");
        }
    }

    private static void WithA<TA>(KernelContext ctx, TA[] a, Tensor b, int[] azp, int[] bzp, MatMulShape s, int[] y)
        where TA : unmanaged, IBinaryInteger<TA>
    {
        int bBatches = ShapeUtil.Product(s.BBatchShape);
        var wide = new int[bBatches][];
        for (int bb = 0; bb < bBatches; bb++)
        {
            int off = bb * s.K * s.N;
            var zp = bzp.AsSpan(bb * s.N, s.N);
            wide[bb] = b switch
            {
                Tensor<byte> tb => IntGemmReference.WidenB(s.K, s.N, tb.Data.AsSpan(off), s.N, zp),
                Tensor<sbyte> tb => IntGemmReference.WidenB(s.K, s.N, tb.Data.AsSpan(off), s.N, zp),
                _ => throw new QuantSharpException($"B must be uint8 or int8, got {DataTypes.Name(b.DataType)}"),
            };
        }
        int m = s.M, n = s.N, k = s.K;
        ctx.ParallelFor(s.BatchCount * m, Math.Max(1, 65536 / Math.Max(1, n * k)), (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int batch = r / m, i = r % m;
                int ab = s.ABatch[batch], bb = s.BBatch[batch];
                IntGemmReference.GemmWidened(1, n, k, a.AsSpan((ab * m + i) * k, k), k, azp.AsSpan(ab * m + i, 1),
                    wide[bb], y.AsSpan(r * n, n), n);
            }
        });
    }

    /// <summary>
    /// y = saturate(round_half_even(acc · a_scale[row] · b_scale[col] / y_scale) + y_zero_point) for every output element;
    /// y_scale / y_zero_point are scalars or broadcast to the output shape.
    /// </summary>
    public static void Requantize(KernelContext ctx, int[] acc, MatMulShape s, float[] aScale, float[] bScale,
        Tensor yScale, Tensor yZero, Tensor y)
    {
        var (qmin, qmax) = QuantMath.Range(y.DataType);
        var ys = QuantTensorOps.ToFloats(yScale, "y_scale");
        var yz = QuantTensorOps.ToInts(yZero, "y_zero_point");
        bool yScalar = yScale.Length == 1 && yZero.Length == 1;
        if (!yScalar)
        {
            ys = QuantTensorOps.BroadcastTo(ys, yScale.Shape, s.OutputShape, "y_scale");
            yz = yZero.Length == 1 ? Enumerable.Repeat(yz[0], acc.Length).ToArray() : QuantTensorOps.BroadcastTo(yz, yZero.Shape, s.OutputShape, "y_zero_point");
        }
        var codes = ctx.RentScratch<int>(acc.Length);
        int m = s.M, n = s.N;
        ctx.ParallelFor(s.BatchCount * m, Math.Max(1, 16384 / Math.Max(1, n)), (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int batch = r / m, i = r % m;
                float sa = aScale[s.ABatch[batch] * m + i];
                int bOff = s.BBatch[batch] * n;
                for (int j = 0; j < n; j++)
                {
                    int o = r * n + j;
                    float outScale = yScalar ? ys[0] : ys[o];
                    int outZero = yScalar ? yz[0] : yz[o];
                    codes[o] = RequantizeOne(acc[o], sa * bScale[bOff + j] / outScale, outZero, qmin, qmax);
                }
            }
        });
        QuantTensorOps.StoreInts(y, codes);
        ctx.ReturnScratch(codes);
    }

    /// <summary>
    /// saturate(round_half_even(acc · multiplier) + zero_point) where multiplier = (in_scale · w_scale) / out_scale
    /// is formed in float32 and the product acc · multiplier in double.
    /// </summary>
    public static int RequantizeOne(int acc, float multiplier, int zeroPoint, int qmin, int qmax)
    {
        double v = QuantMath.RoundHalfToEven(acc * (double)multiplier) + zeroPoint;
        return QuantMath.Saturate(v, qmin, qmax);
    }
}
