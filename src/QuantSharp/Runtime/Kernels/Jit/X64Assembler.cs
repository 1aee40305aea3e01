namespace QuantSharp.Runtime.Kernels.Jit;

/// <summary>64-bit general-purpose registers, numbered as in the ModRM/SIB/REX encodings (bit 3 goes to REX).</summary>
public enum Gp
{
    Rax = 0, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi, R8, R9, R10, R11, R12, R13, R14, R15,
}

/// <summary>Condition codes of Jcc (the low nibble of opcode 0F 80+cc).</summary>
public enum Cond
{
    O = 0, No = 1, B = 2, Ae = 3, E = 4, Ne = 5, Be = 6, A = 7, S = 8, Ns = 9, P = 10, Np = 11, L = 12, Ge = 13, Le = 14, G = 15,
}

/// <summary>A memory operand [base + index·scale + disp]; <see cref="Index"/> null means no index.</summary>
public readonly record struct Mem(Gp Base, Gp? Index = null, int Scale = 1, int Disp = 0)
{
    public static Mem At(Gp b, int disp = 0) => new(b, null, 1, disp);
    public static Mem At(Gp b, Gp index, int scale, int disp = 0) => new(b, index, scale, disp);
}

/// <summary>A position in the code, bound once with <see cref="X64Assembler.Bind"/>; jumps to it are patched then.</summary>
public sealed class Label
{
    internal int Position = -1;
    internal readonly List<int> Fixups = [];
}

/// <summary>
/// Minimal x86-64 encoder for the integer GEMM kernels: general-purpose instructions (REX prefixes), AMX (VEX,
/// map 0F38) and AVX-512 (EVEX). Encodings follow the Intel SDM opcode tables; memory operands use ModRM/SIB with the
/// usual special cases: rsp/r12 as base need a SIB byte, rbp/r13 as base need a displacement (mod 00 means RIP/none),
/// rsp cannot be an index. EVEX 8-bit displacements are scaled by the tuple size N (disp8·N compression).
/// </summary>
public sealed class X64Assembler
{
    private readonly List<byte> _code = [];

    public int Length => _code.Count;

    public byte[] ToArray()
    {
        foreach (var l in _labelsPending)
            if (l.Position < 0) throw new QuantSharpException("x64 assembler: a jump targets a label that was never bound");
        return [.. _code];
    }

    private readonly HashSet<Label> _labelsPending = [];

    private void B(int v) => _code.Add((byte)v);

    private void D32(int v)
    {
        B(v); B(v >> 8); B(v >> 16); B(v >> 24);
    }

    private static int Lo(Gp r) => (int)r & 7;
    private static int Hi(Gp r) => ((int)r >> 3) & 1;

    // ---------- ModRM / SIB ----------

    /// <summary>Bits X (index) and B (base) that the memory operand needs in REX/VEX/EVEX.</summary>
    private static (int X, int B) MemExt(Mem m) => (m.Index is { } i ? Hi(i) : 0, Hi(m.Base));

    /// <summary>Writes ModRM (+SIB, +displacement) for reg field <paramref name="reg"/> (low 3 bits used).
    /// <paramref name="n"/> is the EVEX disp8 scale (1 for legacy/VEX encodings).</summary>
    private void ModRmMem(int reg, Mem m, int n = 1)
    {
        if (m.Index == Gp.Rsp) throw new QuantSharpException("x64 assembler: rsp cannot be an index register");
        int scaleBits = m.Scale switch
        {
            1 => 0, 2 => 1, 4 => 2, 8 => 3,
            _ => throw new QuantSharpException($"x64 assembler: scale {m.Scale} is not 1, 2, 4 or 8"),
        };
        bool needSib = m.Index is not null || Lo(m.Base) == 4;
        int mod;
        bool disp8Fits = m.Disp % n == 0 && m.Disp / n is >= sbyte.MinValue and <= sbyte.MaxValue;
        if (m.Disp == 0 && Lo(m.Base) != 5) mod = 0;
        else if (disp8Fits) mod = 1;
        else mod = 2;
        int rm = needSib ? 4 : Lo(m.Base);
        B((mod << 6) | ((reg & 7) << 3) | rm);
        if (needSib)
        {
            int idx = m.Index is { } i ? Lo(i) : 4;
            B((scaleBits << 6) | (idx << 3) | Lo(m.Base));
        }
        if (mod == 1) B(m.Disp / n);
        else if (mod == 2) D32(m.Disp);
    }

