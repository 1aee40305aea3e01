using QuantSharp.Runtime.Kernels.Jit;
using QuantSharp.Runtime.Kernels.Reference;
using Xunit.Abstractions;

namespace QuantSharp.Tests.Jit;

/// <summary>Generated kernels against the scalar reference, bit for bit; executable memory; detection and opt-out.</summary>
public class JitInt8GemmTests(ITestOutputHelper output)
{
    [Fact]
    public unsafe void ExecutableMemoryRunsCodeAndIsNeverWritableAndExecutable()
    {
        if (!ExecutableMemory.IsSupported) return;
        var asm = new X64Assembler();
        asm.Lea(Gp.Rax, Mem.At(Gp.Rdi, Gp.Rsi, 1));
        asm.Ret();
        using var mem = new ExecutableMemory(asm.ToArray());
        var fn = (delegate* unmanaged<long, long, long>)mem.Address;
        Assert.Equal(40000000123L, fn(40000000000L, 123));
        if (OperatingSystem.IsLinux())
        {
            long addr = mem.Address;
            var line = File.ReadAllLines("/proc/self/maps").First(l =>
            {
                var range = l.Split(' ')[0].Split('-');
                return Convert.ToInt64(range[0], 16) <= addr && addr < Convert.ToInt64(range[1], 16);
            });
            Assert.StartsWith("r-x", line.Split(' ')[1]);
        }
    }

    [Fact]
    public void GeneratedCodeCanBeTurnedOff()
    {
        Assert.True(CpuFeatures.IsDisabledValue("0"));
        Assert.True(CpuFeatures.IsDisabledValue(" off "));
        Assert.False(CpuFeatures.IsDisabledValue("1"));
        Assert.False(CpuFeatures.IsDisabledValue(null));
        Assert.Equal(JitBackend.None, CpuFeatures.Best(allowGenerated: false));
        Assert.Null(JitInt8Gemm.TryCreate(allowGenerated: false));
        // The environment variable itself is exercised in child processes (Int8IsaTests sets QUANTSHARP_JIT=0 there):
        // changing it in this process would switch kernels under tests running in parallel.
    }

    [Fact]
    public void DetectionIsConsistent()
    {
        var best = CpuFeatures.Best();
        output.WriteLine($"backend {best}, AMX {CpuFeatures.HasAmx}, AVX512-VNNI {CpuFeatures.HasAvx512Vnni}, XCR0 0x{CpuFeatures.Xcr0:x}");
        if (best == JitBackend.Amx) Assert.True(CpuFeatures.HasAmx);
        if (best == JitBackend.Avx512Vnni) Assert.True(CpuFeatures.HasAvx512Vnni);
        if (CpuFeatures.HasAvx512Vnni) Assert.Equal(0xE6UL, CpuFeatures.Xcr0 & 0xE6);
        using var gemm = JitInt8Gemm.TryCreate();
        Assert.Equal(best, gemm?.Backend ?? JitBackend.None);
    }

    private static readonly (int M, int N, int K)[] Shapes =
    [
        (1, 1, 1), (1, 64, 64), (1, 77, 300), (2, 3, 5), (6, 64, 4), (7, 13, 5), (16, 16, 64), (17, 33, 65),
        (32, 32, 128), (33, 65, 130), (64, 96, 192), (45, 130, 257), (5, 200, 63), (100, 31, 17),
    ];

    [JitBackendFact(JitBackend.Avx512Vnni)]
    public void Avx512VnniMatchesReference()
    {
        using var gemm = JitInt8Gemm.TryCreate(maxBackend: JitBackend.Avx512Vnni);
        Assert.NotNull(gemm);
        Assert.Equal(JitBackend.Avx512Vnni, gemm.Backend);
        CheckAll(gemm);
    }

    [JitBackendFact(JitBackend.Amx)]
    public void AmxMatchesReference()
    {
        using var gemm = JitInt8Gemm.TryCreate();
        Assert.NotNull(gemm);
        Assert.Equal(JitBackend.Amx, gemm.Backend);
        CheckAll(gemm);
    }

    [Fact]
    public void PackedWeightsOfAnotherBackendAreRejected()
    {
        using var gemm = JitInt8Gemm.TryCreate(maxBackend: JitBackend.Avx512Vnni);
        if (gemm is null) return;
        Assert.Throws<QuantSharpException>(() => gemm.PackB(new sbyte[4], 2, 3, 3));
        using var b = gemm.PackB(new sbyte[6], 2, 3, 3);
        Assert.Throws<QuantSharpException>(() => gemm.Gemm(2, new sbyte[3], 2, [], b, [], new int[6], 3));
    }

    private static void CheckAll(JitInt8Gemm gemm)
    {
        var rnd = new Random(1234);
        int shapeIndex = 0;
        foreach (var (m, n, k) in Shapes)
        {
            shapeIndex++;
            int lda = k + shapeIndex % 3, ldb = n + shapeIndex % 2, ldc = n + shapeIndex % 4;
            var a8 = new sbyte[(m - 1) * lda + k];
            var au = new byte[a8.Length];
            var b = new sbyte[(k - 1) * ldb + n];
            // Extremes first so the worst case (−128·−128, 255·127 summed over K) is always present.
            for (int i = 0; i < a8.Length; i++)
            {
                a8[i] = i < 4 ? sbyte.MinValue : (sbyte)rnd.Next(-128, 128);
                au[i] = i < 4 ? byte.MaxValue : (byte)rnd.Next(0, 256);
            }
            for (int i = 0; i < b.Length; i++) b[i] = i < 4 ? (i % 2 == 0 ? sbyte.MinValue : sbyte.MaxValue) : (sbyte)rnd.Next(-128, 128);
            int[] aZero = (shapeIndex % 3) switch { 0 => [], 1 => [rnd.Next(-5, 6)], _ => Enumerable.Range(0, m).Select(_ => rnd.Next(-5, 6)).ToArray() };
            int[] bZero = (shapeIndex % 4) switch { 0 => [], 1 => [rnd.Next(-5, 6)], 2 => [], _ => Enumerable.Range(0, n).Select(_ => rnd.Next(-5, 6)).ToArray() };
            using var packed = gemm.PackB(b, k, n, ldb);
            foreach (int threads in new[] { 1, 2 })
            {
                var expected = new int[(m - 1) * ldc + n];
                var actual = new int[expected.Length];
                IntGemmReference.Gemm<sbyte, sbyte>(m, n, k, a8, lda, aZero, b, ldb, bZero, expected, ldc);
                gemm.Gemm(m, a8, lda, aZero, packed, bZero, actual, ldc, threads);
                AssertRows(expected, actual, m, n, ldc, $"s8 {m}×{n}×{k} threads {threads}");

                int[] uZero = aZero.Select(z => z + 128).ToArray();
                IntGemmReference.Gemm<byte, sbyte>(m, n, k, au, lda, uZero, b, ldb, bZero, expected, ldc);
                Array.Clear(actual);
                gemm.Gemm(m, au, lda, uZero, packed, bZero, actual, ldc, threads);
                AssertRows(expected, actual, m, n, ldc, $"u8 {m}×{n}×{k} threads {threads}");
            }
        }
    }

    private static void AssertRows(int[] expected, int[] actual, int m, int n, int ldc, string what)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                if (expected[i * ldc + j] != actual[i * ldc + j])
                    Assert.Fail($"{what}: C[{i},{j}] = {actual[i * ldc + j]}, expected {expected[i * ldc + j]}");
    }
}
