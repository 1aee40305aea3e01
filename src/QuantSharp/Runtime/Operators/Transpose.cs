using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// Transpose: output axis i is input axis perm[i] (default: reversed axes). The permutation is first simplified
/// (size-1 axes dropped, input axes that stay adjacent merged), so NCHW↔NHWC becomes a batched 2-D transpose,
/// done in cache-sized tiles; a permutation that keeps the last axis copies whole rows.
/// </summary>
[OnnxOperator("Transpose", 1)]
public sealed class TransposeKernel : MovementKernel
{
    private const int Tile = 32;

    private int[] Perm(int rank)
    {
        var p = Node.GetInts("perm");
        if (p is null)
        {
            var r = new int[rank];
            for (int i = 0; i < rank; i++) r[i] = rank - 1 - i;
            return r;
        }
        if (p.Length != rank) throw new QuantSharpException($"Transpose perm [{string.Join(",", p)}] does not match rank {rank}");
        var perm = new int[rank];
        var seen = new bool[rank];
        for (int i = 0; i < rank; i++)
        {
            long a = p[i] < 0 ? p[i] + rank : p[i];
            if (a < 0 || a >= rank || seen[a]) throw new QuantSharpException($"Transpose perm [{string.Join(",", p)}] is not a permutation of 0..{rank - 1}");
            seen[a] = true;
            perm[i] = (int)a;
        }
        return perm;
    }

    /// <summary>
    /// Drops size-1 input axes and merges runs of input axes that appear consecutively in perm; returns the reduced
    /// input shape and permutation, describing the same data movement.
    /// </summary>
    internal static (int[] Shape, int[] Perm) Simplify(int[] shape, int[] perm)
    {
        // Keep only non-trivial input axes, renumbered.
        var keptAxes = Enumerable.Range(0, shape.Length).Where(a => shape[a] != 1).ToArray();
        var newIndex = new int[shape.Length];
        for (int i = 0; i < keptAxes.Length; i++) newIndex[keptAxes[i]] = i;
        var p = perm.Where(a => shape[a] != 1).Select(a => newIndex[a]).ToArray();
        var s = keptAxes.Select(a => shape[a]).ToArray();
        // Merge: output positions j, j+1 reading input axes a, a+1 fold into one axis.
        var groups = new List<List<int>>();
        foreach (int a in p)
        {
            if (groups.Count > 0 && groups[^1][^1] + 1 == a) groups[^1].Add(a);
            else groups.Add([a]);
        }
        var order = groups.OrderBy(g => g[0]).ToList();
        var mergedShape = order.Select(g => g.Aggregate(1, (acc, a) => acc * s[a])).ToArray();
        var mergedPerm = groups.Select(g => order.IndexOf(g)).ToArray();
        return (mergedShape, mergedPerm);
    }

    /// <summary>The last input shape with its permutation and simplified plan, reused while the shape repeats.</summary>
    private sealed record Plan(int[] Shape, int[] Perm, int[] SimpleShape, int[] SimplePerm);

    private Plan? _plan;

    protected override void Run<T>(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var plan = _plan;
        if (plan is null || !plan.Shape.AsSpan().SequenceEqual(x.Shape))
        {
            var perm = Perm(x.Rank);
            var (ss, sp) = Simplify(x.Shape, perm);
            plan = new Plan((int[])x.Shape.Clone(), perm, ss, sp);
            _plan = plan;
        }
        var outShape = new int[x.Rank];
        for (int i = 0; i < outShape.Length; i++) outShape[i] = x.Shape[plan.Perm[i]];
        var y = OutputLike<T>(ctx, 0, x, outShape);
        if (x.Length > 0) TransposeSimplified(ctx, ((Tensor<T>)x).Data, plan.SimpleShape, plan.SimplePerm, y.Data);
    }

    /// <summary>dst = src (shape <paramref name="shape"/>) with axes permuted by <paramref name="perm"/>.</summary>
    internal static void Transpose<T>(KernelContext? ctx, T[] src, int[] shape, int[] perm, T[] dst)
    {
        if (src.Length == 0) return;
        var (s, p) = Simplify(shape, perm);
        TransposeSimplified(ctx, src, s, p, dst);
    }