    private void ModRmReg(int reg, int rm) => B(0xC0 | ((reg & 7) << 3) | (rm & 7));

    private void Rex(bool w, int r, int x, int b, bool force = false)
    {
        int v = 0x40 | (w ? 8 : 0) | ((r & 1) << 2) | ((x & 1) << 1) | (b & 1);
        if (v != 0x40 || force) B(v);
    }

    // ---------- general purpose ----------

    /// <summary>ALU r/m64, r64 forms (opcode = 01 add, 29 sub, 31 xor, 39 cmp, 09 or, 21 and, 89 mov).</summary>
    private void AluRR(int opcode, Gp dst, Gp src)
    {
        Rex(true, Hi(src), 0, Hi(dst));
        B(opcode);
        ModRmReg((int)src, (int)dst);
    }

    /// <summary>ALU r64, imm: 83 /ext ib when the immediate fits a signed byte, else 81 /ext id (sign-extended).</summary>
    private void AluRI(int ext, Gp dst, int imm)
    {
        Rex(true, 0, 0, Hi(dst));
        if (imm is >= sbyte.MinValue and <= sbyte.MaxValue)
        {
            B(0x83); ModRmReg(ext, (int)dst); B(imm);
        }
        else
        {
            B(0x81); ModRmReg(ext, (int)dst); D32(imm);
        }
    }

    private void RegMem(int opcode, Gp reg, Mem m)
    {
        var (x, b) = MemExt(m);
        Rex(true, Hi(reg), x, b);
        B(opcode);
        ModRmMem((int)reg, m);
    }

    public void Mov(Gp dst, Gp src) => AluRR(0x89, dst, src);
    public void Mov(Gp dst, Mem src) => RegMem(0x8B, dst, src);
    public void Mov(Mem dst, Gp src) => RegMem(0x89, src, dst);

    /// <summary>mov r64, imm: C7 /0 id (sign-extended imm32) when it fits, else B8+r io (movabs).</summary>
    public void Mov(Gp dst, long imm)
    {
        if (imm is >= int.MinValue and <= int.MaxValue)
        {
            Rex(true, 0, 0, Hi(dst)); B(0xC7); ModRmReg(0, (int)dst); D32((int)imm);
        }
        else
        {
            Rex(true, 0, 0, Hi(dst)); B(0xB8 + Lo(dst));
            D32((int)imm); D32((int)(imm >> 32));
        }
    }

    public void Add(Gp dst, Gp src) => AluRR(0x01, dst, src);
    public void Add(Gp dst, int imm) => AluRI(0, dst, imm);
    public void Add(Gp dst, Mem src) => RegMem(0x03, dst, src);
    public void Sub(Gp dst, Gp src) => AluRR(0x29, dst, src);
    public void Sub(Gp dst, int imm) => AluRI(5, dst, imm);
    public void Cmp(Gp a, Gp b) => AluRR(0x39, a, b);
    public void Cmp(Gp a, int imm) => AluRI(7, a, imm);
    public void Xor(Gp dst, Gp src) => AluRR(0x31, dst, src);

    /// <summary>xor r32, r32 (31 /r without REX.W): zero-extends, the shortest way to clear a register.</summary>
    public void Xor32(Gp dst, Gp src)
    {
        Rex(false, Hi(src), 0, Hi(dst));
        B(0x31);
        ModRmReg((int)src, (int)dst);
    }

    public void Lea(Gp dst, Mem m) => RegMem(0x8D, dst, m);

