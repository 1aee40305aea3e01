using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>
/// op(A) (m×k) packed for <see cref="Sgemm"/>: per K block of <see cref="Sgemm.KC"/>, micro-panels of MR rows
/// stored p-major (panel[p·MR + r]), rows past m zero-filled. Build once for constant weights.
/// </summary>
public sealed class SgemmPackedA
{
    internal SgemmPackedA(float[] data, int rows, int depth, int mr) { Data = data; Rows = rows; Depth = depth; Mr = mr; }
    internal float[] Data { get; }
    public int Rows { get; }
    public int Depth { get; }
    internal int Mr { get; }
}

/// <summary>
/// op(B) (k×n) packed for <see cref="Sgemm"/>: per K block, micro-panels of NR columns stored p-major
/// (panel[p·NR + j]), columns past n zero-filled. Build once for constant weights.
/// </summary>
public sealed class SgemmPackedB
{
    internal SgemmPackedB(float[] data, int depth, int cols, int nr) { Data = data; Depth = depth; Cols = cols; Nr = nr; }
    internal float[] Data { get; }
    public int Depth { get; }
    public int Cols { get; }
    internal int Nr { get; }
}

/// <summary>
/// Packed, cache-blocked, multithreaded single-precision GEMM with the semantics of
/// <see cref="Reference.SgemmReference"/>: C = alpha · op(A) · op(B) (+ C when accumulating), row-major.
/// <para>
/// Both operands are packed into micro-panels (A: MR rows, B: NR columns, K blocked by <see cref="KC"/>), then a
/// register-blocked micro-kernel (MR×NR FMA tile: 8×32 with Vector512, 6×16 with Vector256, 4×8 with Vector128)
/// computes each tile. Work is split over output tiles; every C element is produced by one thread with the
/// same K order and block boundaries, so results do not depend on the thread count.
/// </para>
/// </summary>
public static partial class Sgemm
{
    /// <summary>K block: an A micro-panel (KC·MR floats) stays in L1 while B micro-panels stream from L2.</summary>
    public const int KC = 256;

    /// <summary>
    /// Floating-point operations a thread must get before a product is split: handing work to a pool thread costs
    /// tens of microseconds here (measured: a 1.8 MFLOP batch-1 conv took 0.072 ms split over two threads against
    /// 0.028 ms on one), about what 8M flops take on one core, so smaller products stay on the calling thread.
    /// Only the tile-to-thread assignment depends on it, never the results.
    /// </summary>
    public const long MinFlopsPerChunk = 1L << 23;

    private enum Isa { V512, V256, V128 }

    private static readonly Isa Kind = Vector512.IsHardwareAccelerated ? Isa.V512
        : Vector256.IsHardwareAccelerated ? Isa.V256 : Isa.V128;

    /// <summary>Rows of the register tile.</summary>
    public static int MR => Kind switch { Isa.V512 => 8, Isa.V256 => 6, _ => 4 };

    /// <summary>Columns of the register tile (two vectors).</summary>
    public static int NR => Kind switch { Isa.V512 => 32, Isa.V256 => 16, _ => 8 };

    /// <summary>Name of the micro-kernel in use, for reports.</summary>
    public static string KernelName => Kind switch { Isa.V512 => "Vector512 8x32", Isa.V256 => "Vector256 6x16", _ => "Vector128 4x8" };

    // Task tile: MC rows × NC columns of C (multiples of MR and NR so micro-tile edges depend only on m and n).
    private static int MC => MR * 12;
    private static int NC => NR * 16;

    /// <summary>Packs op(A) (m×k): A(i, p) = transA ? a[p·lda + i] : a[i·lda + p].</summary>
    public static SgemmPackedA PackA(bool transA, int m, int k, ReadOnlySpan<float> a, int lda)
    {
        CheckOperand(transA, m, k, a.Length, lda, "A");
        int mr = MR;
        var data = new float[PackedASize(m, k, mr)];
        unsafe
        {
            fixed (float* pa = a) fixed (float* pd = data) PackARange(transA, m, k, pa, lda, pd, mr, 0, PanelCount(m, mr));
        }
        return new SgemmPackedA(data, m, k, mr);
    }

