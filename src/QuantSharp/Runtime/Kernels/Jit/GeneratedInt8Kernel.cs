using System.Runtime.InteropServices;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Runtime.Kernels.Jit;

/// <summary>
/// Arguments of the engine micro-kernels (rdi points here, System V). Offsets are fixed in the code: A 0, Lda 8,
/// B 16, BlockStride 24, C 32, Ldc 40 (bytes), KGroups 48, MBlocks 56, ARowStep 64 (bytes from one row block of A to
/// the next), CRowStep 72 (the same for C), Mask 80 (16-bit store mask of the last 16-column block); AMX only:
/// CHalfStep 88 (bytes of 16 rows of C), TileConfig 96 (address of the 64-byte tile configuration); VNNI with
/// prefetch: Prefetch 104 (next line to prefetch; the kernel advances it), PrefetchStep 112 (see
/// <see cref="EngineKernelEmitter.Emit"/>).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct EngineKernelArgs
{
    public nint A;
    public long Lda;
    public nint B;
    public long BlockStride;
    public nint C;
    public long Ldc;
    public long KGroups;
    public long MBlocks;
    public long ARowStep;
    public long CRowStep;
    public long Mask;
    public long CHalfStep;
    public nint TileConfig;
    public nint Prefetch;
    public long PrefetchStep;
}

/// <summary>
/// Machine code of the 512-bit vpdpbusd micro-kernels that read the engine's own operands directly: A as the
/// driver's zero-padded u8 panel (row-major, leading dimension lda) and B as <see cref="PackedInt8Weights"/>
/// (16-column blocks, 64 bytes per 4-deep k group), so nothing is repacked per call.
/// </summary>
internal static class EngineKernelEmitter
{
    /// <summary>Rows per register block: 6 rows × 4 column blocks = 24 accumulators (zmm0–23), 4 B vectors
    /// (zmm24–27) and 4 broadcast registers (zmm28–31) use all 32 zmm registers.</summary>
    public const int MaxRows = 6;

    /// <summary>Column blocks (of 16 int32) per register block.</summary>
    public const int MaxBlocks = 4;

    /// <summary>Lines prefetched per k group by the prefetching variants (two measured no better at M = 16 and 2–5 %
    /// slower with B in cache).</summary>
    public const int PrefetchLines = 1;

