using System.Runtime.InteropServices;
using QuantSharp.Runtime.Kernels.Reference;

namespace QuantSharp.Runtime.Kernels.Jit;

/// <summary>64-byte aligned native memory (tile and zmm loads prefer aligned rows), freed on dispose or finalisation.</summary>
internal sealed unsafe class AlignedBuffer : IDisposable
{
    public byte* Pointer { get; private set; }
    public long Length { get; }

    public AlignedBuffer(long length)
    {
        Length = Math.Max(length, 64);
        Pointer = (byte*)NativeMemory.AlignedAlloc((nuint)Length, 64);
        NativeMemory.Clear(Pointer, (nuint)Length);
    }

    public Span<byte> Span => new(Pointer, checked((int)Length));

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    ~AlignedBuffer() => Free();

    private void Free()
    {
        if (Pointer == null) return;
        NativeMemory.AlignedFree(Pointer);
        Pointer = null;
    }
}

/// <summary>
/// A k×n int8 right-hand matrix packed once for one backend's kernel (zero padded to the kernel's K and N blocking),
/// with its raw column sums (zero-point correction) and the s8→u8 compensation bias of the VNNI kernel.
/// </summary>
public sealed class JitPackedB : IDisposable
{
    internal AlignedBuffer Data { get; }
    internal int[] ColumnSums { get; }
    /// <summary>−128·Σ_k B[k, n] per padded column: (a + 128)·b summed minus this restores a·b for s8 A on vpdpbusd.</summary>
    internal int[] SignedBias { get; }
    internal int[] ZeroBias { get; }
    public JitBackend Backend { get; }
    public int K { get; }
    public int N { get; }
    internal int KSteps { get; }
    internal int NBlocks { get; }
    internal int NPad { get; }

    internal JitPackedB(JitBackend backend, int k, int n, AlignedBuffer data, int[] columnSums, int kSteps, int nBlocks, int nPad)
    {
        Backend = backend; K = k; N = n; Data = data; ColumnSums = columnSums; KSteps = kSteps; NBlocks = nBlocks; NPad = nPad;
        SignedBias = new int[nPad];
        ZeroBias = new int[nPad];
        for (int j = 0; j < n; j++) SignedBias[j] = unchecked(-128 * columnSums[j]);
    }

    public void Dispose() => Data.Dispose();
}

/// <summary>
/// Int8 GEMM on generated machine code: AMX tiles (tdpbssd / tdpbusd) when the CPU and OS allow them, else the
/// 512-bit vpdpbusd micro-kernel. C (int32, row-major, leading dimension ldc) = (A − aZero)·(B − bZero), the same
/// wrapping int32 result as <see cref="IntGemmReference"/>, bit for bit. Kernels are generated once per instance
/// (one per shape class: AMX signed/unsigned A, VNNI 1–6 rows) and released on dispose.
/// Use <see cref="TryCreate"/>: it returns null when generated code is unavailable or turned off, and callers keep
/// their managed kernels.
/// </summary>
public sealed unsafe class JitInt8Gemm : IDisposable
{
    private readonly ExecutableMemory?[] _kernels;
    private readonly AlignedBuffer? _tileConfig;
    private readonly KernelInvoker? _invoker;
    private bool _disposed;

    /// <summary>Runs kernel number <paramref name="kernel"/> (AMX: 0 s8·s8, 1 u8·s8; VNNI: its row count) on the
    /// argument block at <paramref name="args"/> in place of the hardware (tests on machines without AMX).</summary>
    internal delegate void KernelInvoker(int kernel, byte[] code, nint args);

    public JitBackend Backend { get; }

    /// <summary>Test hook: kernels run by <paramref name="invoker"/> instead of the CPU, for any backend.</summary>
    internal JitInt8Gemm(JitBackend backend, KernelInvoker invoker) : this(backend) => _invoker = invoker;