    /// <summary>Packs op(B) (k×n): B(p, j) = transB ? b[j·ldb + p] : b[p·ldb + j].</summary>
    public static SgemmPackedB PackB(bool transB, int k, int n, ReadOnlySpan<float> b, int ldb)
    {
        CheckOperand(transB, k, n, b.Length, ldb, "B");
        int nr = NR;
        var data = new float[PackedBSize(k, n, nr)];
        unsafe
        {
            fixed (float* pb = b) fixed (float* pd = data) PackBRange(transB, k, n, pb, ldb, pd, nr, 0, PanelCount(n, nr));
        }
        return new SgemmPackedB(data, k, n, nr);
    }

    /// <summary>C (m×n, row stride ldc) = alpha · op(A) · op(B) (+ C when <paramref name="accumulate"/>).</summary>
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc,
        float alpha = 1f, bool accumulate = false, int threads = 1)
    {
        CheckOperand(transA, m, k, a.Length, lda, "A");
        CheckOperand(transB, k, n, b.Length, ldb, "B");
        CheckC(m, n, c.Length, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0) { ScaleOnly(m, n, c, ldc, accumulate); return; }
        int mr = MR, nr = NR;
        var pa = RentPack(PackedASize(m, k, mr), 0);
        var pb = RentPack(PackedBSize(k, n, nr), 1);
        try
        {
            unsafe
            {
                fixed (float* ra = a) fixed (float* rb = b) fixed (float* da = pa) fixed (float* db = pb)
                {
                    PackParallel(transA, m, k, ra, lda, da, transB, n, rb, ldb, db, mr, nr, threads);
                    fixed (float* rc = c) Run(m, n, k, da, db, rc, ldc, alpha, accumulate, threads);
                }
            }
        }
        finally
        {
            ReturnPack(pa, 0);
            ReturnPack(pb, 1);
        }
    }

    /// <summary>C = alpha · A · B (+ C) with both operands pre-packed.</summary>
    public static void Multiply(SgemmPackedA a, SgemmPackedB b, Span<float> c, int ldc, float alpha = 1f, bool accumulate = false, int threads = 1)
    {
        CheckPacked(a, b);
        int m = a.Rows, n = b.Cols, k = a.Depth;
        if (b.Depth != k) throw new ArgumentException($"packed A has depth {k}, packed B has depth {b.Depth}");
        CheckC(m, n, c.Length, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0) { ScaleOnly(m, n, c, ldc, accumulate); return; }
        unsafe
        {
            fixed (float* da = a.Data) fixed (float* db = b.Data) fixed (float* rc = c) Run(m, n, k, da, db, rc, ldc, alpha, accumulate, threads);
        }
    }

    /// <summary>C = alpha · A · op(B) (+ C) with A pre-packed (convolution weights).</summary>
    public static void Multiply(SgemmPackedA a, bool transB, int n, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc,
        float alpha = 1f, bool accumulate = false, int threads = 1)
    {
        CheckPacked(a, null);
        int m = a.Rows, k = a.Depth;
        CheckOperand(transB, k, n, b.Length, ldb, "B");
        CheckC(m, n, c.Length, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0) { ScaleOnly(m, n, c, ldc, accumulate); return; }
        int nr = NR;
        var pb = RentPack(PackedBSize(k, n, nr), 1);
        try
        {
            unsafe
            {
                fixed (float* rb = b) fixed (float* da = a.Data) fixed (float* db = pb)
                {
                    PackParallel(false, 0, k, null, 0, null, transB, n, rb, ldb, db, a.Mr, nr, threads);
                    fixed (float* rc = c) Run(m, n, k, da, db, rc, ldc, alpha, accumulate, threads);
                }
            }
        }
        finally { ReturnPack(pb, 1); }
    }

    /// <summary>C = alpha · op(A) · B (+ C) with B pre-packed (MatMul/Gemm with constant B).</summary>
    public static void Multiply(bool transA, int m, ReadOnlySpan<float> a, int lda, SgemmPackedB b, Span<float> c, int ldc,
        float alpha = 1f, bool accumulate = false, int threads = 1)
    {
        CheckPacked(null, b);
        int n = b.Cols, k = b.Depth;
        CheckOperand(transA, m, k, a.Length, lda, "A");
        CheckC(m, n, c.Length, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0) { ScaleOnly(m, n, c, ldc, accumulate); return; }
        int mr = MR;
        var pa = RentPack(PackedASize(m, k, mr), 0);
        try
        {
            unsafe
            {
                fixed (float* ra = a) fixed (float* da = pa) fixed (float* db = b.Data)
                {
                    PackParallel(transA, m, k, ra, lda, da, false, 0, null, 0, null, mr, b.Nr, threads);
                    fixed (float* rc = c) Run(m, n, k, da, db, rc, ldc, alpha, accumulate, threads);
                }
            }
        }
        finally { ReturnPack(pa, 0); }
    }

    // Packing buffers are kept per thread (one for A, one for B) and only grow: inference repeats the same shapes,
    // and multi-MB buffers from a shared pool or the allocator cost page faults and LOH collections on every call.
    [ThreadStatic] private static float[]?[]? t_packs;

    /// <summary>
    /// Largest packing buffer kept per thread and slot (floats, 16 MB + slack: Conv's im2col slabs fit);
    /// bigger requests are allocated and dropped so idle threads never pin more than this.
    /// </summary>
    private const int MaxCachedPack = (4 << 20) + (1 << 16);

    private static float[] RentPack(int length, int slot)
    {
        var packs = t_packs ??= new float[]?[2];
        var a = packs[slot];
        if (a is not null && a.Length >= length)
        {
            packs[slot] = null;
            return a;
        }
        return length <= 1024 ? ArrayPool<float>.Shared.Rent(length) : GC.AllocateUninitializedArray<float>(length);
    }

    private static void ReturnPack(float[] a, int slot)
    {
        if (a.Length <= 1024) { ArrayPool<float>.Shared.Return(a); return; }
        if (a.Length > MaxCachedPack) return;
        var packs = t_packs ??= new float[]?[2];
        if (packs[slot] is null || packs[slot]!.Length < a.Length) packs[slot] = a;
    }

    private static void CheckPacked(SgemmPackedA? a, SgemmPackedB? b)
    {
        // Packs made before a change of the micro-kernel would have another layout; the ISA is fixed per process.
        if (a is not null && a.Mr != MR) throw new ArgumentException("packed A was built for another micro-kernel");
        if (b is not null && b.Nr != NR) throw new ArgumentException("packed B was built for another micro-kernel");
    }

    private static void CheckOperand(bool trans, int rows, int cols, int length, int ld, string name)
    {
        if (rows < 0 || cols < 0) throw new ArgumentException($"{name}: negative size {rows}x{cols}");
        if (rows == 0 || cols == 0) return;
        int storedRows = trans ? cols : rows, storedCols = trans ? rows : cols;
        if (ld < storedCols) throw new ArgumentException($"{name}: leading dimension {ld} < {storedCols}");
        if ((long)(storedRows - 1) * ld + storedCols > length) throw new ArgumentException($"{name}: buffer of {length} is too small");
    }

    private static void CheckC(int m, int n, int length, int ldc)
    {
        if (m == 0 || n == 0) return;
        if (ldc < n) throw new ArgumentException($"C: leading dimension {ldc} < {n}");
        if ((long)(m - 1) * ldc + n > length) throw new ArgumentException($"C: buffer of {length} is too small");
    }

    private static void ScaleOnly(int m, int n, Span<float> c, int ldc, bool accumulate)
    {
        if (accumulate) return;
        for (int i = 0; i < m; i++) c.Slice(i * ldc, n).Clear();
    }

    private static int PanelCount(int size, int panel) => (size + panel - 1) / panel;
    private static int PackedASize(int m, int k, int mr) => checked(PanelCount(m, mr) * mr * k);
    private static int PackedBSize(int k, int n, int nr) => checked(PanelCount(n, nr) * nr * k);

    private static unsafe void PackParallel(bool transA, int m, int k, float* a, int lda, float* da,
        bool transB, int n, float* b, int ldb, float* db, int mr, int nr, int threads)
    {
        int panelsA = a is null ? 0 : PanelCount(m, mr);
        int panelsB = b is null ? 0 : PanelCount(n, nr);
        nint ia = (nint)a, ida = (nint)da, ib = (nint)b, idb = (nint)db;
        // Packing is memory-bound; split only when there is enough of it to pay for the threads (≈ 256K floats per
        // chunk: copying them costs about what a thread hand-off does).
        int perPanel = Math.Max(1, k * Math.Max(mr, nr));
        Parallelism.For(threads, panelsA + panelsB, Math.Max(1, (1 << 18) / perPanel), (start, end) =>
        {
            if (start < panelsA) PackARange(transA, m, k, (float*)ia, lda, (float*)ida, mr, start, Math.Min(end, panelsA));
            if (end > panelsA) PackBRange(transB, k, n, (float*)ib, ldb, (float*)idb, nr, Math.Max(start, panelsA) - panelsA, end - panelsA);
        });
    }

    /// <summary>Packs A micro-panels [p0, p1): panel ip of K block starting at kb sits at kb·Mpad + ip·kcLen·MR.</summary>
    private static unsafe void PackARange(bool transA, int m, int k, float* a, int lda, float* dst, int mr, int p0, int p1)
    {
        int mpad = PanelCount(m, mr) * mr;
        for (int kb = 0; kb < k; kb += KC)
        {
            int kc = Math.Min(KC, k - kb);
            for (int ip = p0; ip < p1; ip++)
            {
                float* d = dst + (long)kb * mpad + (long)ip * kc * mr;
                int i0 = ip * mr, rows = Math.Min(mr, m - i0);
                if (transA)
                {
                    // op(A)(i, p) = a[p·lda + i]: each p is a contiguous run of rows.
                    for (int p = 0; p < kc; p++)
                    {
                        float* s = a + (long)(kb + p) * lda + i0;
                        float* o = d + p * mr;
                        int r = 0;
                        for (; r < rows; r++) o[r] = s[r];
                        for (; r < mr; r++) o[r] = 0f;
                    }
                }
                else
                {
                    for (int r = 0; r < rows; r++)
                    {
                        float* s = a + (long)(i0 + r) * lda + kb;
                        for (int p = 0; p < kc; p++) d[p * mr + r] = s[p];
                    }
                    for (int r = rows; r < mr; r++)
                        for (int p = 0; p < kc; p++) d[p * mr + r] = 0f;
                }
            }
        }
    }

    /// <summary>Packs B micro-panels [p0, p1): panel jp of K block starting at kb sits at kb·Npad + jp·kcLen·NR.</summary>
    private static unsafe void PackBRange(bool transB, int k, int n, float* b, int ldb, float* dst, int nr, int p0, int p1)
    {
        int npad = PanelCount(n, nr) * nr;
        for (int kb = 0; kb < k; kb += KC)
        {
            int kc = Math.Min(KC, k - kb);
            for (int jp = p0; jp < p1; jp++)
            {
                float* d = dst + (long)kb * npad + (long)jp * kc * nr;
                int j0 = jp * nr, cols = Math.Min(nr, n - j0);
                if (!transB)
                {
                    // op(B)(p, j) = b[p·ldb + j]: each p is a contiguous run of columns.
                    for (int p = 0; p < kc; p++)
                    {
                        float* s = b + (long)(kb + p) * ldb + j0;
                        float* o = d + p * nr;
                        if (cols == nr) new ReadOnlySpan<float>(s, nr).CopyTo(new Span<float>(o, nr));
                        else
                        {
                            int j = 0;
                            for (; j < cols; j++) o[j] = s[j];
                            for (; j < nr; j++) o[j] = 0f;
                        }
                    }
                }
                else
                {
                    for (int j = 0; j < cols; j++)
                    {
                        float* s = b + (long)(j0 + j) * ldb + kb;
                        for (int p = 0; p < kc; p++) d[p * nr + j] = s[p];
                    }
                    for (int j = cols; j < nr; j++)
                        for (int p = 0; p < kc; p++) d[p * nr + j] = 0f;
                }
            }
        }
    }

    /// <summary>
    /// Computes C from packed operands. Tasks are MC×NC tiles of C; the tile grid may follow the thread count
    /// (it only changes which thread computes a tile, never the K order or the micro-tile boundaries).
    /// </summary>
    private static unsafe void Run(int m, int n, int k, float* pa, float* pb, float* c, int ldc, float alpha, bool accumulate, int threads)
    {
        int mr = MR, nr = NR;
        int mc = MC, nc = NC;
        int rowTiles = PanelCount(m, mc), colTiles = PanelCount(n, nc);
        // Smaller tiles when there are fewer tiles than threads (still multiples of MR and NR).
        while (threads > 1 && rowTiles * colTiles < threads * 2 && mc > mr)
        {
            mc = Math.Max(mr, mc / 2 / mr * mr);
            rowTiles = PanelCount(m, mc);
        }
        int tiles = rowTiles * colTiles;
        int mpad = PanelCount(m, mr) * mr, npad = PanelCount(n, nr) * nr;
        nint ia = (nint)pa, ib = (nint)pb, ic = (nint)c;
        long flopsPerTile = 2L * Math.Min(mc, m) * Math.Min(nc, n) * k;
        int minChunk = flopsPerTile >= MinFlopsPerChunk ? 1 : (int)Math.Min(tiles, MinFlopsPerChunk / Math.Max(1, flopsPerTile));
        Parallelism.For(threads, tiles, minChunk, (start, end) =>
        {
            float* tmp = stackalloc float[8 * 32];
            for (int t = start; t < end; t++)
            {
                int i0 = t / colTiles * mc, j0 = t % colTiles * nc;
                int i1 = Math.Min(m, i0 + mc), j1 = Math.Min(n, j0 + nc);
                for (int kb = 0; kb < k; kb += KC)
                {
                    int kc = Math.Min(KC, k - kb);
                    bool acc = accumulate || kb > 0;
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
                            if (rows == mr && cols == nr) Tile(kc, ap, bp, ct, ldc, alpha, acc);
                            else
                            {
                                // Edge tile: compute the full padded tile into scratch, then merge the valid part
                                // with the same arithmetic as the full path (alpha·acc, then + C).
                                Tile(kc, ap, bp, tmp, nr, alpha, false);
                                for (int r = 0; r < rows; r++)
                                {
                                    float* cr = ct + (long)r * ldc;
                                    float* tr = tmp + r * nr;
                                    if (acc) for (int q = 0; q < cols; q++) cr[q] += tr[q];
                                    else for (int q = 0; q < cols; q++) cr[q] = tr[q];
                                }
                            }
                        }
                    }
                }
            }
        });
    }

    // FMA when the hardware has it (AVX-512 always does; AVX2 machines and Arm64 practically always): without it
    // FusedMultiplyAdd is emulated element by element, so those machines multiply and add separately instead.
    private static bool HasFma128 => System.Runtime.Intrinsics.X86.Fma.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Madd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        System.Runtime.Intrinsics.X86.Fma.IsSupported ? Vector256.FusedMultiplyAdd(a, b, c) : a * b + c;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Madd(Vector128<float> a, Vector128<float> b, Vector128<float> c) =>
        HasFma128 ? Vector128.FusedMultiplyAdd(a, b, c) : a * b + c;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Tile(int kc, float* a, float* b, float* c, int ldc, float alpha, bool accumulate)
    {
        switch (Kind)
        {
            case Isa.V512: Kernel512(kc, a, b, c, ldc, alpha, accumulate); break;
            case Isa.V256: Kernel256(kc, a, b, c, ldc, alpha, accumulate); break;
            default: Kernel128(kc, a, b, c, ldc, alpha, accumulate); break;
        }
    }

    /// <summary>
    /// 8×32 register tile with Vector512: C[r, 0..32) (=|+=) alpha · Σ_p a[p·8 + r] · b[p·32 + …], then optionally
    /// the epilogue in registers (<see cref="MultiplyBiasClamp"/>): + bias[r], then min(max(·, lo), hi).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel512(int kc, float* a, float* b, float* c, int ldc, float alpha, bool accumulate,
        float* bias = null, bool clamp = false, float lo = 0f, float hi = 0f)
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
        if (alpha != 1f)
        {
            var va = Vector512.Create(alpha);
            c00 *= va; c01 *= va;
            c10 *= va; c11 *= va;
            c20 *= va; c21 *= va;
            c30 *= va; c31 *= va;
            c40 *= va; c41 *= va;
            c50 *= va; c51 *= va;
            c60 *= va; c61 *= va;
            c70 *= va; c71 *= va;
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

    /// <summary>6×16 register tile with Vector256: C[r, 0..16) (=|+=) alpha · Σ_p a[p·6 + r] · b[p·16 + …].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel256(int kc, float* a, float* b, float* c, int ldc, float alpha, bool accumulate)
    {
        var c00 = Vector256<float>.Zero; var c01 = Vector256<float>.Zero;
        var c10 = Vector256<float>.Zero; var c11 = Vector256<float>.Zero;
        var c20 = Vector256<float>.Zero; var c21 = Vector256<float>.Zero;
        var c30 = Vector256<float>.Zero; var c31 = Vector256<float>.Zero;
        var c40 = Vector256<float>.Zero; var c41 = Vector256<float>.Zero;
        var c50 = Vector256<float>.Zero; var c51 = Vector256<float>.Zero;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b + 0);
            var b1 = Vector256.Load(b + 8);
            var a0 = Vector256.Create(a[0]);
            c00 = Madd(a0, b0, c00);
            c01 = Madd(a0, b1, c01);
            var a1 = Vector256.Create(a[1]);
            c10 = Madd(a1, b0, c10);
            c11 = Madd(a1, b1, c11);
            var a2 = Vector256.Create(a[2]);
            c20 = Madd(a2, b0, c20);
            c21 = Madd(a2, b1, c21);
            var a3 = Vector256.Create(a[3]);
            c30 = Madd(a3, b0, c30);
            c31 = Madd(a3, b1, c31);
            var a4 = Vector256.Create(a[4]);
            c40 = Madd(a4, b0, c40);
            c41 = Madd(a4, b1, c41);
            var a5 = Vector256.Create(a[5]);
            c50 = Madd(a5, b0, c50);
            c51 = Madd(a5, b1, c51);
            a += 6;
            b += 16;
        }
        if (alpha != 1f)
        {
            var va = Vector256.Create(alpha);
            c00 *= va; c01 *= va;
            c10 *= va; c11 *= va;
            c20 *= va; c21 *= va;
            c30 *= va; c31 *= va;
            c40 *= va; c41 *= va;
            c50 *= va; c51 *= va;
        }
        if (accumulate)
        {
            c00 += Vector256.Load(c + 0 * ldc + 0); c01 += Vector256.Load(c + 0 * ldc + 8);
            c10 += Vector256.Load(c + 1 * ldc + 0); c11 += Vector256.Load(c + 1 * ldc + 8);
            c20 += Vector256.Load(c + 2 * ldc + 0); c21 += Vector256.Load(c + 2 * ldc + 8);
            c30 += Vector256.Load(c + 3 * ldc + 0); c31 += Vector256.Load(c + 3 * ldc + 8);
            c40 += Vector256.Load(c + 4 * ldc + 0); c41 += Vector256.Load(c + 4 * ldc + 8);
            c50 += Vector256.Load(c + 5 * ldc + 0); c51 += Vector256.Load(c + 5 * ldc + 8);
        }
        Vector256.Store(c00, c + 0 * ldc + 0); Vector256.Store(c01, c + 0 * ldc + 8);
        Vector256.Store(c10, c + 1 * ldc + 0); Vector256.Store(c11, c + 1 * ldc + 8);
        Vector256.Store(c20, c + 2 * ldc + 0); Vector256.Store(c21, c + 2 * ldc + 8);
        Vector256.Store(c30, c + 3 * ldc + 0); Vector256.Store(c31, c + 3 * ldc + 8);
        Vector256.Store(c40, c + 4 * ldc + 0); Vector256.Store(c41, c + 4 * ldc + 8);
        Vector256.Store(c50, c + 5 * ldc + 0); Vector256.Store(c51, c + 5 * ldc + 8);
    }

    /// <summary>4×8 register tile with Vector128: C[r, 0..8) (=|+=) alpha · Σ_p a[p·4 + r] · b[p·8 + …].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel128(int kc, float* a, float* b, float* c, int ldc, float alpha, bool accumulate)
    {
        var c00 = Vector128<float>.Zero; var c01 = Vector128<float>.Zero;
        var c10 = Vector128<float>.Zero; var c11 = Vector128<float>.Zero;
        var c20 = Vector128<float>.Zero; var c21 = Vector128<float>.Zero;
        var c30 = Vector128<float>.Zero; var c31 = Vector128<float>.Zero;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector128.Load(b + 0);
            var b1 = Vector128.Load(b + 4);
            var a0 = Vector128.Create(a[0]);
            c00 = Madd(a0, b0, c00);
            c01 = Madd(a0, b1, c01);
            var a1 = Vector128.Create(a[1]);
            c10 = Madd(a1, b0, c10);
            c11 = Madd(a1, b1, c11);
            var a2 = Vector128.Create(a[2]);
            c20 = Madd(a2, b0, c20);
            c21 = Madd(a2, b1, c21);
            var a3 = Vector128.Create(a[3]);
            c30 = Madd(a3, b0, c30);
            c31 = Madd(a3, b1, c31);
            a += 4;
            b += 8;
        }
        if (alpha != 1f)
        {
            var va = Vector128.Create(alpha);
            c00 *= va; c01 *= va;
            c10 *= va; c11 *= va;
            c20 *= va; c21 *= va;
            c30 *= va; c31 *= va;
        }
        if (accumulate)
        {
            c00 += Vector128.Load(c + 0 * ldc + 0); c01 += Vector128.Load(c + 0 * ldc + 4);
            c10 += Vector128.Load(c + 1 * ldc + 0); c11 += Vector128.Load(c + 1 * ldc + 4);
            c20 += Vector128.Load(c + 2 * ldc + 0); c21 += Vector128.Load(c + 2 * ldc + 4);
            c30 += Vector128.Load(c + 3 * ldc + 0); c31 += Vector128.Load(c + 3 * ldc + 4);
        }
        Vector128.Store(c00, c + 0 * ldc + 0); Vector128.Store(c01, c + 0 * ldc + 4);
        Vector128.Store(c10, c + 1 * ldc + 0); Vector128.Store(c11, c + 1 * ldc + 4);
        Vector128.Store(c20, c + 2 * ldc + 0); Vector128.Store(c21, c + 2 * ldc + 4);
        Vector128.Store(c30, c + 3 * ldc + 0); Vector128.Store(c31, c + 3 * ldc + 4);
    }
}
