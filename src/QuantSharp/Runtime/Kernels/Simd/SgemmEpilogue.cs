using System.Runtime.Intrinsics;

namespace QuantSharp.Runtime.Kernels.Simd;

public static partial class Sgemm
{
    /// <summary>
    /// C (m×n, row stride ldc) = min(max(A · op(B) + bias[i], lo), hi) with A pre-packed (convolution weights):
    /// bias (one per row, may be empty) and the clamp are applied to each register tile right after its last K
    /// block is stored, while it is in L1, instead of in separate passes over C. Pass ±∞ for no clamp.
    /// The product is summed from zero in the same K order as <see cref="Multiply(SgemmPackedA, bool, int, ReadOnlySpan{float}, int, Span{float}, int, float, bool, int)"/>,
    /// then the bias is added once: (Σ a·b) + bias[i].
    /// </summary>
    public static void MultiplyBiasClamp(SgemmPackedA a, bool transB, int n, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc,
        ReadOnlySpan<float> bias, float lo, float hi, int threads = 1)
    {
        CheckPacked(a, null);
        int m = a.Rows, k = a.Depth;
        CheckOperand(transB, k, n, b.Length, ldb, "B");
        CheckC(m, n, c.Length, ldc);
        if (!bias.IsEmpty && bias.Length < m) throw new ArgumentException($"bias: {bias.Length} elements for {m} rows");
        if (m == 0 || n == 0) return;
        bool clamp = !float.IsNegativeInfinity(lo) || !float.IsPositiveInfinity(hi);
        if (k == 0)
        {
            for (int i = 0; i < m; i++)
            {
                float v = bias.IsEmpty ? 0f : bias[i];
                if (clamp) v = Math.Min(Math.Max(v, lo), hi);
                c.Slice(i * ldc, n).Fill(v);
            }
            return;
        }
        int nr = NR;
        var pb = RentPack(PackedBSize(k, n, nr), 1);
        try
        {
            unsafe
            {
                fixed (float* rb = b) fixed (float* da = a.Data) fixed (float* db = pb) fixed (float* rc = c) fixed (float* rbias = bias)
                {
                    PackParallel(false, 0, k, null, 0, null, transB, n, rb, ldb, db, a.Mr, nr, threads);
                    RunEpilogue(m, n, k, da, db, rc, ldc, rbias, clamp, lo, hi, threads);
                }
            }
        }
        finally { ReturnPack(pb, 1); }
    }

