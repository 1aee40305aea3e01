using System.Buffers;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>
/// Signed 8-bit right operand B (K×N) packed once, for constant weights, into the "VNNI" layout the dot-product
/// micro-kernels read: column blocks of <see cref="BlockColumns"/> = 16 columns; inside a block, for each group of
/// 4 consecutive k, the 16 columns' 4 bytes each (64 bytes = one zmm, two ymm, four xmm; also one row of an AMX
/// B tile). Element (k, n) is at Data[((n/16)·KGroups + k/4)·64 + (n%16)·4 + k%4]. K is padded with zeros to a
/// multiple of <see cref="KAlignment"/> (≥ 4) and N to a multiple of 16, so kernels never read past the panel.
/// Column sums of B and the zero points are kept for the zero-point correction.
/// </summary>
public sealed unsafe class PackedInt8Weights
{
    /// <summary>Columns per packed block (one 512-bit vector of int32 accumulators).</summary>
    public const int BlockColumns = 16;

    private PackedInt8Weights(byte[] data, int k, int n, int kPadded, int[] columnSums, int[] zeroPoints)
    {
        Data = data;
        Depth = k;
        Columns = n;
        PaddedDepth = kPadded;
        ColumnSums = columnSums;
        ZeroPoints = zeroPoints;
    }

    /// <summary>Packed bytes (pinned, so kernels may keep raw pointers); signed values stored as bytes.</summary>
    public byte[] Data { get; }

    /// <summary>K, the shared dimension.</summary>
    public int Depth { get; }

    /// <summary>N, the number of output columns.</summary>
    public int Columns { get; }

    /// <summary>K rounded up to the packing alignment.</summary>
    public int PaddedDepth { get; }

    /// <summary>Number of 4-deep k groups per column block (PaddedDepth / 4).</summary>
    public int KGroups => PaddedDepth / 4;

    /// <summary>Number of 16-column blocks.</summary>
    public int ColumnBlocks => (Columns + BlockColumns - 1) / BlockColumns;

    /// <summary>Bytes from one column block to the next (KGroups · 64).</summary>
    public int BlockStride => PaddedDepth * BlockColumns;

    /// <summary>Σ_k B[k, n] for each column.</summary>
    public int[] ColumnSums { get; }

    /// <summary>Zero point of each column of B (length N; a per-tensor zero point is repeated).</summary>
    public int[] ZeroPoints { get; }

    /// <summary>Address of the packed data (the array is pinned).</summary>
    public byte* Pointer => (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref Data[0]);

    /// <summary>
    /// Packs B: element (k, n) = transposed ? b[n·ldb + k] : b[k·ldb + n]. Zero points: empty (0), one (per tensor)
    /// or N (per column). <paramref name="kAlignment"/> must be a positive multiple of 4 (64 for AMX tiles).
    /// </summary>
    public static PackedInt8Weights Pack(int k, int n, ReadOnlySpan<sbyte> b, int ldb, bool transposed,
        ReadOnlySpan<int> zeroPoints = default, int kAlignment = 4)
    {
        if (k < 0 || n < 0) throw new QuantSharpException($"int8 GEMM: negative B shape {k}x{n}");
        if (kAlignment <= 0 || kAlignment % 4 != 0) throw new QuantSharpException($"int8 GEMM: K alignment {kAlignment} is not a positive multiple of 4");
        int rows = transposed ? n : k, cols = transposed ? k : n;
        if (rows > 0 && cols > 0 && (ldb < cols || (long)(rows - 1) * ldb + cols > b.Length))
            throw new QuantSharpException($"int8 GEMM: B buffer of {b.Length} elements too small for {rows}x{cols} with leading dimension {ldb}");
        if (zeroPoints.Length > 1 && zeroPoints.Length != n)
            throw new QuantSharpException($"int8 GEMM: B has {zeroPoints.Length} zero points, expected 1 or {n}");
        int kp = (k + kAlignment - 1) / kAlignment * kAlignment;
        int blocks = (n + BlockColumns - 1) / BlockColumns;
        // At least one byte so Pointer is always valid.
        var data = GC.AllocateArray<byte>(Math.Max(1, checked(blocks * kp * BlockColumns)), pinned: true);
        var sums = new int[n];
        var zps = new int[n];
        for (int j = 0; j < n; j++)
        {
            zps[j] = zeroPoints.Length == 0 ? 0 : zeroPoints.Length == 1 ? zeroPoints[0] : zeroPoints[j];
            int blockBase = j / BlockColumns * kp * BlockColumns + j % BlockColumns * 4;
            int s = 0;
            for (int p = 0; p < k; p++)
            {
                sbyte v = transposed ? b[j * ldb + p] : b[p * ldb + j];
                s += v;
                data[blockBase + (p >> 2) * 64 + (p & 3)] = (byte)v;
            }
            sums[j] = s;
        }
        return new PackedInt8Weights(data, k, n, kp, sums, zps);
    }
}

