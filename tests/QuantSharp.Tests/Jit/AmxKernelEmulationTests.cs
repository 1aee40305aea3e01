using System.Diagnostics;
using System.Globalization;
using QuantSharp.Runtime.Kernels.Jit;
using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Tests.Jit;

/// <summary>
/// The generated AMX kernel run on an interpreter of its own disassembly (objdump decodes the bytes; tile
/// instructions follow the SDM semantics: tileloadd row r from base + disp + r·stride with stride = index·scale,
/// tdpbssd/tdpbusd dst[m][n] += Σ_k Σ_i a[m][4k+i]·b[k][4n+i] over 4-byte groups). On this machine, which has no AMX,
/// it checks the kernel's loops, addressing and the packing against the scalar reference.
/// </summary>
public class AmxKernelEmulationTests
{
    [Fact]
    public void AmxKernelMatchesReferenceOnInterpreter()
    {
        if (!X64AssemblerTests.ObjdumpAvailable() || !ExecutableMemory.IsSupported) return;
        var programs = new Dictionary<int, List<(long Offset, string Text)>>();
        using var gemm = new JitInt8Gemm(JitBackend.Amx, (kernel, code, args) =>
        {
            List<(long, string)>? prog;
            lock (programs)
                if (!programs.TryGetValue(kernel, out prog)) programs[kernel] = prog = Decode(code);
            new TileMachine(prog).Run(args);
        });
        var rnd = new Random(99);
        foreach (var (m, n, k) in new[] { (1, 1, 1), (5, 33, 70), (32, 32, 64), (40, 70, 130), (64, 64, 200) })
        {
            var a = new sbyte[m * k];
            var au = new byte[m * k];
            var b = new sbyte[k * n];
            for (int i = 0; i < a.Length; i++) { a[i] = (sbyte)rnd.Next(-128, 128); au[i] = (byte)rnd.Next(256); }
            for (int i = 0; i < b.Length; i++) b[i] = (sbyte)rnd.Next(-128, 128);
            int[] bZero = [3];
            using var packed = gemm.PackB(b, k, n, n);
            foreach (int threads in new[] { 1, 2 })
            {
                var expected = new int[m * n];
                var actual = new int[m * n];
                IntGemmReference.Gemm<sbyte, sbyte>(m, n, k, a, k, [], b, n, bZero, expected, n);
                gemm.Gemm(m, a, k, [], packed, bZero, actual, n, threads);
                Assert.Equal(expected, actual);
                IntGemmReference.Gemm<byte, sbyte>(m, n, k, au, k, [128], b, n, [], expected, n);
                gemm.Gemm(m, au, k, [128], packed, [], actual, n, threads);
                Assert.Equal(expected, actual);
            }
        }
        Assert.Equal(2, programs.Count);
    }

    /// <summary>
    /// The engine's generated kernel in AMX mode (B packed with K padded to 64): 32×32 tdpbusd blocks run on the
    /// interpreter, the ragged rows/columns on the real VNNI variants; through the driver with zero points, u8 and
    /// s8 A, 1 and 2 threads, against the scalar reference.
    /// </summary>
    [JitBackendFact(JitBackend.Avx512Vnni)]
    public void EngineAmxKernelMatchesReferenceOnInterpreter()
    {
        Assert.True(X64AssemblerTests.ObjdumpAvailable(), "objdump (binutils) is needed to decode the AMX kernel");
        List<(long, string)>? program = null;
        int calls = 0;
        var kernel = new GeneratedInt8Kernel((code, args) =>
        {
            lock (this)
            {
                program ??= Decode(code);
                calls++;
            }
            new TileMachine(program).Run(args);
        });
        Assert.Equal(JitBackend.Amx, kernel.Backend);
        var rnd = new Random(31);
        foreach (var (m, n, k) in new[] { (32, 32, 64), (70, 50, 130), (64, 96, 200), (33, 47, 1), (100, 33, 64), (31, 64, 64) })
            foreach (bool signedA in new[] { false, true })
                foreach (int threads in new[] { 1, 2 })
                {
                    var a = Kernels.Int8GemmCheck.Bytes(rnd, m * k, signedA);
                    var b = (sbyte[])(Array)Kernels.Int8GemmCheck.Bytes(rnd, k * n, true);
                    int za = signedA ? -5 : 130;
                    int[] zb = Enumerable.Range(0, n).Select(j => j % 7 - 3).ToArray();
                    var packed = PackedInt8Weights.Pack(k, n, b, n, false, zb, kAlignment: 64);
                    var expected = new int[m * n];
                    var actual = new int[m * n];
                    if (signedA)
                    {
                        Int8GemmReference.Gemm<sbyte>(m, n, k, (sbyte[])(Array)a, k, za, b, n, false, zb, expected, n);
                        Int8Gemm.Multiply(m, (ReadOnlySpan<sbyte>)(sbyte[])(Array)a, k, za, packed, actual, n, threads, kernel);
                    }
                    else
                    {
                        Int8GemmReference.Gemm<byte>(m, n, k, a, k, za, b, n, false, zb, expected, n);
                        Int8Gemm.Multiply(m, (ReadOnlySpan<byte>)a, k, za, packed, actual, n, threads, kernel);
                    }
                    Assert.Equal(expected, actual);
                }
        Assert.True(calls > 0);
    }