    /// <summary>
    /// Kernel for <paramref name="rows"/> rows × <paramref name="blocks"/> column blocks, looping over MBlocks row
    /// blocks (A and C advance by ARowStep / CRowStep). Per k group g: B vectors from B + c·BlockStride + 64g,
    /// A dwords broadcast from row r at A + r·lda + 4g; acc[r][c] += Σ₄ u8(A)·s8(B) (vpdpbusd, wrapping int32).
    /// Rows 0–2 are addressed from rbx with index lda·{1,2}, rows 3–5 from r12 = rbx + 3·lda, because x86 scales
    /// stop at 8 and lda is a run-time value. The last block's store uses opmask k1 (Mask) so ragged N never writes
    /// past the output's last column.
    /// With <paramref name="prefetch"/>, every k group also issues prefetcht1 [p] (p += 64 per line), where p starts each row
    /// block at Prefetch and Prefetch += PrefetchStep after it (written back to the argument block): the driver points
    /// it at the B bytes the next column group will read, so their DRAM fetch overlaps this group's arithmetic
    /// instead of stalling the next group's first row block.
    /// </summary>
    public static byte[] Emit(int rows, int blocks, bool prefetch = true)
    {
        if (rows is < 1 or > MaxRows) throw new QuantSharpException($"engine VNNI kernel: {rows} rows is outside 1–{MaxRows}");
        if (blocks is < 1 or > MaxBlocks) throw new QuantSharpException($"engine VNNI kernel: {blocks} blocks is outside 1–{MaxBlocks}");
        var a = new X64Assembler();
        Gp[] saved = [Gp.Rbx, Gp.Rbp, Gp.R12, Gp.R13, Gp.R14, Gp.R15];
        foreach (var r in saved) a.Push(r);
        a.Mov(Gp.R8, Mem.At(Gp.Rdi, 0));       // A (row 0 of the current row block)
        a.Mov(Gp.R9, Mem.At(Gp.Rdi, 8));       // lda
        a.Mov(Gp.R10, Mem.At(Gp.Rdi, 16));     // B (first block of this column group)
        a.Mov(Gp.R11, Mem.At(Gp.Rdi, 24));     // bytes between column blocks
        a.Mov(Gp.Rdx, Mem.At(Gp.Rdi, 32));     // C
        a.Mov(Gp.Rcx, Mem.At(Gp.Rdi, 40));     // ldc in bytes
        a.Mov(Gp.R13, Mem.At(Gp.Rdi, 56));     // row blocks
        a.Mov(Gp.Rax, Mem.At(Gp.Rdi, 80));
        a.KmovwFromGp(1, Gp.Rax);
        a.Lea(Gp.R14, Mem.At(Gp.R9, Gp.R9, 2));   // 3·lda
        a.Lea(Gp.R15, Mem.At(Gp.R11, Gp.R11, 2)); // 3·block stride
        var li = new Label();
        var lk = new Label();
        a.Bind(li);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < blocks; c++)
                a.Vpxord(Acc(r, c), Acc(r, c), Acc(r, c));
        a.Mov(Gp.Rbx, Gp.R8);
        if (rows > 3) a.Lea(Gp.R12, Mem.At(Gp.R8, Gp.R14, 1));
        a.Mov(Gp.Rsi, Gp.R10);
        a.Mov(Gp.Rbp, Mem.At(Gp.Rdi, 48));    // k groups
        if (prefetch) a.Mov(Gp.Rax, Mem.At(Gp.Rdi, 104));
        a.Bind(lk);
        for (int c = 0; c < blocks; c++)
            a.Vmovdqu32(24 + c, c switch
            {
                0 => Mem.At(Gp.Rsi),
                1 => Mem.At(Gp.Rsi, Gp.R11, 1),
                2 => Mem.At(Gp.Rsi, Gp.R11, 2),
                _ => Mem.At(Gp.Rsi, Gp.R15, 1),
            });
        for (int r = 0; r < rows; r++)
        {
            int bcast = 28 + (r & 3);
            a.Vpbroadcastd(bcast, r switch
            {
                0 => Mem.At(Gp.Rbx),
                1 => Mem.At(Gp.Rbx, Gp.R9, 1),
                2 => Mem.At(Gp.Rbx, Gp.R9, 2),
                3 => Mem.At(Gp.R12),
                4 => Mem.At(Gp.R12, Gp.R9, 1),
                _ => Mem.At(Gp.R12, Gp.R9, 2),
            });
            for (int c = 0; c < blocks; c++) a.Vpdpbusd(Acc(r, c), bcast, 24 + c);
        }
        a.Add(Gp.Rbx, 4);
        if (rows > 3) a.Add(Gp.R12, 4);
        if (prefetch)
        {
            for (int l = 0; l < PrefetchLines; l++) a.Prefetcht1(Mem.At(Gp.Rax, 64 * l));
            a.Add(Gp.Rax, 64 * PrefetchLines);
        }
        a.Add(Gp.Rsi, 64);
        a.Dec(Gp.Rbp);
        a.J(Cond.Ne, lk);
        if (prefetch)
        {
            a.Mov(Gp.Rax, Mem.At(Gp.Rdi, 104));
            a.Add(Gp.Rax, Mem.At(Gp.Rdi, 112));
            a.Mov(Mem.At(Gp.Rdi, 104), Gp.Rax);
        }
        a.Mov(Gp.Rsi, Gp.Rdx);
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < blocks; c++)
                a.Vmovdqu32(Mem.At(Gp.Rsi, c * 64), Acc(r, c), c == blocks - 1 ? 1 : 0);
            if (r < rows - 1) a.Add(Gp.Rsi, Gp.Rcx);
        }
        a.Add(Gp.R8, Mem.At(Gp.Rdi, 64));
        a.Add(Gp.Rdx, Mem.At(Gp.Rdi, 72));
        a.Dec(Gp.R13);
        a.J(Cond.Ne, li);
        a.Vzeroupper();
        for (int i = saved.Length - 1; i >= 0; i--) a.Pop(saved[i]);
        a.Ret();
        return a.ToArray();
    }

    private static int Acc(int r, int c) => r * MaxBlocks + c;

    /// <summary>AMX block: 32 rows × 2 column blocks (32 columns) as 2×2 tiles of 16×16 int32.</summary>
    public const int AmxRows = 32, AmxBlocks = 2, AmxStepK = 64;

    /// <summary>
    /// AMX kernel for one pair of full 16-column blocks and MBlocks blocks of 32 rows, K a multiple of 64 (KGroups/16
    /// steps, passed in the KGroups field). Per step s: A tiles (16 rows × 64 bytes) from the u8 panel at A + 64s with stride lda (rows 0–15 in
    /// tmm4, 16–31 in tmm5); B tiles from <see cref="PackedInt8Weights"/>: 16 consecutive k groups of a block are 16
    /// rows of 64 bytes, i.e. exactly the VNNI tile layout, at B + 1024s (tmm6) and B + BlockStride + 1024s (tmm7),
    /// stride 64; tdpbusd (u8·s8) into tmm0–3, stored to C with stride ldc. Only instructions that the test
    /// interpreter models are used (mov, lea, add, shl, dec, jne, push, pop and the tile instructions).
    /// </summary>
    public static byte[] EmitAmx()
    {
        var a = new X64Assembler();
        Gp[] saved = [Gp.Rbx, Gp.Rbp, Gp.R12, Gp.R13, Gp.R14, Gp.R15];
        foreach (var r in saved) a.Push(r);
        a.Mov(Gp.Rax, Mem.At(Gp.Rdi, 96));
        a.Ldtilecfg(Mem.At(Gp.Rax));
        a.Mov(Gp.R8, Mem.At(Gp.Rdi, 0));       // A, row 0 of the current 32-row block
        a.Mov(Gp.R9, Mem.At(Gp.Rdi, 8));       // lda: A tile row stride
        a.Mov(Gp.R10, Mem.At(Gp.Rdi, 16));     // B, first block of the pair
        a.Mov(Gp.R11, Mem.At(Gp.Rdi, 24));
        a.Add(Gp.R11, Gp.R10);                 // B, second block of the pair
        a.Mov(Gp.Rdx, Mem.At(Gp.Rdi, 32));     // C
        a.Mov(Gp.Rcx, Mem.At(Gp.Rdi, 40));     // ldc in bytes: C tile row stride
        a.Mov(Gp.R13, Mem.At(Gp.Rdi, 56));     // 32-row blocks
        a.Mov(Gp.Rbx, Gp.R9);
        a.Shl(Gp.Rbx, 4);                      // 16·lda
        a.Mov(Gp.Rbp, 64);                     // B tile row stride
        var li = new Label();
        var lk = new Label();
        a.Bind(li);
        for (int t = 0; t < 4; t++) a.Tilezero(t);
        a.Mov(Gp.R14, Gp.R8);
        a.Mov(Gp.R15, Gp.R10);
        a.Mov(Gp.Rsi, Gp.R11);
        a.Mov(Gp.Rax, Mem.At(Gp.Rdi, 48));     // K steps of 64 (the caller passes KGroups / 16 here)
        a.Bind(lk);
        a.Tileloadd(4, Mem.At(Gp.R14, Gp.R9, 1));
        a.Lea(Gp.R12, Mem.At(Gp.R14, Gp.Rbx, 1));
        a.Tileloadd(6, Mem.At(Gp.R15, Gp.Rbp, 1));
        a.Tileloadd(5, Mem.At(Gp.R12, Gp.R9, 1));
        a.Tdpbusd(0, 4, 6);
        a.Tileloadd(7, Mem.At(Gp.Rsi, Gp.Rbp, 1));
        a.Tdpbusd(2, 5, 6);
        a.Tdpbusd(1, 4, 7);
        a.Tdpbusd(3, 5, 7);
        a.Add(Gp.R14, 64);
        a.Add(Gp.R15, 1024);
        a.Add(Gp.Rsi, 1024);
        a.Dec(Gp.Rax);
        a.J(Cond.Ne, lk);
        a.Tilestored(Mem.At(Gp.Rdx, Gp.Rcx, 1), 0);
        a.Tilestored(Mem.At(Gp.Rdx, Gp.Rcx, 1, 64), 1);
        a.Mov(Gp.R12, Mem.At(Gp.Rdi, 88));
        a.Add(Gp.R12, Gp.Rdx);                 // C + 16 rows
        a.Tilestored(Mem.At(Gp.R12, Gp.Rcx, 1), 2);
        a.Tilestored(Mem.At(Gp.R12, Gp.Rcx, 1, 64), 3);
        a.Mov(Gp.Rdx, Mem.At(Gp.Rdi, 88));
        a.Add(Gp.Rdx, Gp.R12);                 // C + 32 rows
        a.Add(Gp.R8, Gp.Rbx);
        a.Add(Gp.R8, Gp.Rbx);                  // A + 32 rows
        a.Dec(Gp.R13);
        a.J(Cond.Ne, li);
        a.Tilerelease();
        for (int i = saved.Length - 1; i >= 0; i--) a.Pop(saved[i]);
        a.Ret();
        return a.ToArray();
    }
}

