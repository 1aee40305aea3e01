using System.Runtime.Intrinsics;
using QuantSharp.Graph;
using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// Gemm (opsets 1, 6, 7, 9, 11, 13) for float: Y = alpha · op(A) · op(B) + beta · C, A and B 2-D, C optional
/// (required before opset 11) and unidirectionally broadcast to [M, N] (opsets 1 and 6 spelled this with the
/// <c>broadcast</c> attribute; a C that already has shape [M, N] needs none). A constant B is packed once.
/// </summary>
[OnnxOperator("Gemm", 1)]
public sealed class GemmKernel : OpKernel
{
    private bool _transA, _transB;
    private float _alpha, _beta;
    private SgemmPackedB? _packed;
    private Tensor? _packedFrom;

    public override void Initialize(KernelInitContext ctx)
    {
        _transA = Node.GetInt("transA", 0) != 0;
        _transB = Node.GetInt("transB", 0) != 0;
        _alpha = Node.GetFloat("alpha", 1f);
        _beta = Node.GetFloat("beta", 1f);
        if (ctx.Constant(1) is Tensor<float> { Rank: 2 } b)
        {
            int k = _transB ? b.Shape[1] : b.Shape[0], n = _transB ? b.Shape[0] : b.Shape[1];
            _packed = Sgemm.PackB(_transB, k, n, b.Data, b.Shape[1]);
            _packedFrom = b;
        }
    }

    public override void Compute(KernelContext ctx)
    {
        var a = NnShapes.FloatInput(ctx, 0, "Gemm");
        var b = NnShapes.FloatInput(ctx, 1, "Gemm");
        if (a.Rank != 2 || b.Rank != 2)
            throw new QuantSharpException($"Gemm needs 2-D A and B, got {ShapeUtil.Format(a.Shape)} and {ShapeUtil.Format(b.Shape)}");
        int m = _transA ? a.Shape[1] : a.Shape[0], k = _transA ? a.Shape[0] : a.Shape[1];
        int kb = _transB ? b.Shape[1] : b.Shape[0], n = _transB ? b.Shape[0] : b.Shape[1];
        if (k != kb)
            throw new QuantSharpException($"Gemm inner dimensions differ: op(A) is {m}x{k}, op(B) is {kb}x{n}");
        var y = ctx.Output<float>(0, [m, n]);
        bool accumulate = false;
        if (ctx.HasInput(2) && _beta != 0f)
        {
            FillBroadcast(NnShapes.FloatInput(ctx, 2, "Gemm"), _beta, y.Data, m, n);
            accumulate = true;
        }
        if (ReferenceEquals(b, _packedFrom) && _packed is not null)
            Sgemm.Multiply(_transA, m, a.Data, a.Shape[1], _packed, y.Data, n, _alpha, accumulate, ctx.Threads);
        else
            Sgemm.Multiply(_transA, _transB, m, n, k, a.Data, a.Shape[1], b.Data, b.Shape[1], y.Data, n, _alpha, accumulate, ctx.Threads);
    }

    /// <summary>y[i, j] = beta · C[i mod rows(C), j mod cols(C)] for C of rank ≤ 2 broadcastable to [m, n].</summary>
    private static void FillBroadcast(Tensor<float> c, float beta, float[] y, int m, int n)
    {
        int cr = c.Rank >= 2 ? c.Shape[^2] : 1, cc = c.Rank >= 1 ? c.Shape[^1] : 1;
        if (c.Rank > 2 || (cr != 1 && cr != m) || (cc != 1 && cc != n))
            throw new QuantSharpException($"Gemm C {ShapeUtil.Format(c.Shape)} cannot be broadcast to [{m},{n}]");
        for (int i = 0; i < m; i++)
        {
            var row = y.AsSpan(i * n, n);
            int ci = cr == 1 ? 0 : i * cc;
            if (cc == 1) row.Fill(beta * c.Data[ci]);
            else for (int j = 0; j < n; j++) row[j] = beta * c.Data[ci + j];
        }
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var at = ctx.InputType(0);
        var bt = ctx.InputType(1);
        if (at is null) return;
        bool transA = ctx.Node.GetInt("transA", 0) != 0, transB = ctx.Node.GetInt("transB", 0) != 0;
        Dimension m = Dimension.Unknown, n = Dimension.Unknown;
        if (at.Shape is { Length: 2 } a) m = transA ? a[1] : a[0];
        if (bt?.Shape is { Length: 2 } b) n = transB ? b[0] : b[1];
        else if (NnShapes.KnownShape(ctx, 1) is { Length: 2 } bs) n = transB ? bs[0] : bs[1];
        ctx.SetOutputType(0, new TensorTypeInfo(at.ElementType, [m, n]));
    }
}