    /// <summary>Scalar reference of <see cref="MultiplyBiasClamp"/>: c[i, j] = clamp(Σ_p a[i·k + p] · b[p·n + j] + bias[i]).</summary>
    public static void MultiplyBiasClampReference(int m, int n, int k, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c,
        ReadOnlySpan<float> bias, float lo, float hi)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s = 0f;
                for (int p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
                if (!bias.IsEmpty) s += bias[i];
                c[i * n + j] = Math.Min(Math.Max(s, lo), hi);
            }
    }

    /// <summary>
    /// <see cref="Run"/>'s tile loop (same tiles, K blocks and micro-kernel, so the same sums for any thread count),
    /// with the bias/clamp epilogue on each register tile after its last K block.
    /// </summary>
    private static unsafe void RunEpilogue(int m, int n, int k, float* pa, float* pb, float* c, int ldc,
        float* bias, bool clamp, float lo, float hi, int threads)
    {
        int mr = MR, nr = NR;
        int mc = MC, nc = NC;
        int rowTiles = PanelCount(m, mc), colTiles = PanelCount(n, nc);
        while (threads > 1 && rowTiles * colTiles < threads * 2 && mc > mr)
        {
            mc = Math.Max(mr, mc / 2 / mr * mr);
            rowTiles = PanelCount(m, mc);
        }
        int tiles = rowTiles * colTiles;
        int mpad = PanelCount(m, mr) * mr, npad = PanelCount(n, nr) * nr;
        nint ia = (nint)pa, ib = (nint)pb, ic = (nint)c, ibias = (nint)bias;
        long flopsPerTile = 2L * Math.Min(mc, m) * Math.Min(nc, n) * k;
        int minChunk = flopsPerTile >= MinFlopsPerChunk ? 1 : (int)Math.Min(tiles, MinFlopsPerChunk / Math.Max(1, flopsPerTile));
        Parallelism.For(threads, tiles, minChunk, (start, end) =>
        {
            float* tmp = stackalloc float[8 * 32];
            float* biasRows = (float*)ibias;
            for (int t = start; t < end; t++)
            {
                int i0 = t / colTiles * mc, j0 = t % colTiles * nc;
                int i1 = Math.Min(m, i0 + mc), j1 = Math.Min(n, j0 + nc);
                for (int kb = 0; kb < k; kb += KC)
                {
                    int kc = Math.Min(KC, k - kb);
                    bool acc = kb > 0, last = kb + KC >= k;
                    float* ablock = (float*)ia + (long)kb * mpad;
                    float* bblock = (float*)ib + (long)kb * npad;
                    for (int i = i0; i < i1; i += mr)
                    {
                        float* ap = ablock + (long)(i / mr) * kc * mr;
                        int rows = Math.Min(mr, m - i);
                        for (int j = j0; j < j1; j += nr)
                        {
                            float* bp = bblock + (long)(j / nr) * kc * nr;
                            int cols = Math.Min(nr, n - j);
                            float* ct = (float*)ic + (long)i * ldc + j;
                            if (rows == mr && cols == nr)
                            {
                                if (last && Kind == Isa.V512)
                                {
                                    // Bias and clamp on the registers before the only store of the tile.
                                    Kernel512BiasClamp(kc, ap, bp, ct, ldc, acc, biasRows is null ? null : biasRows + i, clamp, lo, hi);
                                    continue;
                                }
                                Tile(kc, ap, bp, ct, ldc, 1f, acc);
                            }
                            else
                            {
                                Tile(kc, ap, bp, tmp, nr, 1f, false);
                                for (int r = 0; r < rows; r++)
                                {
                                    float* cr = ct + (long)r * ldc;
                                    float* tr = tmp + r * nr;
                                    if (acc) for (int q = 0; q < cols; q++) cr[q] += tr[q];
                                    else for (int q = 0; q < cols; q++) cr[q] = tr[q];
                                }
                            }
                            if (last)
                                for (int r = 0; r < rows; r++)
                                    EpilogueRow(ct + (long)r * ldc, cols, biasRows is null ? 0f : biasRows[i + r], biasRows is not null, clamp, lo, hi);
                        }
                    }
                }
            }
        });
    }

    /// <summary>
    /// <see cref="Kernel512"/> with alpha = 1 and the epilogue in registers:
    /// C[r, 0..32) = min(max((Σ_p a[p·8 + r] · b[p·32 + …] (+ C)) + bias[r], lo), hi).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel512BiasClamp(int kc, float* a, float* b, float* c, int ldc, bool accumulate, float* bias,
        bool clamp, float lo, float hi)
    {
        var c00 = Vector512<float>.Zero; var c01 = Vector512<float>.Zero;
        var c10 = Vector512<float>.Zero; var c11 = Vector512<float>.Zero;
        var c20 = Vector512<float>.Zero; var c21 = Vector512<float>.Zero;
        var c30 = Vector512<float>.Zero; var c31 = Vector512<float>.Zero;
        var c40 = Vector512<float>.Zero; var c41 = Vector512<float>.Zero;
        var c50 = Vector512<float>.Zero; var c51 = Vector512<float>.Zero;
        var c60 = Vector512<float>.Zero; var c61 = Vector512<float>.Zero;
        var c70 = Vector512<float>.Zero; var c71 = Vector512<float>.Zero;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b + 0);
            var b1 = Vector512.Load(b + 16);
            var a0 = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(a0, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
            var a1 = Vector512.Create(a[1]);
            c10 = Vector512.FusedMultiplyAdd(a1, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
            var a2 = Vector512.Create(a[2]);
            c20 = Vector512.FusedMultiplyAdd(a2, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
            var a3 = Vector512.Create(a[3]);
            c30 = Vector512.FusedMultiplyAdd(a3, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
            var a4 = Vector512.Create(a[4]);
            c40 = Vector512.FusedMultiplyAdd(a4, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(a4, b1, c41);
            var a5 = Vector512.Create(a[5]);
            c50 = Vector512.FusedMultiplyAdd(a5, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(a5, b1, c51);
            var a6 = Vector512.Create(a[6]);
            c60 = Vector512.FusedMultiplyAdd(a6, b0, c60);
            c61 = Vector512.FusedMultiplyAdd(a6, b1, c61);
            var a7 = Vector512.Create(a[7]);
            c70 = Vector512.FusedMultiplyAdd(a7, b0, c70);
            c71 = Vector512.FusedMultiplyAdd(a7, b1, c71);
            a += 8;
            b += 32;
        }
        if (accumulate)
        {
            c00 += Vector512.Load(c + 0 * ldc + 0); c01 += Vector512.Load(c + 0 * ldc + 16);
            c10 += Vector512.Load(c + 1 * ldc + 0); c11 += Vector512.Load(c + 1 * ldc + 16);
            c20 += Vector512.Load(c + 2 * ldc + 0); c21 += Vector512.Load(c + 2 * ldc + 16);
            c30 += Vector512.Load(c + 3 * ldc + 0); c31 += Vector512.Load(c + 3 * ldc + 16);
            c40 += Vector512.Load(c + 4 * ldc + 0); c41 += Vector512.Load(c + 4 * ldc + 16);
            c50 += Vector512.Load(c + 5 * ldc + 0); c51 += Vector512.Load(c + 5 * ldc + 16);
            c60 += Vector512.Load(c + 6 * ldc + 0); c61 += Vector512.Load(c + 6 * ldc + 16);
            c70 += Vector512.Load(c + 7 * ldc + 0); c71 += Vector512.Load(c + 7 * ldc + 16);
        }
        if (bias is not null)
        {
            var v = Vector512.Create(bias[0]); c00 += v; c01 += v;
            v = Vector512.Create(bias[1]); c10 += v; c11 += v;
            v = Vector512.Create(bias[2]); c20 += v; c21 += v;
            v = Vector512.Create(bias[3]); c30 += v; c31 += v;
            v = Vector512.Create(bias[4]); c40 += v; c41 += v;
            v = Vector512.Create(bias[5]); c50 += v; c51 += v;
            v = Vector512.Create(bias[6]); c60 += v; c61 += v;
            v = Vector512.Create(bias[7]); c70 += v; c71 += v;
        }
        if (clamp)
        {
            var vl = Vector512.Create(lo); var vh = Vector512.Create(hi);
            c00 = Vector512.Min(Vector512.Max(c00, vl), vh); c01 = Vector512.Min(Vector512.Max(c01, vl), vh);
            c10 = Vector512.Min(Vector512.Max(c10, vl), vh); c11 = Vector512.Min(Vector512.Max(c11, vl), vh);
            c20 = Vector512.Min(Vector512.Max(c20, vl), vh); c21 = Vector512.Min(Vector512.Max(c21, vl), vh);
            c30 = Vector512.Min(Vector512.Max(c30, vl), vh); c31 = Vector512.Min(Vector512.Max(c31, vl), vh);
            c40 = Vector512.Min(Vector512.Max(c40, vl), vh); c41 = Vector512.Min(Vector512.Max(c41, vl), vh);
            c50 = Vector512.Min(Vector512.Max(c50, vl), vh); c51 = Vector512.Min(Vector512.Max(c51, vl), vh);
            c60 = Vector512.Min(Vector512.Max(c60, vl), vh); c61 = Vector512.Min(Vector512.Max(c61, vl), vh);
            c70 = Vector512.Min(Vector512.Max(c70, vl), vh); c71 = Vector512.Min(Vector512.Max(c71, vl), vh);
        }
        Vector512.Store(c00, c + 0 * ldc + 0); Vector512.Store(c01, c + 0 * ldc + 16);
        Vector512.Store(c10, c + 1 * ldc + 0); Vector512.Store(c11, c + 1 * ldc + 16);
        Vector512.Store(c20, c + 2 * ldc + 0); Vector512.Store(c21, c + 2 * ldc + 16);
        Vector512.Store(c30, c + 3 * ldc + 0); Vector512.Store(c31, c + 3 * ldc + 16);
        Vector512.Store(c40, c + 4 * ldc + 0); Vector512.Store(c41, c + 4 * ldc + 16);
        Vector512.Store(c50, c + 5 * ldc + 0); Vector512.Store(c51, c + 5 * ldc + 16);
        Vector512.Store(c60, c + 6 * ldc + 0); Vector512.Store(c61, c + 6 * ldc + 16);
        Vector512.Store(c70, c + 7 * ldc + 0); Vector512.Store(c71, c + 7 * ldc + 16);
    }

    /// <summary>p[q] = min(max(p[q] + bias, lo), hi) for q &lt; n (the add only with a bias, the clamp only when asked).</summary>
    private static unsafe void EpilogueRow(float* p, int n, float bias, bool hasBias, bool clamp, float lo, float hi)
    {
        if (!hasBias && !clamp) return;
        int q = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vb = Vector512.Create(bias); var vl = Vector512.Create(lo); var vh = Vector512.Create(hi);
            for (; q + 16 <= n; q += 16)
            {
                var v = Vector512.Load(p + q);
                if (hasBias) v += vb;
                if (clamp) v = Vector512.Min(Vector512.Max(v, vl), vh);
                v.Store(p + q);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vb = Vector256.Create(bias); var vl = Vector256.Create(lo); var vh = Vector256.Create(hi);
            for (; q + 8 <= n; q += 8)
            {
                var v = Vector256.Load(p + q);
                if (hasBias) v += vb;
                if (clamp) v = Vector256.Min(Vector256.Max(v, vl), vh);
                v.Store(p + q);
            }
        }
        for (; q < n; q++)
        {
            float v = p[q];
            if (hasBias) v += bias;
            if (clamp) v = Math.Min(Math.Max(v, lo), hi);
            p[q] = v;
        }
    }
}