    private JitInt8Gemm(JitBackend backend)
    {
        Backend = backend;
        if (backend == JitBackend.Amx)
        {
            _kernels = [new ExecutableMemory(Int8GemmKernels.EmitAmx(false)), new ExecutableMemory(Int8GemmKernels.EmitAmx(true))];
            // Tile configuration, palette 1: byte 0 palette, bytes 16+2t colsb of tile t, byte 48+t rows of tile t.
            _tileConfig = new AlignedBuffer(64);
            var cfg = _tileConfig.Span;
            cfg[0] = 1;
            for (int t = 0; t < 8; t++)
            {
                cfg[16 + 2 * t] = 64;
                cfg[48 + t] = 16;
            }
        }
        else
        {
            _kernels = new ExecutableMemory?[Int8GemmKernels.VnniMaxRows + 1];
            for (int r = 1; r <= Int8GemmKernels.VnniMaxRows; r++) _kernels[r] = new ExecutableMemory(Int8GemmKernels.EmitVnni(r));
        }
    }

    /// <summary>
    /// The best generated-code GEMM for this machine, or null when there is none (no AMX and no AVX512-VNNI, not x64
    /// Linux/Windows, <paramref name="allowGenerated"/> false, or QUANTSHARP_JIT=0). <paramref name="maxBackend"/>
    /// caps the choice (Avx512Vnni forces the vpdpbusd kernel on an AMX machine).
    /// </summary>
    public static JitInt8Gemm? TryCreate(bool allowGenerated = true, JitBackend maxBackend = JitBackend.Amx)
    {
        var best = CpuFeatures.Best(allowGenerated);
        if (best > maxBackend) best = maxBackend;
        if (best == JitBackend.None) return null;
        try
        {
            return new JitInt8Gemm(best);
        }
        catch (QuantSharpException)
        {
            return null;
        }
    }

    private static int RoundUp(int v, int m) => (v + m - 1) / m * m;

    /// <summary>Packs a k×n s8 matrix (row-major, leading dimension ldb) for this instance's kernels.</summary>
    public JitPackedB PackB(ReadOnlySpan<sbyte> b, int k, int n, int ldb)
    {
        if (k <= 0 || n <= 0) throw new QuantSharpException($"int8 GEMM pack: K={k} and N={n} must be positive");
        if (ldb < n || b.Length < (long)(k - 1) * ldb + n) throw new QuantSharpException($"int8 GEMM pack: B has {b.Length} elements, too few for {k}×{n} with ldb {ldb}");
        var sums = new int[n];
        for (int kk = 0; kk < k; kk++)
        {
            var row = b.Slice(kk * ldb, n);
            for (int j = 0; j < n; j++) sums[j] += row[j];
        }
        if (Backend == JitBackend.Amx)
        {
            int kSteps = RoundUp(k, 64) / 64, nPad = RoundUp(n, 32), nBlocks = nPad / 32;
            var buf = new AlignedBuffer((long)nBlocks * kSteps * 2048);
            var dst = buf.Pointer;
            // ((panel·kSteps + step)·2 + half)·1024 + r·64 + c·4 + i  ←  B[step·64 + 4r + i, panel·32 + half·16 + c]
            for (int kk = 0; kk < k; kk++)
            {
                int step = kk >> 6, r = (kk & 63) >> 2, i = kk & 3;
                var row = b.Slice(kk * ldb, n);
                for (int j = 0; j < n; j++)
                {
                    int panel = j >> 5, half = (j >> 4) & 1, c = j & 15;
                    dst[(((long)panel * kSteps + step) * 2 + half) * 1024 + r * 64 + c * 4 + i] = (byte)row[j];
                }
            }
            return new JitPackedB(Backend, k, n, buf, sums, kSteps, nBlocks, nPad);
        }
        else
        {
            int kSteps = RoundUp(k, 4) / 4, nPad = RoundUp(n, 64), nBlocks = nPad / 64;
            var buf = new AlignedBuffer((long)nBlocks * kSteps * 256);
            var dst = buf.Pointer;
            // (panel·kGroups + g)·256 + c·4 + i  ←  B[4g + i, panel·64 + c]
            for (int kk = 0; kk < k; kk++)
            {
                int g = kk >> 2, i = kk & 3;
                var row = b.Slice(kk * ldb, n);
                for (int j = 0; j < n; j++)
                    dst[((long)(j >> 6) * kSteps + g) * 256 + (j & 63) * 4 + i] = (byte)row[j];
            }
            return new JitPackedB(Backend, k, n, buf, sums, kSteps, nBlocks, nPad);
        }
    }