/// <summary>
/// Generated code as a micro-kernel of the integer engine's <see cref="Int8Gemm"/> driver (which does the A panel,
/// the zero-point correction from row/column sums and the tiling over threads, and leaves the requantization to the
/// operators). It computes the same raw Σ u8(A)·s8(B) as every other <see cref="IInt8GemmKernel"/>, bit for bit.
/// <list type="bullet">
/// <item>AVX512-VNNI: 24 variants (1–6 rows × 1–4 column blocks) of the 512-bit vpdpbusd kernel.</item>
/// <item>AMX (when the CPU and OS allow it): 32-row × 32-column tdpbusd blocks where B was packed with K padded to
/// 64 (<see cref="KAlignmentFor"/>); ragged rows and columns, and B packed otherwise, go to the VNNI variants (every
/// AMX CPU has AVX512-VNNI).</item>
/// </list>
/// Code is generated on first use into one read+execute mapping and lives for the process. Supported on x86-64
/// Linux with AVX512F/BW/VNNI enabled by the OS and by the runtime (DOTNET_EnableAVX512=0 turns it off too), unless
/// QUANTSHARP_JIT=0 (read when the driver first picks its default kernel). Windows is excluded because the kernels
/// follow the System V convention (argument in rdi, zmm6–15 not preserved).
/// </summary>
public sealed unsafe class GeneratedInt8Kernel : IInt8GemmKernel
{
    /// <summary>Name in reports and for QUANTSHARP_INT8_KERNEL.</summary>
    public const string KernelName = "Jit";

