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
                                    Kernel512(kc, ap, bp, ct, ldc, 1f, acc, biasRows is null ? null : biasRows + i, clamp, lo, hi);
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