    /// <summary>Software prefetch of the line holding m: 0F 18 /hint (0 nta, 1 t0 = all levels, 2 t1 = L2 and
    /// outward, 3 t2). A hint never faults, whatever the address.</summary>
    private void Prefetch(int hint, Mem m)
    {
        var (x, b) = MemExt(m);
        Rex(false, 0, x, b);
        B(0x0F); B(0x18);
        ModRmMem(hint, m);
    }

    /// <summary>prefetcht0 m8: into every cache level.</summary>
    public void Prefetcht0(Mem m) => Prefetch(1, m);

    /// <summary>prefetcht1 m8: into L2 (and outer levels), not L1.</summary>
    public void Prefetcht1(Mem m) => Prefetch(2, m);

    /// <summary>prefetcht2 m8: into the outer levels.</summary>
    public void Prefetcht2(Mem m) => Prefetch(3, m);

    public void Inc(Gp r)
    {
        Rex(true, 0, 0, Hi(r)); B(0xFF); ModRmReg(0, (int)r);
    }

    public void Dec(Gp r)
    {
        Rex(true, 0, 0, Hi(r)); B(0xFF); ModRmReg(1, (int)r);
    }

    /// <summary>shl r64, imm8: C1 /4 ib.</summary>
    public void Shl(Gp r, int count)
    {
        Rex(true, 0, 0, Hi(r)); B(0xC1); ModRmReg(4, (int)r); B(count);
    }

    /// <summary>imul r64, r/m64: 0F AF /r.</summary>
    public void Imul(Gp dst, Gp src)
    {
        Rex(true, Hi(dst), 0, Hi(src)); B(0x0F); B(0xAF); ModRmReg((int)dst, (int)src);
    }

    public void Push(Gp r)
    {
        Rex(false, 0, 0, Hi(r)); B(0x50 + Lo(r));
    }

    public void Pop(Gp r)
    {
        Rex(false, 0, 0, Hi(r)); B(0x58 + Lo(r));
    }

    public void Ret() => B(0xC3);

    /// <summary>xgetbv (0F 01 D0): EDX:EAX = XCR[ECX].</summary>
    public void Xgetbv()
    {
        B(0x0F); B(0x01); B(0xD0);
    }

    public void Bind(Label l)
    {
        if (l.Position >= 0) throw new QuantSharpException("x64 assembler: label bound twice");
        l.Position = _code.Count;
        foreach (int at in l.Fixups) Patch(at, l.Position);
        l.Fixups.Clear();
        _labelsPending.Remove(l);
    }

    private void Patch(int at, int target)
    {
        int rel = target - (at + 4);
        _code[at] = (byte)rel; _code[at + 1] = (byte)(rel >> 8); _code[at + 2] = (byte)(rel >> 16); _code[at + 3] = (byte)(rel >> 24);
    }

    /// <summary>Jump to a label: rel8 when the label is bound and within reach, else rel32 (patched on bind).</summary>
    private void Jump(int shortOp, int[] nearOp, Label l)
    {
        if (l.Position >= 0)
        {
            int rel8 = l.Position - (_code.Count + 2);
            if (rel8 is >= sbyte.MinValue and <= sbyte.MaxValue)
            {
                B(shortOp); B(rel8);
                return;
            }
        }
        foreach (int o in nearOp) B(o);
        int at = _code.Count;
        D32(0);
        if (l.Position >= 0) Patch(at, l.Position);
        else
        {
            l.Fixups.Add(at);
            _labelsPending.Add(l);
        }
    }

    public void Jmp(Label l) => Jump(0xEB, [0xE9], l);
    public void J(Cond c, Label l) => Jump(0x70 + (int)c, [0x0F, 0x80 + (int)c], l);

    // ---------- VEX (AMX, mask moves) ----------