    /// <summary>The instance the driver registers (generated code is shared by every caller).</summary>
    public static GeneratedInt8Kernel Instance { get; } = new(null);

    /// <summary>Runs the AMX kernel on the argument block in place of the hardware (tests on machines without AMX).</summary>
    internal delegate void AmxInvoker(byte[] code, nint args);

    private readonly AmxInvoker? _amxInvoker;
    private readonly Lazy<Code?> _code;
    private readonly long _prefetchMinBytes;

    /// <summary>
    /// Packed B of at least this many bytes uses the VNNI variants with software prefetch of the next column group:
    /// such a B does not stay in L2 and, in a model, comes from DRAM; a smaller one is served by the caches, where the
    /// extra prefetch instruction per k group only costs (2–5 % measured at 1024³ and 16–64×1024×4096).
    /// </summary>
    public const long PrefetchMinBytes = 2L << 20;

    /// <summary><paramref name="amxInvoker"/> non-null: a test instance whose AMX calls go to the invoker.
    /// <paramref name="prefetchMinBytes"/>: size of packed B from which the prefetching variants run (0: always,
    /// long.MaxValue: never, i.e. the session-2 kernel, for before/after benchmarks); results are the same.</summary>
    internal GeneratedInt8Kernel(AmxInvoker? amxInvoker, long prefetchMinBytes = PrefetchMinBytes)
    {
        _amxInvoker = amxInvoker;
        _prefetchMinBytes = prefetchMinBytes;
        _code = new(() => Generate(amxInvoker is not null));
    }

