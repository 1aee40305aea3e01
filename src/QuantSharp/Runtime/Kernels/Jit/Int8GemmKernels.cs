using System.Runtime.InteropServices;

namespace QuantSharp.Runtime.Kernels.Jit;

/// <summary>
/// Arguments of every generated GEMM kernel, passed by pointer in rdi (System V). Offsets are fixed in the code:
/// A 0, B 8, C 16, MBlocks 24, NBlocks 32, KSteps 40, Ldc 48 (bytes), Aux 56 (AMX: tile configuration; VNNI: int32
/// column bias that initialises the accumulators).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct GemmKernelArgs
{
    public nint A, B, C;
    public long MBlocks, NBlocks, KSteps, Ldc;
    public nint Aux;
}

/// <summary>Emits the machine code of the int8 GEMM kernels.</summary>
internal static class Int8GemmKernels
{
    /// <summary>AMX: 32×32 int32 output block per inner step as 2×2 tiles of 16×16 (tmm0–3), A halves in tmm4–5,
    /// B halves in tmm6–7. K advances 64 bytes per step.</summary>
    public const int AmxBlockM = 32, AmxBlockN = 32, AmxStepK = 64;

    /// <summary>VNNI: mr rows × 64 columns (4 zmm of 16 int32) per block; K advances 4 per step (one dword group).</summary>
    public const int VnniMaxRows = 6, VnniBlockN = 64, VnniStepK = 4;

    /// <summary>
    /// AMX kernel. Packed A: per 32-row block and 64-wide K step, two 16×64-byte tiles (rows 0–15, 16–31), 1 KiB each.
    /// Packed B: per 32-column panel and K step, two 16×64-byte VNNI tiles (columns 0–15, 16–31), row r holding
    /// k = 4r..4r+3 for 16 columns. The loops: panels j (outer, B panel stays in L1/L2), row blocks i, K steps.
    /// <paramref name="unsignedA"/> selects tdpbusd (u8·s8) instead of tdpbssd (s8·s8).
    /// </summary>
    public static byte[] EmitAmx(bool unsignedA)
    {
        var a = new X64Assembler();
        Gp[] saved = [Gp.Rbx, Gp.Rbp, Gp.R12, Gp.R13, Gp.R14, Gp.R15];
        foreach (var r in saved) a.Push(r);
        a.Mov(Gp.Rax, Mem.At(Gp.Rdi, 56));
        a.Ldtilecfg(Mem.At(Gp.Rax));
        a.Mov(Gp.R8, 64);                      // tile row stride of packed A and B
        a.Mov(Gp.R9, Mem.At(Gp.Rdi, 48));      // ldc in bytes
        a.Mov(Gp.R11, Gp.R9);
        a.Shl(Gp.R11, 4);                      // 16 rows of C
        a.Mov(Gp.R10, Mem.At(Gp.Rdi, 40));
        a.Shl(Gp.R10, 11);                     // bytes of one B panel: kSteps · 2 KiB
        a.Mov(Gp.Rsi, Mem.At(Gp.Rdi, 8));
        a.Mov(Gp.Rdx, Mem.At(Gp.Rdi, 16));
        a.Mov(Gp.Rcx, Mem.At(Gp.Rdi, 32));
        var lj = new Label();
        var li = new Label();
        var lk = new Label();
        a.Bind(lj);
        a.Mov(Gp.Rbx, Mem.At(Gp.Rdi, 0));
        a.Mov(Gp.R12, Gp.Rdx);
        a.Mov(Gp.R13, Mem.At(Gp.Rdi, 24));
        a.Bind(li);
        for (int t = 0; t < 4; t++) a.Tilezero(t);
        a.Mov(Gp.R14, Gp.Rbx);
        a.Mov(Gp.R15, Gp.Rsi);
        a.Mov(Gp.Rax, Mem.At(Gp.Rdi, 40));
        a.Bind(lk);
        a.Tileloadd(4, Mem.At(Gp.R14, Gp.R8, 1));
        a.Tileloadd(6, Mem.At(Gp.R15, Gp.R8, 1));
        a.Tileloadd(5, Mem.At(Gp.R14, Gp.R8, 1, 1024));
        Dot(a, unsignedA, 0, 4, 6);
        a.Tileloadd(7, Mem.At(Gp.R15, Gp.R8, 1, 1024));
        Dot(a, unsignedA, 2, 5, 6);
        Dot(a, unsignedA, 1, 4, 7);
        Dot(a, unsignedA, 3, 5, 7);
        a.Add(Gp.R14, 2048);
        a.Add(Gp.R15, 2048);
        a.Dec(Gp.Rax);
        a.J(Cond.Ne, lk);
        a.Tilestored(Mem.At(Gp.R12, Gp.R9, 1), 0);
        a.Tilestored(Mem.At(Gp.R12, Gp.R9, 1, 64), 1);
        a.Lea(Gp.Rbp, Mem.At(Gp.R12, Gp.R11, 1));
        a.Tilestored(Mem.At(Gp.Rbp, Gp.R9, 1), 2);
        a.Tilestored(Mem.At(Gp.Rbp, Gp.R9, 1, 64), 3);
        a.Mov(Gp.Rbx, Gp.R14);                 // next A block follows this one in the packed A
        a.Lea(Gp.R12, Mem.At(Gp.R12, Gp.R11, 2));
        a.Dec(Gp.R13);
        a.J(Cond.Ne, li);
        a.Add(Gp.Rsi, Gp.R10);
        a.Add(Gp.Rdx, AmxBlockN * 4);
        a.Dec(Gp.Rcx);
        a.J(Cond.Ne, lj);
        a.Tilerelease();
        for (int i = saved.Length - 1; i >= 0; i--) a.Pop(saved[i]);
        a.Ret();
        return a.ToArray();
    }

