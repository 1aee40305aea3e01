using System.Diagnostics;
using QuantSharp.Runtime.Kernels.Jit;

namespace QuantSharp.Tests.Jit;

/// <summary>
/// Every encoder method is emitted over register and addressing combinations; the bytes are disassembled by
/// objdump (Intel syntax) and each line is compared with the text built here from the operands.
/// </summary>
public class X64AssemblerTests
{
    private static readonly string[] Gp64 = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
    private static readonly string[] Gp32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d"];
    private static readonly string[] CondNames = ["jo", "jno", "jb", "jae", "je", "jne", "jbe", "ja", "js", "jns", "jp", "jnp", "jl", "jge", "jle", "jg"];

    private static string Hex(long v) => v < 0 ? "-0x" + (-v).ToString("x") : "0x" + v.ToString("x");

    /// <summary>objdump's Intel memory text: [base+index*scale±disp]; rbp/r13 bases always show a displacement.</summary>
    private static string MemText(Mem m)
    {
        var s = "[" + Gp64[(int)m.Base];
        if (m.Index is { } i) s += "+" + Gp64[(int)i] + "*" + m.Scale;
        bool forcedDisp = ((int)m.Base & 7) == 5;
        if (m.Disp != 0 || forcedDisp) s += (m.Disp < 0 ? "-" : "+") + "0x" + Math.Abs((long)m.Disp).ToString("x");
        return s + "]";
    }

    /// <summary>Memory operands covering every base, indexes with each scale, and no/8-bit/32-bit displacements.</summary>
    private static IEnumerable<Mem> Mems(bool needIndex = false)
    {
        int[] disps = [0, 8, -0x40, 0x400, -0x12345];
        int[] scales = [1, 2, 4, 8];
        for (int b = 0; b < 16; b++)
        {
            if (!needIndex)
                foreach (int d in disps) yield return Mem.At((Gp)b, d);
            int idx = (b * 5 + 3) % 16;
            if (idx == 4) idx = 12;
            yield return Mem.At((Gp)b, (Gp)idx, scales[b % 4], disps[b % disps.Length]);
            yield return Mem.At((Gp)b, (Gp)(15 - idx == 4 ? 13 : 15 - idx), scales[(b + 1) % 4], disps[(b + 2) % disps.Length]);
        }
    }

    private static string Ulong(long v) => "0x" + ((ulong)v).ToString("x");