    /// <summary><see cref="Transpose{T}"/> after <see cref="Simplify"/>.</summary>
    private static void TransposeSimplified<T>(KernelContext? ctx, T[] src, int[] s, int[] p, T[] dst)
    {
        int rank = s.Length;
        if (rank <= 1)
        {
            src.AsSpan().CopyTo(dst);
            return;
        }
        if (p[^1] == rank - 2 && p[^2] == rank - 1 && IsIdentityPrefix(p, rank - 2))
        {
            // Batched 2-D transpose [B, R, C] -> [B, C, R].
            int rows = s[rank - 2], cols = s[rank - 1];
            int batch = src.Length / (rows * cols);
            BatchedTranspose2D(ctx, src, dst, batch, rows, cols);
            return;
        }
        General(ctx, src, s, p, dst);
    }

    private static bool IsIdentityPrefix(int[] p, int n)
    {
        for (int i = 0; i < n; i++) if (p[i] != i) return false;
        return true;
    }

    private static void BatchedTranspose2D<T>(KernelContext? ctx, T[] src, T[] dst, int batch, int rows, int cols)
    {
        if (typeof(T) == typeof(byte) || typeof(T) == typeof(sbyte))
        {
            // 8-bit codes (integer execution): the vectorised byte kernel, matrices split over threads.
            Array sa = src, da = dst;
            void Bytes(int b0, int b1) => Kernels.Simd.ByteTranspose.Transpose2D(AsBytes(sa).Slice(b0 * rows * cols, (b1 - b0) * rows * cols),
                AsBytes(da).Slice(b0 * rows * cols, (b1 - b0) * rows * cols), b1 - b0, rows, cols);
            if (ctx is null) Bytes(0, batch);
            else ctx.ParallelFor(batch, Math.Max(1, 65536 / Math.Max(1, rows * cols)), Bytes);
            return;
        }
        int tilesR = (rows + Tile - 1) / Tile, tilesC = (cols + Tile - 1) / Tile;
        int work = batch * tilesR * tilesC;
        void Body(int start, int end)
        {
            for (int w = start; w < end; w++)
            {
                int b = w / (tilesR * tilesC);
                int t = w % (tilesR * tilesC);
                int r0 = t / tilesC * Tile, c0 = t % tilesC * Tile;
                int r1 = Math.Min(r0 + Tile, rows), c1 = Math.Min(c0 + Tile, cols);
                int baseOff = b * rows * cols;
                // Within a tile both the reads (rows of src) and the writes (rows of dst) stay in cache.
                for (int c = c0; c < c1; c++)
                {
                    int d = baseOff + c * rows;
                    for (int r = r0; r < r1; r++) dst[d + r] = src[baseOff + r * cols + c];
                }
            }
        }
        if (ctx is null) Body(0, work);
        else ctx.ParallelFor(work, 16, Body);
    }

    private static Span<byte> AsBytes(Array a) => a is sbyte[] s ? System.Runtime.InteropServices.MemoryMarshal.AsBytes(s.AsSpan()) : ((byte[])a).AsSpan();

    private static void General<T>(KernelContext? ctx, T[] src, int[] shape, int[] perm, T[] dst)
    {
        int rank = shape.Length;
        var inStrides = ShapeUtil.Strides(shape);
        var outShape = new int[rank];
        var stride = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            outShape[i] = shape[perm[i]];
            stride[i] = inStrides[perm[i]];
        }
        int inner = outShape[rank - 1];
        int innerStride = stride[rank - 1];
        int rows = dst.Length / inner;
        void Body(int start, int end)
        {
            var idx = new int[rank - 1];
            int rem = start;
            for (int d = rank - 2; d >= 0; d--)
            {
                idx[d] = rem % outShape[d];
                rem /= outShape[d];
            }
            for (int r = start; r < end; r++)
            {
                int off = 0;
                for (int d = 0; d < rank - 1; d++) off += idx[d] * stride[d];
                int o = r * inner;
                if (innerStride == 1) src.AsSpan(off, inner).CopyTo(dst.AsSpan(o, inner));
                else for (int i = 0; i < inner; i++) dst[o + i] = src[off + i * innerStride];
                for (int d = rank - 2; d >= 0; d--)
                {
                    if (++idx[d] < outShape[d]) break;
                    idx[d] = 0;
                }
            }
        }
        if (ctx is null) Body(0, rows);
        else ctx.ParallelFor(rows, Math.Max(1, 8192 / Math.Max(inner, 1)), Body);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        if (t.Shape is null)
        {
            ctx.SetOutputType(0, Movement.Unranked(t.ElementType));
            return;
        }
        var perm = Perm(t.Shape.Length);
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, perm.Select(a => t.Shape[a]).ToArray()));
    }
}