    /// <summary>Three-byte VEX: C4 [R̄X̄B̄ mmmmm] [W v̄v̄v̄v̄ L pp]; pp 0 = none, 1 = 66, 2 = F3, 3 = F2.</summary>
    private void Vex3(int r, int x, int b, int map, bool w, int vvvv, int l, int pp)
    {
        B(0xC4);
        B(((~r & 1) << 7) | ((~x & 1) << 6) | ((~b & 1) << 5) | map);
        B((w ? 0x80 : 0) | ((~vvvv & 15) << 3) | (l << 2) | pp);
    }

    private static void CheckTmm(int t)
    {
        if ((uint)t > 7) throw new QuantSharpException($"x64 assembler: tmm{t} does not exist (tmm0–tmm7)");
    }

    /// <summary>ldtilecfg m512: VEX.128.NP.0F38.W0 49 /0.</summary>
    public void Ldtilecfg(Mem m)
    {
        var (x, b) = MemExt(m);
        Vex3(0, x, b, 2, false, 0, 0, 0); B(0x49); ModRmMem(0, m);
    }

    /// <summary>sttilecfg m512: VEX.128.66.0F38.W0 49 /0.</summary>
    public void Sttilecfg(Mem m)
    {
        var (x, b) = MemExt(m);
        Vex3(0, x, b, 2, false, 0, 0, 1); B(0x49); ModRmMem(0, m);
    }

    /// <summary>tilerelease: VEX.128.NP.0F38.W0 49 C0.</summary>
    public void Tilerelease()
    {
        Vex3(0, 0, 0, 2, false, 0, 0, 0); B(0x49); B(0xC0);
    }

    /// <summary>tilezero tmm: VEX.128.F2.0F38.W0 49 11:rrr:000.</summary>
    public void Tilezero(int tmm)
    {
        CheckTmm(tmm);
        Vex3(0, 0, 0, 2, false, 0, 0, 3); B(0x49); ModRmReg(tmm, 0);
    }

    /// <summary>Tile loads/stores take a SIB memory operand whose index register is the row stride in bytes.</summary>
    private void TileMem(int pp, int tmm, Mem m)
    {
        CheckTmm(tmm);
        if (m.Index is null) throw new QuantSharpException("x64 assembler: tile memory operands need an index (stride) register");
        var (x, b) = MemExt(m);
        Vex3(0, x, b, 2, false, 0, 0, pp); B(0x4B); ModRmMem(tmm, m);
    }

    /// <summary>tileloadd tmm, [base + stride·scale + disp]: VEX.128.F2.0F38.W0 4B.</summary>
    public void Tileloadd(int tmm, Mem m) => TileMem(3, tmm, m);

    /// <summary>tileloaddt1 (non-temporal hint): VEX.128.66.0F38.W0 4B.</summary>
    public void Tileloaddt1(int tmm, Mem m) => TileMem(1, tmm, m);

    /// <summary>tilestored [base + stride·scale + disp], tmm: VEX.128.F3.0F38.W0 4B.</summary>
    public void Tilestored(Mem m, int tmm) => TileMem(2, tmm, m);

    /// <summary>Tile dot products: VEX.128.pp.0F38.W0 5E 11:dst:src1, src2 in vvvv.</summary>
    private void Tdp(int pp, int dst, int src1, int src2)
    {
        CheckTmm(dst); CheckTmm(src1); CheckTmm(src2);
        Vex3(0, 0, 0, 2, false, src2, 0, pp); B(0x5E); ModRmReg(dst, src1);
    }

    /// <summary>dst += s8(src1) · s8(src2) over 4-byte groups.</summary>
    public void Tdpbssd(int dst, int src1, int src2) => Tdp(3, dst, src1, src2);
    /// <summary>dst += s8(src1) · u8(src2).</summary>
    public void Tdpbsud(int dst, int src1, int src2) => Tdp(2, dst, src1, src2);
    /// <summary>dst += u8(src1) · s8(src2).</summary>
    public void Tdpbusd(int dst, int src1, int src2) => Tdp(1, dst, src1, src2);
    /// <summary>dst += u8(src1) · u8(src2).</summary>
    public void Tdpbuud(int dst, int src1, int src2) => Tdp(0, dst, src1, src2);