    [Fact]
    public void EveryInstructionMatchesObjdump()
    {
        if (!ObjdumpAvailable()) return;
        var asm = new X64Assembler();
        var expected = new List<string>();
        void Add(Action<X64Assembler> emit, string text)
        {
            emit(asm);
            expected.Add(text);
        }

        for (int d = 0; d < 16; d++)
            for (int s = 0; s < 16; s += 3)
            {
                Gp gd = (Gp)d, gs = (Gp)s;
                Add(a => a.Mov(gd, gs), $"mov {Gp64[d]},{Gp64[s]}");
                Add(a => a.Add(gd, gs), $"add {Gp64[d]},{Gp64[s]}");
                Add(a => a.Sub(gd, gs), $"sub {Gp64[d]},{Gp64[s]}");
                Add(a => a.Cmp(gd, gs), $"cmp {Gp64[d]},{Gp64[s]}");
                Add(a => a.Xor(gd, gs), $"xor {Gp64[d]},{Gp64[s]}");
                Add(a => a.Xor32(gd, gs), $"xor {Gp32[d]},{Gp32[s]}");
                Add(a => a.Imul(gd, gs), $"imul {Gp64[d]},{Gp64[s]}");
            }
        for (int r = 0; r < 16; r++)
        {
            Gp g = (Gp)r;
            foreach (int imm in new[] { 5, 127, 128, 0x12345 })
            {
                Add(a => a.Add(g, imm), $"add {Gp64[r]},{Hex(imm)}");
                Add(a => a.Sub(g, imm), $"sub {Gp64[r]},{Hex(imm)}");
                Add(a => a.Cmp(g, imm), $"cmp {Gp64[r]},{Hex(imm)}");
                Add(a => a.Mov(g, (long)imm), $"mov {Gp64[r]},{Hex(imm)}");
            }
            Add(a => a.Add(g, -16), $"add {Gp64[r]},{Ulong(-16)}");
            Add(a => a.Mov(g, 0x123456789AL), $"movabs {Gp64[r]},0x123456789a");
            Add(a => a.Inc(g), $"inc {Gp64[r]}");
            Add(a => a.Dec(g), $"dec {Gp64[r]}");
            Add(a => a.Shl(g, 4), $"shl {Gp64[r]},0x4");
            Add(a => a.Push(g), $"push {Gp64[r]}");
            Add(a => a.Pop(g), $"pop {Gp64[r]}");
        }
        int regCycle = 0;
        foreach (var m in Mems())
        {
            int r = regCycle++ % 16;
            Gp g = (Gp)r;
            Add(a => a.Mov(g, m), $"mov {Gp64[r]},QWORD PTR {MemText(m)}");
            Add(a => a.Mov(m, g), $"mov QWORD PTR {MemText(m)},{Gp64[r]}");
            Add(a => a.Add(g, m), $"add {Gp64[r]},QWORD PTR {MemText(m)}");
            Add(a => a.Lea(g, m), $"lea {Gp64[r]},{MemText(m)}");
            Add(a => a.Prefetcht0(m), $"prefetcht0 BYTE PTR {MemText(m)}");
            Add(a => a.Prefetcht1(m), $"prefetcht1 BYTE PTR {MemText(m)}");
            Add(a => a.Prefetcht2(m), $"prefetcht2 BYTE PTR {MemText(m)}");
            Add(a => a.Ldtilecfg(m), $"ldtilecfg {MemText(m)}");
            Add(a => a.Sttilecfg(m), $"sttilecfg {MemText(m)}");
            int z = (r * 7 + regCycle) % 32, v = (r * 3 + 5) % 32;
            Add(a => a.Vmovdqu32(z, m), $"vmovdqu32 zmm{z},ZMMWORD PTR {MemText(m)}");
            Add(a => a.Vmovdqu32(m, z), $"vmovdqu32 ZMMWORD PTR {MemText(m)},zmm{z}");
            Add(a => a.Vmovdqu8(z, m), $"vmovdqu8 zmm{z},ZMMWORD PTR {MemText(m)}");
            Add(a => a.Vmovdqu8(m, z), $"vmovdqu8 ZMMWORD PTR {MemText(m)},zmm{z}");
            int k = 1 + r % 7;
            Add(a => a.Vmovdqu32(z, m, k, zeroing: true), $"vmovdqu32 zmm{z}{{k{k}}}{{z}},ZMMWORD PTR {MemText(m)}");
            Add(a => a.Vmovdqu32(m, z, k), $"vmovdqu32 ZMMWORD PTR {MemText(m)}{{k{k}}},zmm{z}");
            Add(a => a.Vmovdqu8(z, m, k), $"vmovdqu8 zmm{z}{{k{k}}},ZMMWORD PTR {MemText(m)}");
            Add(a => a.Vpbroadcastd(z, m), $"vpbroadcastd zmm{z},DWORD PTR {MemText(m)}");
            Add(a => a.Vpdpbusd(z, v, m), $"vpdpbusd zmm{z},zmm{v},ZMMWORD PTR {MemText(m)}");
            Add(a => a.Vpdpbusd(z, v, m, broadcast: true), $"vpdpbusd zmm{z},zmm{v},DWORD BCST {MemText(m)}");
            Add(a => a.Vpaddd(z, v, m), $"vpaddd zmm{z},zmm{v},ZMMWORD PTR {MemText(m)}");
            Add(a => a.Vmulps(z, v, m), $"vmulps zmm{z},zmm{v},ZMMWORD PTR {MemText(m)}");
            Add(a => a.Vmulps(z, v, m, broadcast: true), $"vmulps zmm{z},zmm{v},DWORD BCST {MemText(m)}");
        }
        regCycle = 0;
        foreach (var m in Mems(needIndex: true))
        {
            int t = regCycle++ % 8;
            Add(a => a.Tileloadd(t, m), $"tileloadd tmm{t},{MemText(m)}");
            Add(a => a.Tileloaddt1(t, m), $"tileloaddt1 tmm{t},{MemText(m)}");
            Add(a => a.Tilestored(m, t), $"tilestored {MemText(m)},tmm{t}");
        }
        for (int t = 0; t < 8; t++)
        {
            int t1 = t, t2 = (t + 3) % 8, t3 = (t + 5) % 8;
            Add(a => a.Tilezero(t1), $"tilezero tmm{t1}");
            Add(a => a.Tdpbssd(t1, t2, t3), $"tdpbssd tmm{t1},tmm{t2},tmm{t3}");
            Add(a => a.Tdpbsud(t1, t2, t3), $"tdpbsud tmm{t1},tmm{t2},tmm{t3}");
            Add(a => a.Tdpbusd(t1, t2, t3), $"tdpbusd tmm{t1},tmm{t2},tmm{t3}");
            Add(a => a.Tdpbuud(t1, t2, t3), $"tdpbuud tmm{t1},tmm{t2},tmm{t3}");
        }
        Add(a => a.Tilerelease(), "tilerelease");
        for (int z = 0; z < 32; z++)
        {
            int z1 = z, z2 = (z + 11) % 32, z3 = (z + 23) % 32;
            Add(a => a.Vpdpbusd(z1, z2, z3), $"vpdpbusd zmm{z1},zmm{z2},zmm{z3}");
            Add(a => a.Vpdpbusd(z1, z2, z3, 1 + z % 7), $"vpdpbusd zmm{z1}{{k{1 + z % 7}}},zmm{z2},zmm{z3}");
            Add(a => a.Vpaddd(z1, z2, z3), $"vpaddd zmm{z1},zmm{z2},zmm{z3}");
            Add(a => a.Vpxord(z1, z2, z3), $"vpxord zmm{z1},zmm{z2},zmm{z3}");
            Add(a => a.Vcvtdq2ps(z1, z2), $"vcvtdq2ps zmm{z1},zmm{z2}");
            Add(a => a.Vfmadd231ps(z1, z2, z3), $"vfmadd231ps zmm{z1},zmm{z2},zmm{z3}");
            Add(a => a.Vpbroadcastd(z1, (Gp)(z % 16)), $"vpbroadcastd zmm{z1},{Gp32[z % 16]}");
        }
        for (int r = 0; r < 16; r++)
        {
            int k = r % 8;
            Gp g = (Gp)r;
            Add(a => a.KmovwFromGp(k, g), $"kmovw k{k},{Gp32[r]}");
            Add(a => a.KmovqFromGp(k, g), $"kmovq k{k},{Gp64[r]}");
        }
        Add(a => a.Vzeroupper(), "vzeroupper");
        Add(a => a.Xgetbv(), "xgetbv");

        // Jumps: backward short, backward near, forward near, every condition code.
        var back = new Label();
        asm.Bind(back);
        int backPos = asm.Length;
        Add(a => a.J(Cond.Ne, back), $"jne {Hex(backPos)}");
        Add(a => a.Jmp(back), $"jmp {Hex(backPos)}");
        for (int i = 0; i < 40; i++) Add(a => a.Mov(Gp.R9, (long)0x12345), "mov r9,0x12345");
        Add(a => a.J(Cond.E, back), $"je {Hex(backPos)}");
        var fwd = new Label();
        var fwdIndex = new List<int>();
        for (int c = 0; c < 16; c++)
        {
            var cc = (Cond)c;
            fwdIndex.Add(expected.Count);
            Add(a => a.J(cc, fwd), CondNames[c]);
        }
        fwdIndex.Add(expected.Count);
        Add(a => a.Jmp(fwd), "jmp");
        Add(a => a.Ret(), "ret");
        int fwdPos = asm.Length;
        asm.Bind(fwd);
        foreach (int i in fwdIndex) expected[i] += " " + Hex(fwdPos);
        Add(a => a.Ret(), "ret");

        var actual = Disassemble(asm.ToArray());
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            Assert.Equal(Normalize(expected[i]), actual[i]);
    }