    public string Name => KernelName;

    /// <summary>The generated backend in use (None when unsupported).</summary>
    public JitBackend Backend => IsSupported ? (_code.Value!.Amx ? JitBackend.Amx : JitBackend.Avx512Vnni) : JitBackend.None;

    public bool IsSupported => OperatingSystem.IsLinux() && System.Runtime.Intrinsics.X86.Avx512BW.IsSupported
        && (_amxInvoker is not null || CpuFeatures.Best() >= JitBackend.Avx512Vnni) && _code.Value is not null;

    /// <summary>True for kernels that run generated machine code (what the session option turns off).</summary>
    public static bool IsGenerated(IInt8GemmKernel kernel) => kernel is GeneratedInt8Kernel;

    /// <summary>
    /// The kernel an integer operator should use: null (the driver's start-up default) when generated code is
    /// allowed, else the driver's default if it is managed, else the first supported managed kernel.
    /// </summary>
    public static IInt8GemmKernel? Select(bool allowGenerated)
    {
        if (allowGenerated) return null;
        var d = Int8Gemm.Default;
        if (!IsGenerated(d)) return d;
        return Int8Gemm.SupportedKernels.First(k => !IsGenerated(k));
    }

    /// <summary>
    /// The K alignment to pack B with for <paramref name="kernel"/> (null: the driver's default): 64 when it is
    /// generated code on AMX (a tile row holds 64 k bytes), else 4. Any alignment gives the same result.
    /// </summary>
    public static int KAlignmentFor(IInt8GemmKernel? kernel) =>
        (kernel ?? Int8Gemm.Default) is GeneratedInt8Kernel g && g.IsSupported && g._code.Value!.Amx ? EngineKernelEmitter.AmxStepK : 4;

    private sealed class Code(ExecutableMemory memory, int[] offsets, int amxOffset, AlignedBuffer? tileConfig, byte[]? amxBytes)
    {
        public readonly ExecutableMemory Memory = memory;
        public readonly int[] Offsets = offsets;
        public readonly AlignedBuffer? TileConfig = tileConfig;
        public readonly byte[]? AmxBytes = amxBytes;
        public bool Amx => TileConfig is not null;

        /// <summary>The VNNI variant for rows × blocks, with or without the software prefetch.</summary>
        public nint Entry(int rows, int blocks, bool prefetch) =>
            Memory.Address + Offsets[((prefetch ? EngineKernelEmitter.MaxRows : 0) + rows - 1) * EngineKernelEmitter.MaxBlocks + blocks - 1];

        public nint AmxEntry => Memory.Address + amxOffset;
    }