    private static void Dot(X64Assembler a, bool unsignedA, int dst, int src1, int src2)
    {
        if (unsignedA) a.Tdpbusd(dst, src1, src2);
        else a.Tdpbssd(dst, src1, src2);
    }

    /// <summary>
    /// AVX512-VNNI kernel for blocks of <paramref name="rows"/> rows × 64 columns: accumulators zmm0..(4·rows−1)
    /// start from the column bias; per K group the 4 B vectors (zmm24–27) are loaded, each row's 4 A bytes are
    /// broadcast (zmm28+) and vpdpbusd adds u8(A)·s8(B). Packed A: per block, K group by K group, rows·4 bytes;
    /// packed B: per 64-column panel, K group by K group, 256 bytes (column c at bytes 4c..4c+3).
    /// </summary>
    public static byte[] EmitVnni(int rows)
    {
        if (rows is < 1 or > VnniMaxRows) throw new QuantSharpException($"VNNI kernel: {rows} rows is outside 1–{VnniMaxRows}");
        var a = new X64Assembler();
        Gp[] saved = [Gp.Rbx, Gp.R12, Gp.R13, Gp.R15];
        foreach (var r in saved) a.Push(r);
        a.Mov(Gp.R8, Mem.At(Gp.Rdi, 0));
        a.Mov(Gp.Rsi, Mem.At(Gp.Rdi, 8));
        a.Mov(Gp.Rdx, Mem.At(Gp.Rdi, 16));
        a.Mov(Gp.Rcx, Mem.At(Gp.Rdi, 32));
        a.Mov(Gp.R9, Mem.At(Gp.Rdi, 48));
        a.Mov(Gp.R11, Mem.At(Gp.Rdi, 56));
        a.Mov(Gp.R10, Mem.At(Gp.Rdi, 40));
        a.Shl(Gp.R10, 8);                      // bytes of one B panel: kGroups · 256
        var lj = new Label();
        var li = new Label();
        var lk = new Label();
        a.Bind(lj);
        a.Mov(Gp.Rbx, Gp.R8);
        a.Mov(Gp.R12, Gp.Rdx);
        a.Mov(Gp.R13, Mem.At(Gp.Rdi, 24));
        a.Bind(li);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < 4; c++)
                a.Vmovdqu32(r * 4 + c, Mem.At(Gp.R11, c * 64));
        a.Mov(Gp.R15, Gp.Rsi);
        a.Mov(Gp.Rax, Mem.At(Gp.Rdi, 40));
        a.Bind(lk);
        for (int c = 0; c < 4; c++) a.Vmovdqu32(24 + c, Mem.At(Gp.R15, c * 64));
        for (int r = 0; r < rows; r++)
        {
            int bcast = 28 + (r & 3);
            a.Vpbroadcastd(bcast, Mem.At(Gp.Rbx, r * 4));
            for (int c = 0; c < 4; c++) a.Vpdpbusd(r * 4 + c, bcast, 24 + c);
        }
        a.Add(Gp.Rbx, rows * 4);
        a.Add(Gp.R15, 256);
        a.Dec(Gp.Rax);
        a.J(Cond.Ne, lk);
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < 4; c++) a.Vmovdqu32(Mem.At(Gp.R12, c * 64), r * 4 + c);
            a.Add(Gp.R12, Gp.R9);
        }
        a.Dec(Gp.R13);
        a.J(Cond.Ne, li);
        a.Add(Gp.Rsi, Gp.R10);
        a.Add(Gp.Rdx, VnniBlockN * 4);
        a.Add(Gp.R11, VnniBlockN * 4);
        a.Dec(Gp.Rcx);
        a.J(Cond.Ne, lj);
        a.Vzeroupper();
        for (int i = saved.Length - 1; i >= 0; i--) a.Pop(saved[i]);
        a.Ret();
        return a.ToArray();
    }
}