    internal static List<(long, string)> Decode(byte[] code)
    {
        var path = Path.Combine(Path.GetTempPath(), $"quantsharp-amx-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(path, code);
        try
        {
            var psi = new ProcessStartInfo("/usr/bin/objdump", ["-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel", path])
            { RedirectStandardOutput = true, UseShellExecute = false };
            using var p = Process.Start(psi)!;
            var text = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            var result = new List<(long, string)>();
            foreach (var line in text.Split('\n'))
            {
                var parts = line.Split('\t');
                if (parts.Length < 3 || !parts[0].TrimEnd().EndsWith(':')) continue;
                result.Add((Convert.ToInt64(parts[0].Trim().TrimEnd(':'), 16), parts[2].Trim()));
            }
            return result;
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Interprets the subset of x86-64 + AMX the GEMM kernel uses, on real memory.</summary>
    internal sealed unsafe class TileMachine(List<(long Offset, string Text)> program)
    {
        private static readonly string[] Names = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
        private readonly long[] _r = new long[16];
        private readonly byte[][] _tiles = Enumerable.Range(0, 8).Select(_ => new byte[16 * 64]).ToArray();
        private readonly int[] _rows = new int[8], _colsb = new int[8];
        private readonly Stack<long> _stack = new();
        private bool _zero;

        public void Run(nint args)
        {
            _r[7] = args;
            var index = program.Select((p, i) => (p.Offset, i)).ToDictionary(x => x.Offset, x => x.i);
            int pc = 0;
            for (long steps = 0; ; steps++)
            {
                if (steps > 50_000_000) throw new InvalidOperationException("interpreter: runaway loop");
                var text = program[pc].Text;
                int sp = text.IndexOf(' ');
                string op = sp < 0 ? text : text[..sp];
                string[] ops = sp < 0 ? [] : SplitOperands(text[(sp + 1)..].Trim());
                pc++;
                switch (op)
                {
                    case "push": _stack.Push(_r[Reg(ops[0])]); break;
                    case "pop": _r[Reg(ops[0])] = _stack.Pop(); break;
                    case "ret": Assert.Empty(_stack); return;
                    case "mov":
                        if (ops[1].Contains('[')) _r[Reg(ops[0])] = *(long*)Address(ops[1]);
                        else if (IsReg(ops[1])) _r[Reg(ops[0])] = _r[Reg(ops[1])];
                        else _r[Reg(ops[0])] = Imm(ops[1]);
                        break;
                    case "lea": _r[Reg(ops[0])] = Address(ops[1]); break;
                    case "shl": _r[Reg(ops[0])] <<= (int)Imm(ops[1]); break;
                    case "add":
                        _r[Reg(ops[0])] += IsReg(ops[1]) ? _r[Reg(ops[1])] : Imm(ops[1]);
                        _zero = _r[Reg(ops[0])] == 0;
                        break;
                    case "dec": _zero = --_r[Reg(ops[0])] == 0; break;
                    case "jne":
                        if (!_zero) pc = index[Imm(ops[0])];
                        break;
                    case "ldtilecfg":
                    {
                        byte* cfg = (byte*)Address(ops[0]);
                        Assert.Equal(1, cfg[0]);
                        for (int t = 0; t < 8; t++) { _colsb[t] = *(ushort*)(cfg + 16 + 2 * t); _rows[t] = cfg[48 + t]; }
                        break;
                    }
                    case "tilerelease": Array.Clear(_rows); break;
                    case "tilezero": Array.Clear(_tiles[Tmm(ops[0])]); break;
                    case "tileloadd":
                    {
                        int t = Tmm(ops[0]);
                        var (addr, stride) = TileAddress(ops[1]);
                        for (int r = 0; r < _rows[t]; r++)
                            new ReadOnlySpan<byte>((byte*)(addr + r * stride), _colsb[t]).CopyTo(_tiles[t].AsSpan(r * 64));
                        break;
                    }
                    case "tilestored":
                    {
                        int t = Tmm(ops[1]);
                        var (addr, stride) = TileAddress(ops[0]);
                        for (int r = 0; r < _rows[t]; r++)
                            _tiles[t].AsSpan(r * 64, _colsb[t]).CopyTo(new Span<byte>((byte*)(addr + r * stride), _colsb[t]));
                        break;
                    }
                    case "tdpbssd":
                    case "tdpbusd":
                    {
                        int d = Tmm(ops[0]), x = Tmm(ops[1]), y = Tmm(ops[2]);
                        bool ua = op == "tdpbusd";
                        var dst = _tiles[d];
                        for (int mm = 0; mm < _rows[d]; mm++)
                            for (int nn = 0; nn < _colsb[d] / 4; nn++)
                            {
                                int acc = BitConverter.ToInt32(dst, mm * 64 + nn * 4);
                                for (int kk = 0; kk < _colsb[x] / 4; kk++)
                                    for (int i = 0; i < 4; i++)
                                    {
                                        byte av = _tiles[x][mm * 64 + kk * 4 + i];
                                        int aval = ua ? av : (sbyte)av;
                                        acc = unchecked(acc + aval * (sbyte)_tiles[y][kk * 64 + nn * 4 + i]);
                                    }
                                BitConverter.TryWriteBytes(dst.AsSpan(mm * 64 + nn * 4), acc);
                            }
                        break;
                    }
                    default: throw new InvalidOperationException($"interpreter: '{text}' is not modelled");
                }
            }
        }

        private static string[] SplitOperands(string s) => s.Split(',');
        private static bool IsReg(string s) => Array.IndexOf(Names, s) >= 0;
        private static int Reg(string s) => Array.IndexOf(Names, s) is var i and >= 0 ? i : throw new InvalidOperationException($"interpreter: register '{s}'");
        private static int Tmm(string s) => int.Parse(s.AsSpan(3), CultureInfo.InvariantCulture);
        private static long Imm(string s) => s.StartsWith("0x") ? Convert.ToInt64(s[2..], 16) : throw new InvalidOperationException($"interpreter: immediate '{s}'");

        /// <summary>[base+index*scale±disp] with optional size prefix → (base + disp, index·scale).</summary>
        private (long Address, long Index) Parts(string s)
        {
            s = s[(s.IndexOf('[') + 1)..s.IndexOf(']')];
            long addr = 0, idx = 0;
            foreach (var term in s.Replace("-", "+-").Split('+', StringSplitOptions.RemoveEmptyEntries))
            {
                if (term.Contains('*'))
                {
                    var f = term.Split('*');
                    idx = _r[Reg(f[0])] * int.Parse(f[1], CultureInfo.InvariantCulture);
                }
                else if (term.StartsWith("-0x")) addr -= Convert.ToInt64(term[3..], 16);
                else if (term.StartsWith("0x")) addr += Convert.ToInt64(term[2..], 16);
                else addr += _r[Reg(term)];
            }
            return (addr, idx);
        }

        private long Address(string s)
        {
            var (a, i) = Parts(s);
            return a + i;
        }

        private (long, long) TileAddress(string s) => Parts(s);
    }
}