    private static Code? Generate(bool emulatedAmx)
    {
        if (!OperatingSystem.IsLinux() || !CpuFeatures.HasAvx512Vnni) return null;
        try
        {
            bool amx = emulatedAmx || CpuFeatures.HasAmx;
            // All variants (without, then with prefetch) in one mapping, each starting on a 64-byte boundary (int3
            // padding between them).
            var all = new List<byte>();
            var offsets = new int[2 * EngineKernelEmitter.MaxRows * EngineKernelEmitter.MaxBlocks];
            foreach (bool prefetch in new[] { false, true })
                for (int r = 1; r <= EngineKernelEmitter.MaxRows; r++)
                    for (int c = 1; c <= EngineKernelEmitter.MaxBlocks; c++)
                    {
                        while (all.Count % 64 != 0) all.Add(0xCC);
                        offsets[((prefetch ? EngineKernelEmitter.MaxRows : 0) + r - 1) * EngineKernelEmitter.MaxBlocks + c - 1] = all.Count;
                        all.AddRange(EngineKernelEmitter.Emit(r, c, prefetch));
                    }
            int amxOffset = 0;
            AlignedBuffer? cfg = null;
            byte[]? amxBytes = null;
            if (amx)
            {
                while (all.Count % 64 != 0) all.Add(0xCC);
                amxOffset = all.Count;
                amxBytes = EngineKernelEmitter.EmitAmx();
                all.AddRange(amxBytes);
                // Palette 1: byte 0 palette, bytes 16+2t colsb of tile t, byte 48+t rows of tile t; 16 rows × 64 bytes each.
                cfg = new AlignedBuffer(64);
                var span = cfg.Span;
                span[0] = 1;
                for (int t = 0; t < 8; t++)
                {
                    span[16 + 2 * t] = 64;
                    span[48 + t] = 16;
                }
            }
            return new Code(new ExecutableMemory(all.ToArray()), offsets, amxOffset, cfg, amxBytes);
        }
        catch (QuantSharpException)
        {
            return null;
        }
    }

    public void Multiply(byte* a, int lda, int rows, PackedInt8Weights b, int blockStart, int blockEnd, int* c, int ldc)
    {
        const int bc = PackedInt8Weights.BlockColumns;
        var code = _code.Value ?? throw new QuantSharpException($"int8 GEMM: kernel '{KernelName}' is not supported on this machine");
        if (rows <= 0 || blockEnd <= blockStart) return;
        int n = b.Columns;
        if (b.KGroups == 0)
        {
            // K = 0: every dot product is empty.
            int j0 = blockStart * bc, j1 = Math.Min(n, blockEnd * bc);
            for (int i = 0; i < rows; i++) new Span<int>(c + (long)i * ldc + j0, j1 - j0).Clear();
            return;
        }
        bool prefetch = (long)b.ColumnBlocks * b.BlockStride >= _prefetchMinBytes;
        if (code.Amx && b.PaddedDepth % EngineKernelEmitter.AmxStepK == 0)
        {
            // AMX on whole 32-row blocks × full block pairs; the VNNI variants do the ragged remainder.
            int amxRows = rows / EngineKernelEmitter.AmxRows * EngineKernelEmitter.AmxRows;
            int fullEnd = Math.Min(blockEnd, n / bc);
            int pairs = Math.Max(0, fullEnd - blockStart) / EngineKernelEmitter.AmxBlocks;
            if (amxRows > 0 && pairs > 0)
            {
                MultiplyAmx(code, a, lda, amxRows, b, blockStart, pairs, c, ldc);
                int done = blockStart + pairs * EngineKernelEmitter.AmxBlocks;
                MultiplyVnni(code, prefetch, a, lda, amxRows, b, done, blockEnd, c, ldc);
                MultiplyVnni(code, prefetch, a + (long)amxRows * lda, lda, rows - amxRows, b, blockStart, blockEnd, c + (long)amxRows * ldc, ldc);
                GC.KeepAlive(b);
                return;
            }
        }
        MultiplyVnni(code, prefetch, a, lda, rows, b, blockStart, blockEnd, c, ldc);
        GC.KeepAlive(b);
    }

    private void MultiplyAmx(Code code, byte* a, int lda, int rows, PackedInt8Weights b, int blockStart, int pairs, int* c, int ldc)
    {
        var args = new EngineKernelArgs
        {
            A = (nint)a,
            Lda = lda,
            BlockStride = b.BlockStride,
            Ldc = (long)ldc * 4,
            KGroups = b.PaddedDepth / EngineKernelEmitter.AmxStepK,
            MBlocks = rows / EngineKernelEmitter.AmxRows,
            CHalfStep = 16L * ldc * 4,
            TileConfig = (nint)code.TileConfig!.Pointer,
        };
        for (int p = 0; p < pairs; p++)
        {
            int blk = blockStart + p * EngineKernelEmitter.AmxBlocks;
            args.B = (nint)(b.Pointer + (long)blk * b.BlockStride);
            args.C = (nint)(c + blk * PackedInt8Weights.BlockColumns);
            if (_amxInvoker is null) ((delegate* unmanaged<EngineKernelArgs*, void>)code.AmxEntry)(&args);
            else _amxInvoker(code.AmxBytes!, (nint)(&args));
        }
    }