    /// <summary>kmovw k, r32: VEX.L0.0F.W0 92 /r.</summary>
    public void KmovwFromGp(int k, Gp src)
    {
        if (Hi(src) == 0)
        {
            B(0xC5); B(0xF8); // two-byte VEX C5 [R̄ v̄v̄v̄v̄ L pp]: R̄=1, vvvv=1111, L0, pp none
        }
        else Vex3(0, 0, Hi(src), 1, false, 0, 0, 0);
        B(0x92); ModRmReg(k, (int)src);
    }

    /// <summary>kmovq k, r64: VEX.L0.F2.0F.W1 92 /r.</summary>
    public void KmovqFromGp(int k, Gp src)
    {
        Vex3(0, 0, Hi(src), 1, true, 0, 0, 3); B(0x92); ModRmReg(k, (int)src);
    }

    /// <summary>vzeroupper: VEX.128.0F 77 (avoids AVX–SSE transition penalties in the caller).</summary>
    public void Vzeroupper()
    {
        B(0xC5); B(0xF8); B(0x77);
    }

    // ---------- EVEX (AVX-512, 512-bit) ----------

    /// <summary>
    /// EVEX prefix 62 P0 P1 P2. P0 = R̄ X̄ B̄ R̄' 0 m m m; P1 = W v̄v̄v̄v̄ 1 pp; P2 = z L'L b V̄' aaa (L'L = 10 for 512 bits).
    /// <paramref name="rmHigh"/> is bit 4 of a register r/m operand, carried in the X bit when r/m is a register.
    /// </summary>
    private void Evex(int reg, int x, int b, int map, bool w, int vvvv, int pp, int mask, bool zeroing, bool broadcast)
    {
        B(0x62);
        B(((~(reg >> 3) & 1) << 7) | ((~x & 1) << 6) | ((~b & 1) << 5) | ((~(reg >> 4) & 1) << 4) | map);
        B((w ? 0x80 : 0) | ((~vvvv & 15) << 3) | 0x04 | pp);
        B((zeroing ? 0x80 : 0) | 0x40 | (broadcast ? 0x10 : 0) | ((~(vvvv >> 4) & 1) << 3) | (mask & 7));
    }

    private static void CheckZmm(int z)
    {
        if ((uint)z > 31) throw new QuantSharpException($"x64 assembler: zmm{z} does not exist (zmm0–zmm31)");
    }

    /// <summary>reg ← op(vvvv, r/m register), 512 bits.</summary>
    private void EvexRRR(int map, int pp, int opcode, int dst, int src1, int src2, int mask = 0, bool zeroing = false)
    {
        CheckZmm(dst); CheckZmm(src1); CheckZmm(src2);
        Evex(dst, (src2 >> 4) & 1, (src2 >> 3) & 1, map, false, src1, pp, mask, zeroing, false);
        B(opcode); ModRmReg(dst, src2);
    }

    /// <summary>reg, vvvv, memory; broadcast switches L'L to 10 still (512) with b = 1 and disp8·4.</summary>
    private void EvexRRM(int map, int pp, int opcode, int reg, int vvvv, Mem m, int n, int mask = 0, bool zeroing = false, bool broadcast = false)
    {
        CheckZmm(reg); CheckZmm(vvvv);
        var (x, b) = MemExt(m);
        Evex(reg, x, b, map, false, vvvv, pp, mask, zeroing, broadcast);
        B(opcode); ModRmMem(reg, m, n);
    }

    /// <summary>vpdpbusd zmm1{k}, zmm2, zmm3: EVEX.512.66.0F38.W0 50 /r — zmm1 += Σ₄ u8(zmm2)·s8(zmm3) per dword.</summary>
    public void Vpdpbusd(int dst, int src1, int src2, int mask = 0, bool zeroing = false) => EvexRRR(2, 1, 0x50, dst, src1, src2, mask, zeroing);