    /// <summary>C = (A − aZero)·(B − bZero) for an m×k s8 A.</summary>
    public void Gemm(int m, ReadOnlySpan<sbyte> a, int lda, ReadOnlySpan<int> aZeroPoints, JitPackedB b, ReadOnlySpan<int> bZeroPoints,
        Span<int> c, int ldc, int threads = 1) =>
        Run(m, MemoryMarshal.AsBytes(a), lda, false, aZeroPoints, b, bZeroPoints, c, ldc, threads);

    /// <summary>C = (A − aZero)·(B − bZero) for an m×k u8 A.</summary>
    public void Gemm(int m, ReadOnlySpan<byte> a, int lda, ReadOnlySpan<int> aZeroPoints, JitPackedB b, ReadOnlySpan<int> bZeroPoints,
        Span<int> c, int ldc, int threads = 1) =>
        Run(m, a, lda, true, aZeroPoints, b, bZeroPoints, c, ldc, threads);

    private void Run(int m, ReadOnlySpan<byte> a, int lda, bool unsignedA, ReadOnlySpan<int> aZero, JitPackedB b, ReadOnlySpan<int> bZero,
        Span<int> c, int ldc, int threads)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (b.Backend != Backend) throw new QuantSharpException($"int8 GEMM: B was packed for {b.Backend}, this kernel is {Backend}");
        int k = b.K, n = b.N;
        if (m < 0) throw new QuantSharpException($"int8 GEMM: M={m} is negative");
        if (m == 0) return;
        if (lda < k || a.Length < (long)(m - 1) * lda + k) throw new QuantSharpException($"int8 GEMM: A has {a.Length} elements, too few for {m}×{k} with lda {lda}");
        if (ldc < n || c.Length < (long)(m - 1) * ldc + n) throw new QuantSharpException($"int8 GEMM: C has {c.Length} elements, too few for {m}×{n} with ldc {ldc}");
        if (aZero.Length > 1 && aZero.Length != m) throw new QuantSharpException($"int8 GEMM: A has {aZero.Length} zero points, expected 1 or {m}");
        if (bZero.Length > 1 && bZero.Length != n) throw new QuantSharpException($"int8 GEMM: B has {bZero.Length} zero points, expected 1 or {n}");
        threads = Math.Clamp(threads, 1, b.NBlocks);