/// <summary>
/// A micro-kernel family for <see cref="Int8Gemm"/>. It computes raw unsigned×signed dot products
/// C[i, j] = Σ_p A[i, p] · B[p, j] (int32, wrapping) where A is u8 row-major with K padded by zeros to
/// b.PaddedDepth, and B is a <see cref="PackedInt8Weights"/>. Zero points and signedness of A are handled by the
/// driver (row/column sums), so every implementation — managed SIMD or generated code (AMX) — computes the same
/// integer function and must match <see cref="ScalarInt8Kernel"/> bit for bit.
/// </summary>
public unsafe interface IInt8GemmKernel
{
    /// <summary>Short name used in reports and for the QUANTSHARP_INT8_KERNEL override.</summary>
    string Name { get; }

    /// <summary>Whether the instructions this kernel needs are available now.</summary>
    bool IsSupported { get; }

    /// <summary>
    /// Rows [0, rows) of A (pointer to row 0, leading dimension lda ≥ b.PaddedDepth, 4-byte groups readable up to
    /// b.PaddedDepth) times column blocks [blockStart, blockEnd) of B, written to C (pointer to element (0, 0) of
    /// the whole output, leading dimension ldc). Only columns below b.Columns are written.
    /// </summary>
    void Multiply(byte* a, int lda, int rows, PackedInt8Weights b, int blockStart, int blockEnd, int* c, int ldc);
}

/// <summary>
/// Int8 GEMM driver: C[m, n] = Σ_k (A[m, k] − za) · (B[k, n] − zb[n]) in int32 for u8 or s8 A and packed s8 B.
/// <para>
/// A is copied into a zero-padded u8 panel (s8 values shifted by +128, the zero point with them, because the
/// dot-product instructions take unsigned × signed). With A' and za' the shifted operand and zero point,
/// Σ(A'−za')(B−zb) = ΣA'B − zb·ΣA' − za'·ΣB + K·za'·zb; the raw ΣA'B comes from the kernel, the correction from
/// row sums of A' and column sums of B, applied once per output element. All arithmetic wraps in int32, like the
/// reference, so the result equals it exactly.
/// </para>
/// <para>
/// Work is split over tiles of <see cref="TileRows"/> rows × <see cref="TileBlocks"/> column blocks; each output
/// element is produced by one tile with the same K order, so results do not depend on the thread count or on the
/// order the tiles run in. When B is the larger operand the tiles run column-major (every row tile of one column
/// tile before the next), so each part of B comes from DRAM once and then stays in L2/L3 while the smaller A panel
/// is re-read; otherwise row-major (see <see cref="Int8GemmTiling"/>).
/// </para>
/// </summary>
public static unsafe class Int8Gemm
{
    /// <summary>Rows of A per parallel tile (its A panel, K bytes a row, stays in L2).</summary>
    public const int TileRows = 96;

    /// <summary>Column blocks per parallel tile.</summary>
    public const int TileBlocks = 8;

    /// <summary>Multiply-adds a thread must get before the work is split (about 2 µs of VNNI work, the order of a pool wake-up).</summary>
    public const long MinMacsPerChunk = 1L << 19;

    /// <summary>Environment variable naming the kernel to use (e.g. "Vector128"), for tests and comparisons.</summary>
    public const string KernelEnvironmentVariable = "QUANTSHARP_INT8_KERNEL";