    /// <summary>vpdpbusd with a memory operand (m512, or m32 broadcast {1to16}).</summary>
    public void Vpdpbusd(int dst, int src1, Mem src2, bool broadcast = false) =>
        EvexRRM(2, 1, 0x50, dst, src1, src2, broadcast ? 4 : 64, broadcast: broadcast);

    /// <summary>vcvtdq2ps zmm1, zmm2: EVEX.512.0F.W0 5B /r — int32 → float, rounded by MXCSR (nearest-even).</summary>
    public void Vcvtdq2ps(int dst, int src) => EvexRRR(1, 0, 0x5B, dst, 0, src);

    /// <summary>vmulps zmm1, zmm2, m512 or m32{1to16}: EVEX.512.0F.W0 59 /r.</summary>
    public void Vmulps(int dst, int src1, Mem src2, bool broadcast = false) =>
        EvexRRM(1, 0, 0x59, dst, src1, src2, broadcast ? 4 : 64, broadcast: broadcast);

    /// <summary>vfmadd231ps zmm1, zmm2, zmm3: EVEX.512.66.0F38.W0 B8 /r — zmm1 = zmm2·zmm3 + zmm1, one rounding.</summary>
    public void Vfmadd231ps(int dst, int src1, int src2) => EvexRRR(2, 1, 0xB8, dst, src1, src2);

    /// <summary>vpaddd zmm1, zmm2, zmm3: EVEX.512.66.0F.W0 FE /r.</summary>
    public void Vpaddd(int dst, int src1, int src2) => EvexRRR(1, 1, 0xFE, dst, src1, src2);

    public void Vpaddd(int dst, int src1, Mem src2, bool broadcast = false) =>
        EvexRRM(1, 1, 0xFE, dst, src1, src2, broadcast ? 4 : 64, broadcast: broadcast);

    /// <summary>vpxord zmm1, zmm2, zmm3: EVEX.512.66.0F.W0 EF /r.</summary>
    public void Vpxord(int dst, int src1, int src2) => EvexRRR(1, 1, 0xEF, dst, src1, src2);

    /// <summary>vmovdqu32 zmm{k}{z}, m512: EVEX.512.F3.0F.W0 6F /r.</summary>
    public void Vmovdqu32(int dst, Mem src, int mask = 0, bool zeroing = false) => EvexRRM(1, 2, 0x6F, dst, 0, src, 64, mask, zeroing);

    /// <summary>vmovdqu32 m512{k}, zmm: EVEX.512.F3.0F.W0 7F /r.</summary>
    public void Vmovdqu32(Mem dst, int src, int mask = 0) => EvexRRM(1, 2, 0x7F, src, 0, dst, 64, mask);

    /// <summary>vmovdqu8 zmm{k}{z}, m512: EVEX.512.F2.0F.W0 6F /r.</summary>
    public void Vmovdqu8(int dst, Mem src, int mask = 0, bool zeroing = false) => EvexRRM(1, 3, 0x6F, dst, 0, src, 64, mask, zeroing);

    /// <summary>vmovdqu8 m512{k}, zmm: EVEX.512.F2.0F.W0 7F /r.</summary>
    public void Vmovdqu8(Mem dst, int src, int mask = 0) => EvexRRM(1, 3, 0x7F, src, 0, dst, 64, mask);

    /// <summary>vpbroadcastd zmm{k}{z}, m32: EVEX.512.66.0F38.W0 58 /r (tuple T1S, disp8·4).</summary>
    public void Vpbroadcastd(int dst, Mem src, int mask = 0, bool zeroing = false) => EvexRRM(2, 1, 0x58, dst, 0, src, 4, mask, zeroing);

    /// <summary>vpbroadcastd zmm, r32: EVEX.512.66.0F38.W0 7C /r.</summary>
    public void Vpbroadcastd(int dst, Gp src)
    {
        CheckZmm(dst);
        Evex(dst, 0, Hi(src), 2, false, 0, 1, 0, false, false);
        B(0x7C); ModRmReg(dst, (int)src);
    }
}