        bool direct = n == b.NPad && (Backend != JitBackend.Amx || m % Int8GemmKernels.AmxBlockM == 0);
        int mPad = Backend == JitBackend.Amx ? RoundUp(m, Int8GemmKernels.AmxBlockM) : m;
        int[]? scratch = direct ? null : new int[(long)mPad * b.NPad];
        int cStride = direct ? ldc : b.NPad;
        fixed (int* cDirect = c)
        fixed (int* cScratch = scratch)
        {
            int* cOut = direct ? cDirect : cScratch;
            if (Backend == JitBackend.Amx) RunAmx(m, a, lda, unsignedA, b, cOut, cStride, threads);
            else RunVnni(m, a, lda, unsignedA, b, cOut, cStride, threads);
        }
        if (scratch is not null)
            for (int i = 0; i < m; i++) scratch.AsSpan(i * b.NPad, n).CopyTo(c.Slice(i * ldc, n));
        if (!IsZero(aZero) || !IsZero(bZero)) ApplyZeroPoints(m, n, k, a, lda, unsignedA, aZero, b, bZero, c, ldc);
    }

    private static bool IsZero(ReadOnlySpan<int> zp)
    {
        foreach (int z in zp) if (z != 0) return false;
        return true;
    }

    /// <summary>Σ(a − za)(b − zb) = Σab − zb·Σa − za·Σb + K·za·zb, exact in wrapping int32.</summary>
    private static void ApplyZeroPoints(int m, int n, int k, ReadOnlySpan<byte> a, int lda, bool unsignedA, ReadOnlySpan<int> aZero,
        JitPackedB b, ReadOnlySpan<int> bZero, Span<int> c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            var row = a.Slice(i * lda, k);
            int rowSum = 0;
            if (unsignedA) foreach (byte v in row) rowSum += v;
            else foreach (byte v in row) rowSum += (sbyte)v;
            int za = aZero.Length == 0 ? 0 : aZero.Length == 1 ? aZero[0] : aZero[i];
            var ci = c.Slice(i * ldc, n);
            for (int j = 0; j < n; j++)
            {
                int zb = bZero.Length == 0 ? 0 : bZero.Length == 1 ? bZero[0] : bZero[j];
                ci[j] = unchecked(ci[j] - zb * rowSum - za * b.ColumnSums[j] + k * za * zb);
            }
        }
    }

    /// <summary>Rows per call chosen so the packed A of one call stays near 512 KiB (L2-resident while B panels stream).</summary>
    private static int RowsPerChunk(int kPadded, int multiple) => Math.Max(multiple, 512 * 1024 / Math.Max(kPadded, 1) / multiple * multiple);

    private void RunAmx(int m, ReadOnlySpan<byte> a, int lda, bool unsignedA, JitPackedB b, int* c, int ldc, int threads)
    {
        int kSteps = b.KSteps, mBlocks = RoundUp(m, 32) / 32;
        using var packed = new AlignedBuffer((long)mBlocks * kSteps * 2048);
        byte* pa = packed.Pointer;
        // ((block·kSteps + step)·2 + half)·1024 + r·64 + j  ←  A[block·32 + half·16 + r, step·64 + j]
        for (int i = 0; i < m; i++)
        {
            int block = i >> 5, half = (i >> 4) & 1, r = i & 15;
            var row = a.Slice(i * lda, b.K);
            for (int step = 0; step < kSteps; step++)
            {
                int len = Math.Min(64, b.K - step * 64);
                row.Slice(step * 64, len).CopyTo(new Span<byte>(pa + (((long)block * kSteps + step) * 2 + half) * 1024 + r * 64, len));
            }
        }
        var kernel = _kernels[unsignedA ? 1 : 0]!.Address;
        int chunkBlocks = RowsPerChunk(kSteps * 64, 32) / 32;
        nint cfg = (nint)_tileConfig!.Pointer;
        nint aBase = (nint)pa, bBase = (nint)b.Data.Pointer, cBase = (nint)c;
        long bPanelBytes = (long)kSteps * 2048;
        ForThreads(threads, b.NBlocks, (p0, p1) =>
        {
            if (_invoker is null) CpuFeatures.EnsureAmxPermission();
            var fn = (delegate* unmanaged<GemmKernelArgs*, void>)kernel;
            for (int q = 0; q < mBlocks; q += chunkBlocks)
            {
                var args = new GemmKernelArgs
                {
                    A = aBase + (nint)((long)q * kSteps * 2048),
                    B = bBase + (nint)(p0 * bPanelBytes),
                    C = cBase + (nint)(((long)q * 32 * ldc + p0 * 32) * 4),
                    MBlocks = Math.Min(chunkBlocks, mBlocks - q),
                    NBlocks = p1 - p0,
                    KSteps = kSteps,
                    Ldc = (long)ldc * 4,
                    Aux = cfg,
                };
                if (_invoker is null) fn(&args);
                else _invoker(unsignedA ? 1 : 0, Int8GemmKernels.EmitAmx(unsignedA), (nint)(&args));
            }
        });
    }

    private void RunVnni(int m, ReadOnlySpan<byte> a, int lda, bool unsignedA, JitPackedB b, int* c, int ldc, int threads)
    {
        const int mr = Int8GemmKernels.VnniMaxRows;
        int kGroups = b.KSteps, full = m / mr, tail = m % mr;
        using var packed = new AlignedBuffer((long)RoundUp(m, mr) * kGroups * 4);
        byte* pa = packed.Pointer;
        // Block q of `rows` rows starts at q·mr·kGroups·4; inside it (g·rows + r)·4 + i ← A[q·mr + r, 4g + i] (s8 ⊕ 0x80 → u8).
        byte flip = unsignedA ? (byte)0 : (byte)0x80;
        for (int i = 0; i < m; i++)
        {
            int q = i / mr, r = i % mr, rows = q < full ? mr : tail;
            byte* blockBase = pa + (long)q * mr * kGroups * 4;
            var row = a.Slice(i * lda, b.K);
            for (int kk = 0; kk < row.Length; kk++)
                blockBase[((kk >> 2) * rows + r) * 4 + (kk & 3)] = (byte)(row[kk] ^ flip);
            if (!unsignedA)
                for (int kk = row.Length; kk < kGroups * 4; kk++) blockBase[((kk >> 2) * rows + r) * 4 + (kk & 3)] = 0x80;
        }
        fixed (int* biasPtr = unsignedA ? b.ZeroBias : b.SignedBias)
        {
            nint aBase = (nint)pa, bBase = (nint)b.Data.Pointer, cBase = (nint)c, bias = (nint)biasPtr;
            var fullKernel = _kernels[mr]!.Address;
            var tailKernel = tail > 0 ? _kernels[tail]!.Address : 0;
            long bPanelBytes = (long)kGroups * 256;
            int chunkBlocks = Math.Max(1, RowsPerChunk(kGroups * 4, mr) / mr);
            ForThreads(threads, b.NBlocks, (p0, p1) =>
            {
                var args = new GemmKernelArgs
                {
                    B = bBase + (nint)(p0 * bPanelBytes),
                    NBlocks = p1 - p0,
                    KSteps = kGroups,
                    Ldc = (long)ldc * 4,
                    Aux = bias + p0 * 64 * 4,
                };
                for (int q = 0; q < full; q += chunkBlocks)
                {
                    args.A = aBase + (nint)((long)q * mr * kGroups * 4);
                    args.C = cBase + (nint)(((long)q * mr * ldc + p0 * 64) * 4);
                    args.MBlocks = Math.Min(chunkBlocks, full - q);
                    ((delegate* unmanaged<GemmKernelArgs*, void>)fullKernel)(&args);
                }
                if (tail > 0)
                {
                    args.A = aBase + (nint)((long)full * mr * kGroups * 4);
                    args.C = cBase + (nint)(((long)full * mr * ldc + p0 * 64) * 4);
                    args.MBlocks = 1;
                    ((delegate* unmanaged<GemmKernelArgs*, void>)tailKernel)(&args);
                }
            });
        }
    }

    /// <summary>Splits [0, blocks) into <paramref name="threads"/> contiguous ranges of output column panels; each output
    /// element is computed by one thread in the same order, so results do not depend on the thread count.</summary>
    private static void ForThreads(int threads, int blocks, Action<int, int> body)
    {
        if (threads <= 1)
        {
            body(0, blocks);
            return;
        }
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int p0 = (int)((long)blocks * t / threads), p1 = (int)((long)blocks * (t + 1) / threads);
            if (p1 > p0) body(p0, p1);
        });
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var k in _kernels) k?.Dispose();
        _tileConfig?.Dispose();
    }
}