    private static readonly object Gate = new();
    private static List<IInt8GemmKernel> _kernels =
        [Jit.GeneratedInt8Kernel.Instance, new AvxVnniInt8Kernel(), new Avx512BWInt8Kernel(), new Avx2Int8Kernel(), new ArmDotProductInt8Kernel(), new Vector128Int8Kernel(), new ScalarInt8Kernel()];
    private static IInt8GemmKernel? _default;

    /// <summary>Registered kernels in priority order (fastest first); the scalar one is always last and supported.</summary>
    public static IReadOnlyList<IInt8GemmKernel> Kernels
    {
        get { lock (Gate) return _kernels.ToArray(); }
    }

    /// <summary>Kernels whose instructions are available on this machine, in priority order.</summary>
    public static IReadOnlyList<IInt8GemmKernel> SupportedKernels => Kernels.Where(k => k.IsSupported).ToArray();

    /// <summary>
    /// Adds a kernel (e.g. generated AMX code) ahead of the managed ones, so it becomes the default when supported.
    /// </summary>
    public static void Register(IInt8GemmKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        lock (Gate)
        {
            _kernels = [kernel, .. _kernels.Where(k => k.Name != kernel.Name)];
            _default = null;
        }
    }

    /// <summary>
    /// The kernel used when none is passed: the one named by <see cref="KernelEnvironmentVariable"/> if set (an
    /// unknown or unsupported name is an error), else the first supported kernel in priority order.
    /// </summary>
    public static IInt8GemmKernel Default
    {
        get
        {
            var d = _default;
            if (d != null) return d;
            var env = Environment.GetEnvironmentVariable(KernelEnvironmentVariable);
            d = string.IsNullOrEmpty(env) ? SupportedKernels[0] : Find(env);
            _default = d;
            return d;
        }
    }