/// <summary>
/// MatMul (opsets 1, 9, 13) for float with NumPy semantics: 1-D operands are promoted (A to [1, K], B to [K, 1])
/// and the added axis removed from the result; leading batch axes broadcast. When B is 2-D every batch of A
/// shares it, so A's batches are folded into one GEMM with M·batch rows; a constant B is packed once.
/// </summary>
/// <remarks>
/// The <see cref="Lowering.FloatFusion.Domain"/> form (built by <see cref="Lowering.FloatFusion"/> from MatMul → Add)
/// has a third input, a constant bias [N] broadcast over the rows: y is filled with it and the product accumulated
/// into it, y = bias + A·B (float rounding differs from (A·B) + bias by the order of one addition).
/// </remarks>
[OnnxOperator("MatMul", 1)]
[OnnxOperator("MatMul", 1, Domain = Lowering.FloatFusion.Domain)]
public sealed class MatMulKernel : OpKernel
{
    private SgemmPackedB? _packed;
    private Tensor? _packedFrom;

    public override void Initialize(KernelInitContext ctx)
    {
        if (ctx.Constant(1) is Tensor<float> { Rank: 1 or 2 } b)
        {
            int k = b.Shape[0], n = b.Rank == 2 ? b.Shape[1] : 1;
            _packed = Sgemm.PackB(false, k, n, b.Data, n);
            _packedFrom = b;
        }
    }

    public override void Compute(KernelContext ctx)
    {
        var a = NnShapes.FloatInput(ctx, 0, "MatMul");
        var b = NnShapes.FloatInput(ctx, 1, "MatMul");
        var plan = Plan(a.Shape, b.Shape);
        var y = ctx.Output<float>(0, plan.OutputShape);
        int m = plan.M, n = plan.N, k = plan.K;
        if (y.Length == 0) return;
        if (plan.BBatch.Length == 0 || ShapeUtil.Product(plan.BBatch) == 1 && plan.ABatch.Length >= plan.BBatch.Length)
        {
            // B is one matrix: fold every batch of A into the rows of a single GEMM.
            int rows = ShapeUtil.Product(plan.ABatch) * m;
            bool accumulate = Node.Domain == Lowering.FloatFusion.Domain;
            if (accumulate)
            {
                var bias = NnShapes.FloatInput(ctx, 2, "MatMul");
                if (bias.Rank != 1 || bias.Length != n)
                    throw new QuantSharpException($"node {Node.Describe()}: fused MatMul bias {ShapeUtil.Format(bias.Shape)} is not [{n}]");
                for (int r = 0; r < rows; r++) bias.Data.CopyTo(y.Data, r * n);
            }
            if (ReferenceEquals(b, _packedFrom) && _packed is not null)
                Sgemm.Multiply(false, rows, a.Data, k, _packed, y.Data, n, accumulate: accumulate, threads: ctx.Threads);
            else
                Sgemm.Multiply(false, false, rows, n, k, a.Data, k, b.Data, n, y.Data, n, accumulate: accumulate, threads: ctx.Threads);
            return;
        }
        if (Node.Domain == Lowering.FloatFusion.Domain)
            throw new QuantSharpException($"node {Node.Describe()}: fused MatMul needs a 2-D B, got {ShapeUtil.Format(b.Shape)}");
        var batch = plan.Batch;
        int count = ShapeUtil.Product(batch);
        var aStr = BroadcastStrides(plan.ABatch, batch, m * k);
        var bStr = BroadcastStrides(plan.BBatch, batch, k * n);
        if (SmallBatched.Applies(m, n, k))
        {
            SmallBatched.Run(ctx, a.Data, b.Data, y.Data, batch, aStr, bStr, m, n, k);
            return;
        }
        var idx = new int[batch.Length];
        for (int t = 0; t < count; t++)
        {
            long ao = 0, bo = 0;
            for (int d = 0; d < batch.Length; d++) { ao += (long)idx[d] * aStr[d]; bo += (long)idx[d] * bStr[d]; }
            Sgemm.Multiply(false, false, m, n, k, a.Data.AsSpan((int)ao, m * k), k, b.Data.AsSpan((int)bo, k * n), n,
                y.Data.AsSpan(t * m * n, m * n), n, threads: ctx.Threads);
            for (int d = batch.Length - 1; d >= 0; d--)
            {
                if (++idx[d] < batch[d]) break;
                idx[d] = 0;
            }
        }
    }

