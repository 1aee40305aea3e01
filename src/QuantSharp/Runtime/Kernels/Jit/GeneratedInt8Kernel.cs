using System.Runtime.InteropServices;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Runtime.Kernels.Jit;

/// <summary>
/// Arguments of the engine micro-kernels (rdi points here, System V). Offsets are fixed in the code: A 0, Lda 8,
/// B 16, BlockStride 24, C 32, Ldc 40 (bytes), KGroups 48, MBlocks 56, ARowStep 64 (bytes from one row block of A to
/// the next), CRowStep 72 (the same for C), Mask 80 (16-bit store mask of the last 16-column block).
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

    /// <summary>
    /// Kernel for <paramref name="rows"/> rows × <paramref name="blocks"/> column blocks, looping over MBlocks row
    /// blocks (A and C advance by ARowStep / CRowStep). Per k group g: B vectors from B + c·BlockStride + 64g,
    /// A dwords broadcast from row r at A + r·lda + 4g; acc[r][c] += Σ₄ u8(A)·s8(B) (vpdpbusd, wrapping int32).
    /// Rows 0–2 are addressed from rbx with index lda·{1,2}, rows 3–5 from r12 = rbx + 3·lda, because x86 scales
    /// stop at 8 and lda is a run-time value. The last block's store uses opmask k1 (Mask) so ragged N never writes
    /// past the output's last column.
    /// </summary>
    public static byte[] Emit(int rows, int blocks)
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
        a.Add(Gp.Rsi, 64);
        a.Dec(Gp.Rbp);
        a.J(Cond.Ne, lk);
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
}

/// <summary>
/// The generated 512-bit vpdpbusd kernel as a micro-kernel of the integer engine's <see cref="Int8Gemm"/> driver
/// (which does the A panel, the zero-point correction from row/column sums, the tiling over threads, and leaves the
/// requantization to the operators). It computes the same raw Σ u8(A)·s8(B) as every other
/// <see cref="IInt8GemmKernel"/>, bit for bit. The 24 kernel variants (1–6 rows × 1–4 column blocks) are generated on
/// first use into one read+execute mapping and live for the process.
/// <para>
/// Supported on x86-64 Linux with AVX512F/BW/VNNI enabled by the OS, unless QUANTSHARP_JIT=0 (read when the
/// driver first picks its default kernel). Windows is excluded because the kernels follow the System V convention
/// (argument in rdi, zmm6–15 not preserved).
/// </para>
/// </summary>
public sealed unsafe class GeneratedInt8Kernel : IInt8GemmKernel
{
    /// <summary>Name in reports and for QUANTSHARP_INT8_KERNEL.</summary>
    public const string KernelName = "Avx512Vnni-jit";

    /// <summary>The instance the driver registers (generated code is shared by every caller).</summary>
    public static GeneratedInt8Kernel Instance { get; } = new();

    private readonly Lazy<Code?> _code = new(Generate);

    private GeneratedInt8Kernel() { }

    public string Name => KernelName;

    /// <summary>True when generated code may run here and was generated successfully. The runtime's own AVX-512
    /// switch (DOTNET_EnableAVX512=0) is honoured too, so turning AVX-512 off turns this kernel off.</summary>
    public bool IsSupported => OperatingSystem.IsLinux() && System.Runtime.Intrinsics.X86.Avx512BW.IsSupported
        && CpuFeatures.Best() >= JitBackend.Avx512Vnni && _code.Value is not null;

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

    private sealed class Code(ExecutableMemory memory, int[] offsets)
    {
        public readonly ExecutableMemory Memory = memory;
        public readonly int[] Offsets = offsets;

        public nint Entry(int rows, int blocks) => Memory.Address + Offsets[(rows - 1) * EngineKernelEmitter.MaxBlocks + blocks - 1];
    }

    private static Code? Generate()
    {
        if (!OperatingSystem.IsLinux() || !CpuFeatures.HasAvx512Vnni) return null;
        try
        {
            // All variants in one mapping, each starting on a 64-byte boundary (int3 padding between them).
            var all = new List<byte>();
            var offsets = new int[EngineKernelEmitter.MaxRows * EngineKernelEmitter.MaxBlocks];
            for (int r = 1; r <= EngineKernelEmitter.MaxRows; r++)
                for (int c = 1; c <= EngineKernelEmitter.MaxBlocks; c++)
                {
                    while (all.Count % 64 != 0) all.Add(0xCC);
                    offsets[(r - 1) * EngineKernelEmitter.MaxBlocks + c - 1] = all.Count;
                    all.AddRange(EngineKernelEmitter.Emit(r, c));
                }
            return new Code(new ExecutableMemory(all.ToArray()), offsets);
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
        int full = rows / EngineKernelEmitter.MaxRows, tail = rows % EngineKernelEmitter.MaxRows;
        byte* bBase = b.Pointer;
        var args = new EngineKernelArgs
        {
            Lda = lda,
            BlockStride = b.BlockStride,
            Ldc = (long)ldc * 4,
            KGroups = b.KGroups,
            ARowStep = (long)EngineKernelEmitter.MaxRows * lda,
            CRowStep = (long)EngineKernelEmitter.MaxRows * ldc * 4,
        };
        // Column groups of up to 4 blocks (outer: the group's B, K·64 bytes, stays cached while the row blocks pass).
        for (int g = blockStart; g < blockEnd; g += EngineKernelEmitter.MaxBlocks)
        {
            int blocks = Math.Min(EngineKernelEmitter.MaxBlocks, blockEnd - g);
            int lastColumns = Math.Min(bc, n - (g + blocks - 1) * bc);
            args.Mask = (1 << lastColumns) - 1;
            args.B = (nint)(bBase + (long)g * b.BlockStride);
            if (full > 0)
            {
                args.A = (nint)a;
                args.C = (nint)(c + g * bc);
                args.MBlocks = full;
                ((delegate* unmanaged<EngineKernelArgs*, void>)code.Entry(EngineKernelEmitter.MaxRows, blocks))(&args);
            }
            if (tail > 0)
            {
                int r0 = full * EngineKernelEmitter.MaxRows;
                args.A = (nint)(a + (long)r0 * lda);
                args.C = (nint)(c + (long)r0 * ldc + g * bc);
                args.MBlocks = 1;
                ((delegate* unmanaged<EngineKernelArgs*, void>)code.Entry(tail, blocks))(&args);
            }
        }
        GC.KeepAlive(b);
    }
}