    private static void MultiplyVnni(Code code, bool prefetch, byte* a, int lda, int rows, PackedInt8Weights b, int blockStart, int blockEnd, int* c, int ldc)
    {
        const int bc = PackedInt8Weights.BlockColumns;
        if (rows <= 0 || blockEnd <= blockStart) return;
        int n = b.Columns;
        int full = rows / EngineKernelEmitter.MaxRows, tail = rows % EngineKernelEmitter.MaxRows;
        var args = new EngineKernelArgs
        {
            Lda = lda,
            BlockStride = b.BlockStride,
            Ldc = (long)ldc * 4,
            KGroups = b.KGroups,
            ARowStep = (long)EngineKernelEmitter.MaxRows * lda,
            CRowStep = (long)EngineKernelEmitter.MaxRows * ldc * 4,
        };
        int rowBlocks = full + (tail > 0 ? 1 : 0);
        // Fewer row blocks than blocks per group cannot cover the next group at one line per k group; such short
        // (GEMV-like, M ≤ 18) products stream B at the memory's pace anyway, and the prefetches measured 5–10 % slower
        // there (M = 1, 4, 16 × 4096², 5–10 % faster from M = 32 on).
        prefetch &= rowBlocks >= EngineKernelEmitter.MaxBlocks;
        // Column groups of up to 4 blocks (outer: the group's B, K·64 bytes, stays cached while the row blocks pass).
        for (int g = blockStart; g < blockEnd; g += EngineKernelEmitter.MaxBlocks)
        {
            int blocks = Math.Min(EngineKernelEmitter.MaxBlocks, blockEnd - g);
            int lastColumns = Math.Min(bc, n - (g + blocks - 1) * bc);
            args.Mask = (1 << lastColumns) - 1;
            args.B = (nint)(b.Pointer + (long)g * b.BlockStride);
            // Prefetch the next 4 blocks of the packed B (the next group here or the next tile's first group),
            // spread over this group's row blocks: each row block prefetches `span` bytes from Prefetch, which then
            // advances by (bytes − span) / (row blocks − 1) rounded down to a line, so the row blocks cover the next
            // group without gaps (step ≤ span as there are ≥ 4 row blocks) and end exactly at it. Past the end of B
            // it re-prefetches this group's first block (already cached), never other memory.
            int next = g + blocks;
            long nextBytes = (long)Math.Min(EngineKernelEmitter.MaxBlocks, b.ColumnBlocks - next) * b.BlockStride;
            long span = (long)b.KGroups * 64 * EngineKernelEmitter.PrefetchLines;
            if (nextBytes > 0 && rowBlocks > 1)
            {
                args.Prefetch = (nint)(b.Pointer + (long)next * b.BlockStride);
                args.PrefetchStep = Math.Max(0, (nextBytes - span) / (rowBlocks - 1)) & ~63L;
            }
            else
            {
                args.Prefetch = args.B;
                args.PrefetchStep = 0;
            }
            if (full > 0)
            {
                args.A = (nint)a;
                args.C = (nint)(c + g * bc);
                args.MBlocks = full;
                ((delegate* unmanaged<EngineKernelArgs*, void>)code.Entry(EngineKernelEmitter.MaxRows, blocks, prefetch))(&args);
            }
            if (tail > 0)
            {
                int r0 = full * EngineKernelEmitter.MaxRows;
                args.A = (nint)(a + (long)r0 * lda);
                args.C = (nint)(c + (long)r0 * ldc + g * bc);
                args.MBlocks = 1;
                ((delegate* unmanaged<EngineKernelArgs*, void>)code.Entry(tail, blocks, prefetch))(&args);
            }
        }
    }
}