    [Fact]
    public void TileOperandsWithoutStrideAreRejected()
    {
        var asm = new X64Assembler();
        Assert.Throws<QuantSharpException>(() => asm.Tileloadd(0, Mem.At(Gp.Rax)));
        Assert.Throws<QuantSharpException>(() => asm.Tdpbssd(8, 0, 1));
        Assert.Throws<QuantSharpException>(() => asm.Mov(Gp.Rax, Mem.At(Gp.Rax, Gp.Rsp, 1)));
        var unbound = new Label();
        asm.Jmp(unbound);
        Assert.Throws<QuantSharpException>(() => asm.ToArray());
    }

    /// <summary>
    /// The generated GEMM kernels decode completely (no "(bad)"), end in ret, and contain the tile and vector
    /// operations of their inner loops; the AMX kernel is checked this way on machines without AMX too.
    /// </summary>
    [Fact]
    public void GeneratedKernelsDisassembleCleanly()
    {
        if (!ObjdumpAvailable()) return;
        foreach (bool unsignedA in new[] { false, true })
        {
            var text = Disassemble(Int8GemmKernels.EmitAmx(unsignedA));
            Assert.DoesNotContain(text, l => l.Contains("(bad)"));
            Assert.Equal("ret", text[^1]);
            Assert.Equal(4, text.Count(l => l.StartsWith(unsignedA ? "tdpbusd " : "tdpbssd ")));
            Assert.Equal(["tdpbssd tmm0,tmm4,tmm6", "tdpbssd tmm2,tmm5,tmm6", "tdpbssd tmm1,tmm4,tmm7", "tdpbssd tmm3,tmm5,tmm7"],
                text.Where(l => l.StartsWith("tdpb")).Select(l => "tdpbssd" + l[7..]));
            Assert.Equal(4, text.Count(l => l.StartsWith("tileloadd ")));
            Assert.Equal(4, text.Count(l => l.StartsWith("tilestored ")));
            Assert.Contains("ldtilecfg [rax]", text);
            Assert.Contains("tilerelease", text);
        }
        for (int rows = 1; rows <= Int8GemmKernels.VnniMaxRows; rows++)
        {
            var text = Disassemble(Int8GemmKernels.EmitVnni(rows));
            Assert.DoesNotContain(text, l => l.Contains("(bad)"));
            Assert.Equal("ret", text[^1]);
            Assert.Equal(4 * rows, text.Count(l => l.StartsWith("vpdpbusd ")));
            Assert.Equal(rows, text.Count(l => l.StartsWith("vpbroadcastd ")));
        }
        foreach (bool prefetch in new[] { false, true })
            for (int rows = 1; rows <= EngineKernelEmitter.MaxRows; rows++)
                for (int blocks = 1; blocks <= EngineKernelEmitter.MaxBlocks; blocks++)
                {
                    var text = Disassemble(EngineKernelEmitter.Emit(rows, blocks, prefetch));
                    Assert.DoesNotContain(text, l => l.Contains("(bad)"));
                    // Prefetching variants: PrefetchLines prefetcht1 per k group from rax, and the pointer written back.
                    Assert.Equal(prefetch ? EngineKernelEmitter.PrefetchLines : 0, text.Count(l => l.StartsWith("prefetcht1 BYTE PTR [rax")));
                    Assert.Equal(prefetch, text.Contains("mov QWORD PTR [rdi+0x68],rax"));
                    Assert.Equal("ret", text[^1]);
                    Assert.Equal(rows * blocks, text.Count(l => l.StartsWith("vpdpbusd ")));
                    // One masked store per row (the last block), the others unmasked.
                    // Stores: the memory operand comes first (vmovdqu32 ZMMWORD PTR [..]{k1},zmmN).
                    var stores = text.Where(l => l.StartsWith("vmovdqu32 ") && l.IndexOf('[') is >= 0 and var m && m < l.IndexOf(",zmm")).ToList();
                    Assert.Equal(rows * blocks, stores.Count);
                    Assert.Equal(rows, stores.Count(l => l.Contains("{k1}")));
                }
        var amx = Disassemble(EngineKernelEmitter.EmitAmx());
        Assert.DoesNotContain(amx, l => l.Contains("(bad)"));
        Assert.Equal(4, amx.Count(l => l.StartsWith("tdpbusd ")));
        Assert.Contains("tileloadd tmm4,[r14+r9*1]", amx);
        Assert.Contains("tileloadd tmm6,[r15+rbp*1]", amx);
    }

    private static string Normalize(string s)
    {
        s = s.Trim();
        int sp = s.IndexOfAny([' ', '\t']);
        return sp < 0 ? s : s[..sp] + " " + s[sp..].Trim();
    }

    internal static bool ObjdumpAvailable() => File.Exists("/usr/bin/objdump") && OperatingSystem.IsLinux();

    /// <summary>Runs objdump on the bytes; returns one normalized "mnemonic operands" string per instruction.</summary>
    internal static List<string> Disassemble(byte[] code)
    {
        var path = Path.Combine(Path.GetTempPath(), $"quantsharp-x64-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(path, code);
        try
        {
            var psi = new ProcessStartInfo("/usr/bin/objdump", ["-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel", path])
            {
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            using var p = Process.Start(psi)!;
            var text = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            var result = new List<string>();
            foreach (var line in text.Split('\n'))
            {
                // "  1f:\t48 89 c8             \tmov    rax,rcx"; continuation lines have bytes only (two fields).
                var parts = line.Split('\t');
                if (parts.Length < 3 || !parts[0].TrimEnd().EndsWith(':')) continue;
                result.Add(Normalize(parts[2]));
            }
            return result;
        }
        finally
        {
            File.Delete(path);
        }
    }
}