    /// <summary>The kernel with this name (case-insensitive); an error when unknown or not supported here.</summary>
    public static IInt8GemmKernel Find(string name)
    {
        var k = Kernels.FirstOrDefault(x => string.Equals(x.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new QuantSharpException($"int8 GEMM: unknown kernel '{name}' (known: {string.Join(", ", Kernels.Select(x => x.Name))})");
        if (!k.IsSupported) throw new QuantSharpException($"int8 GEMM: kernel '{name}' is not supported on this machine");
        return k;
    }

    /// <summary>C (m×N, leading dimension ldc) = (A − aZeroPoint) · (B − zb) for a u8 A (m×K, leading dimension lda).</summary>
    public static void Multiply(int m, ReadOnlySpan<byte> a, int lda, int aZeroPoint, PackedInt8Weights b,
        Span<int> c, int ldc, int threads = 1, IInt8GemmKernel? kernel = null) =>
        Multiply(m, a, lda, aZeroPoint, b, c, ldc, threads, kernel, null);

    /// <summary>C (m×N, leading dimension ldc) = (A − aZeroPoint) · (B − zb) for an s8 A (m×K, leading dimension lda).</summary>
    public static void Multiply(int m, ReadOnlySpan<sbyte> a, int lda, int aZeroPoint, PackedInt8Weights b,
        Span<int> c, int ldc, int threads = 1, IInt8GemmKernel? kernel = null) =>
        Multiply(m, a, lda, aZeroPoint, b, c, ldc, threads, kernel, null);

    /// <summary>The u8 product with an explicit tile plan (null: <see cref="Int8GemmTiling.For"/>); same result for every plan.</summary>
    internal static void Multiply(int m, ReadOnlySpan<byte> a, int lda, int aZeroPoint, PackedInt8Weights b,
        Span<int> c, int ldc, int threads, IInt8GemmKernel? kernel, Int8GemmTiling? tiling)
    {
        fixed (byte* pa = a) Run(m, pa, a.Length, lda, aZeroPoint, false, b, c, ldc, threads, kernel, tiling);
    }

    /// <summary>The s8 product with an explicit tile plan (null: <see cref="Int8GemmTiling.For"/>); same result for every plan.</summary>
    internal static void Multiply(int m, ReadOnlySpan<sbyte> a, int lda, int aZeroPoint, PackedInt8Weights b,
        Span<int> c, int ldc, int threads, IInt8GemmKernel? kernel, Int8GemmTiling? tiling)
    {
        fixed (sbyte* pa = a) Run(m, (byte*)pa, a.Length, lda, aZeroPoint, true, b, c, ldc, threads, kernel, tiling);
    }

    /// <summary>
    /// The u8 product handed tile by tile to <paramref name="sink"/> instead of being stored: each tile is computed
    /// into a per-thread buffer (at most <see cref="Int8GemmTiling.TileRows"/> × 16·TileBlocks int32), corrected for the
    /// zero points and passed on while it is still in cache, so no m×N int32 matrix is written and read again.
    /// </summary>
    internal static void Multiply(int m, ReadOnlySpan<byte> a, int lda, int aZeroPoint, PackedInt8Weights b,
        IInt8GemmTileSink sink, int threads, IInt8GemmKernel? kernel = null, Int8GemmTiling? tiling = null)
    {
        ArgumentNullException.ThrowIfNull(sink);
        fixed (byte* pa = a) Run(m, pa, a.Length, lda, aZeroPoint, false, b, default, 0, threads, kernel, tiling, sink);
    }

    /// <summary>The s8 product handed tile by tile to <paramref name="sink"/> (see the u8 overload).</summary>
    internal static void Multiply(int m, ReadOnlySpan<sbyte> a, int lda, int aZeroPoint, PackedInt8Weights b,
        IInt8GemmTileSink sink, int threads, IInt8GemmKernel? kernel = null, Int8GemmTiling? tiling = null)
    {
        ArgumentNullException.ThrowIfNull(sink);
        fixed (sbyte* pa = a) Run(m, (byte*)pa, a.Length, lda, aZeroPoint, true, b, default, 0, threads, kernel, tiling, sink);
    }

    private static void Run(int m, byte* a, int aLength, int lda, int za, bool signedA, PackedInt8Weights b,
        Span<int> c, int ldc, int threads, IInt8GemmKernel? kernel, Int8GemmTiling? tiling, IInt8GemmTileSink? sink = null)
    {
        int k = b.Depth, n = b.Columns;
        if (m < 0) throw new QuantSharpException($"int8 GEMM: negative row count {m}");
        if (m == 0 || n == 0) return;
        if (k > 0 && (lda < k || (long)(m - 1) * lda + k > aLength))
            throw new QuantSharpException($"int8 GEMM: A buffer of {aLength} elements too small for {m}x{k} with leading dimension {lda}");
        if (sink is null && (ldc < n || (long)(m - 1) * ldc + n > c.Length))
            throw new QuantSharpException($"int8 GEMM: C buffer of {c.Length} elements too small for {m}x{n} with leading dimension {ldc}");
        kernel ??= Default;

        int kp = b.PaddedDepth;
        // A u8 operand whose rows already hold K = PaddedDepth bytes is read in place when B has no zero points
        // (the row sums of A only enter the correction multiplied by zb): no panel copy, same kernel, same sums.
        bool direct = !signedA && k == kp && k >= 4 && lda >= kp && (long)(m - 1) * lda + kp <= aLength && !AnyNonZero(b.ZeroPoints);
        int stride = direct ? lda : Math.Max(kp, 4);
        byte[] panel = ArrayPool<byte>.Shared.Rent(direct ? 1 : checked(m * stride));
        int[] rowSums = ArrayPool<int>.Shared.Rent(m);
        int shift = signedA ? 128 : 0;
        int zaShifted = za + shift;
        try
        {
            fixed (byte* pp = panel) fixed (int* pc = c) fixed (int* rs = rowSums)
            {
                byte* ppp = direct ? a : pp;
                int* ppc = pc, prs = rs;
                if (direct) new Span<int>(prs, m).Clear();
                // A' = A (+128 for s8, as bytes: A xor 0x80), zero padding past K contributes nothing.
                for (int i = 0; i < (direct ? 0 : m); i++)
                {
                    byte* src = a + (long)i * lda;
                    byte* dst = ppp + (long)i * stride;
                    int s = 0, p = 0;
                    if (Avx2.IsSupported)
                    {
                        // 32 bytes at a time: flip the sign bit for s8, store, and add the bytes with SAD against
                        // zero (four 64-bit partial sums, exact).
                        var flip = Vector256.Create((byte)(signedA ? 0x80 : 0));
                        var sums = Vector256<ulong>.Zero;
                        for (; p <= k - 32; p += 32)
                        {
                            var v = Avx.LoadVector256(src + p) ^ flip;
                            Avx.Store(dst + p, v);
                            sums += Avx2.SumAbsoluteDifferences(v, Vector256<byte>.Zero).AsUInt64();
                        }
                        s = unchecked((int)(sums.GetElement(0) + sums.GetElement(1) + sums.GetElement(2) + sums.GetElement(3)));
                    }
                    for (; p < k; p++)
                    {
                        byte v = (byte)(src[p] ^ (signedA ? 0x80 : 0));
                        dst[p] = v;
                        s += v;
                    }
                    for (; p < stride; p++) dst[p] = 0;
                    prs[i] = s;
                }

                var plan = tiling ?? Int8GemmTiling.For(m, b);
                int tileRows = plan.TileRows;
                int rowTiles = (m + tileRows - 1) / tileRows;
                int blocks = b.ColumnBlocks;
                // GEMV-like shapes: split columns finer so both cores get work, unless the product is too small to
                // be split at all (then whole tiles mean fewer kernel calls; the tiling never changes the sums).
                bool splits = threads > 1 && (long)m * blocks * PackedInt8Weights.BlockColumns * Math.Max(kp, 4) >= 2 * MinMacsPerChunk;
                int tileBlocks = rowTiles == 1 && splits ? Math.Max(1, Math.Min(plan.TileBlocks, (blocks + 7) / 8)) : plan.TileBlocks;
                int colTiles = (blocks + tileBlocks - 1) / tileBlocks;
                bool columnsOuter = plan.ColumnsOuter;
                var kern = kernel;
                // Tiles per chunk so that a chunk has at least MinMacsPerChunk multiply-adds: waking a pool thread
                // costs microseconds, more than a small GEMM (a 16×64×64 product takes about 1 µs on one core), so
                // small products stay on the calling thread. Only the tile-to-thread assignment changes.
                long macsPerTile = (long)Math.Min(tileRows, m) * tileBlocks * PackedInt8Weights.BlockColumns * Math.Max(kp, 4);
                int minChunk = (int)Math.Min(int.MaxValue, Math.Max(1, MinMacsPerChunk / macsPerTile));
                Parallelism.For(threads, rowTiles * colTiles, minChunk, (start, end) =>
                {
                    // With a sink: one tile buffer per worker, ldt = the tile's width (columns j0.. at offset 0).
                    int ldt = tileBlocks * PackedInt8Weights.BlockColumns;
                    int[]? buffer = sink is null ? null : ArrayPool<int>.Shared.Rent(Math.Min(tileRows, m) * ldt);
                    try
                    {
                        fixed (int* pBuffer = buffer)
                        {
                            for (int t = start; t < end; t++)
                            {
                                int rt = columnsOuter ? t % rowTiles : t / colTiles, ct = columnsOuter ? t / rowTiles : t % colTiles;
                                int r0 = rt * tileRows, r1 = Math.Min(m, r0 + tileRows);
                                int b0 = ct * tileBlocks, b1 = Math.Min(blocks, b0 + tileBlocks);
                                int j0 = b0 * PackedInt8Weights.BlockColumns, j1 = Math.Min(n, b1 * PackedInt8Weights.BlockColumns);
                                // The kernel and Correct address columns absolutely (c + j): shift the buffer's base back
                                // by j0 so column j0 lands at its start.
                                int* cTile = sink is null ? ppc + (long)r0 * ldc : pBuffer - j0;
                                int ld = sink is null ? ldc : ldt;
                                kern.Multiply(ppp + (long)r0 * stride, stride, r1 - r0, b, b0, b1, cTile, ld);
                                Correct(cTile, ld, r1 - r0, prs + r0, b, j0, j1, zaShifted, k);
                                sink?.Consume(pBuffer, ldt, r0, r1 - r0, j0, j1 - j0);
                            }
                        }
                    }
                    finally
                    {
                        if (buffer is not null) ArrayPool<int>.Shared.Return(buffer);
                    }
                });
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(panel);
            ArrayPool<int>.Shared.Return(rowSums);
        }
    }

    private static bool AnyNonZero(int[] v)
    {
        foreach (int x in v) if (x != 0) return true;
        return false;
    }

    /// <summary>C[i, j] −= zb[j]·ΣA'[i] + za'·ΣB[j] − K·za'·zb[j], wrapping.</summary>
    private static void Correct(int* c, int ldc, int rows, int* rowSums, PackedInt8Weights b, int j0, int j1, int za, int k)
    {
        var zb = b.ZeroPoints;
        var cs = b.ColumnSums;
        bool anyZb = false;
        for (int j = j0; j < j1; j++) anyZb |= zb[j] != 0;
        if (!anyZb && za == 0) return;
        Span<int> colTerm = stackalloc int[j1 - j0];
        for (int j = j0; j < j1; j++) colTerm[j - j0] = unchecked(za * cs[j] - k * za * zb[j]);
        fixed (int* pzb = zb) fixed (int* pct = colTerm)
        {
            for (int i = 0; i < rows; i++)
            {
                int* row = c + (long)i * ldc;
                int ra = rowSums[i];
                int j = j0;
                if (Vector256.IsHardwareAccelerated)
                {
                    // Same wrapping int32 arithmetic, 8 columns at a time (vpmulld / vpsubd wrap like unchecked C#).
                    var vra = Vector256.Create(ra);
                    for (; j <= j1 - 8; j += 8)
                    {
                        var v = Vector256.Load(row + j) - Vector256.Load(pzb + j) * vra - Vector256.Load(pct + (j - j0));
                        v.Store(row + j);
                    }
                }
                for (; j < j1; j++) row[j] = unchecked(row[j] - pzb[j] * ra - pct[j - j0]);
            }
        }
    }
}

/// <summary>
/// Receives the finished tiles of an <see cref="Int8Gemm"/> product (zero-point corrected int32: element (row0 + i,
/// col0 + j) at tile[i·ldt + j]) on the thread that computed them, while they are still in cache — e.g. to requantize
/// them into an operator's output. The tiles of one product do not overlap and cover C exactly once; the buffer is
/// reused for the next tile once Consume returns, and Consume may overwrite it (e.g. requantize in place).
/// </summary>
internal unsafe interface IInt8GemmTileSink
{
    void Consume(int* tile, int ldt, int row0, int rows, int col0, int cols);
}

/// <summary>
/// How <see cref="Int8Gemm"/> cuts C into parallel tiles and in which order one thread walks them. Every plan gives
/// the same result bit for bit (each output element comes from one kernel call over the whole K).
/// </summary>
/// <param name="TileRows">Rows of A per tile.</param>
/// <param name="TileBlocks">16-column blocks of B per tile (fewer when there is a single row tile, so both cores get
/// work on GEMV-like shapes).</param>
/// <param name="ColumnsOuter">True: all row tiles of a column tile run before the next column tile (B read once from
/// memory, A re-read per column tile); false: all column tiles of a row tile first (A read once, B re-read per row
/// tile).</param>
internal readonly record struct Int8GemmTiling(int TileRows, int TileBlocks, bool ColumnsOuter)
{
    /// <summary>The session-2 plan: 96-row × 8-block tiles, row-major (kept for before/after benchmarks and tests).</summary>
    public static Int8GemmTiling RowMajor => new(Int8Gemm.TileRows, Int8Gemm.TileBlocks, false);

    /// <summary>
    /// The default plan: 96 × 8 tiles, column-major when the packed B is larger than the A panel (m·K bytes), so the
    /// operand that is re-read is the one that fits in cache. Row-major re-reads B once per 96 rows: with a 16 MiB B
    /// (K = N = 4096) and m ≥ 96 that is a DRAM stream per row tile, which is what held 96–256-row products to
    /// 180–380 GOPS.
    /// </summary>
    public static Int8GemmTiling For(int m, PackedInt8Weights b)
    {
        long bBytes = (long)b.ColumnBlocks * b.BlockStride, aBytes = (long)m * b.PaddedDepth;
        return new(Int8Gemm.TileRows, Int8Gemm.TileBlocks, bBytes > aBytes);
    }
}