    internal static int[] BroadcastStrides(int[] shape, int[] batch, int matrixSize)
    {
        // Stride per output batch axis; 0 where the operand has no such axis or size 1 (broadcast).
        var s = new int[batch.Length];
        int off = batch.Length - shape.Length, acc = matrixSize;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            s[d + off] = shape[d] == 1 ? 0 : acc;
            acc *= shape[d];
        }
        return s;
    }

    internal sealed record MatMulPlan(int M, int N, int K, int[] ABatch, int[] BBatch, int[] Batch, int[] OutputShape);

    internal static MatMulPlan Plan(int[] a, int[] b)
    {
        if (a.Length == 0 || b.Length == 0) throw new QuantSharpException("MatMul operands must have rank >= 1");
        int m = a.Length == 1 ? 1 : a[^2], k = a[^1];
        int kb = b.Length == 1 ? b[0] : b[^2], n = b.Length == 1 ? 1 : b[^1];
        if (k != kb) throw new QuantSharpException($"MatMul shapes {ShapeUtil.Format(a)} and {ShapeUtil.Format(b)} have different inner dimensions");
        var aBatch = a.Length > 2 ? a[..^2] : [];
        var bBatch = b.Length > 2 ? b[..^2] : [];
        int[] batch;
        try { batch = ShapeUtil.Broadcast(aBatch, bBatch); }
        catch (QuantSharpException) { throw new QuantSharpException($"MatMul batch dimensions of {ShapeUtil.Format(a)} and {ShapeUtil.Format(b)} cannot be broadcast"); }
        var shape = new List<int>(batch);
        if (a.Length > 1) shape.Add(m);
        if (b.Length > 1) shape.Add(n);
        return new MatMulPlan(m, n, k, aBatch, bBatch, batch, shape.ToArray());
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var at = ctx.InputType(0);
        var bt = ctx.InputType(1);
        if (at is null) return;
        var a = at.Shape;
        var b = bt?.Shape ?? (NnShapes.KnownShape(ctx, 1) is { } bs ? TensorTypeInfo.FromShape(at.ElementType, bs).Shape : null);
        if (a is null || b is null || a.Length == 0 || b.Length == 0)
        {
            ctx.SetOutputType(0, new TensorTypeInfo(at.ElementType, null));
            return;
        }
        var aBatch = a.Length > 2 ? a[..^2] : [];
        var bBatch = b.Length > 2 ? b[..^2] : [];
        int rank = Math.Max(aBatch.Length, bBatch.Length);
        var dims = new List<Dimension>();
        for (int i = 0; i < rank; i++)
        {
            var da = i < rank - aBatch.Length ? new Dimension(1) : aBatch[i - (rank - aBatch.Length)];
            var db = i < rank - bBatch.Length ? new Dimension(1) : bBatch[i - (rank - bBatch.Length)];
            dims.Add(da.Value == 1 ? db : db.Value == 1 ? da : da.IsKnown ? da : db);
        }
        if (a.Length > 1) dims.Add(a[^2]);
        if (b.Length > 1) dims.Add(b[^1]);
        ctx.SetOutputType(0, new TensorTypeInfo(at.ElementType, dims.ToArray()));
    }
}

/// <summary>
/// Batched products of small matrices (attention's [B, H, S, d] × [B, H, d, S]): per-call SGEMM set-up (packing,
/// blocking) dwarfs a 16×16×16 product, so each output row is accumulated directly in 16-lane registers,
/// y[i, j..j+16] = Σ_p a[i, p] · b[p, j..j+16] (fused multiply-add, p ascending), batches split over threads.
/// </summary>
internal static class SmallBatched
{
    /// <summary>Whether the direct kernel takes this shape: N a multiple of 16 up to 64, K and M up to 256.</summary>
    public static bool Applies(int m, int n, int k) =>
        Vector512.IsHardwareAccelerated && n % 16 == 0 && n <= 64 && k <= 256 && m <= 256 && k > 0;

    public static void Run(KernelContext ctx, float[] a, float[] b, float[] y, int[] batch, int[] aStr, int[] bStr, int m, int n, int k)
    {
        int count = ShapeUtil.Product(batch);
        ctx.ParallelFor(count, Math.Max(1, 16384 / Math.Max(1, m * n * k / 16)), (t0, t1) =>
        {
            for (int t = t0; t < t1; t++)
            {
                long ao = 0, bo = 0;
                int rem = t;
                for (int d = batch.Length - 1; d >= 0; d--)
                {
                    int i = rem % batch[d];
                    rem /= batch[d];
                    ao += (long)i * aStr[d];
                    bo += (long)i * bStr[d];
                }
                Multiply(a.AsSpan((int)ao, m * k), b.AsSpan((int)bo, k * n), y.AsSpan(t * m * n, m * n), m, n, k);
            }
        });
    }

    private static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, int m, int n, int k)
    {
        for (int i = 0; i < m; i++)
        {
            var ar = a.Slice(i * k, k);
            for (int j = 0; j < n; j += 16)
            {
                var acc = Vector512<float>.Zero;
                for (int p = 0; p < k; p++)
                    acc = Vector512.FusedMultiplyAdd(Vector512.Create(ar[p]),
                        Vector512.Create(b.Slice(p * n + j, 16)), acc);
                acc.CopyTo(y.Slice(i * n + j, 16));
            }
        }
    }
}
