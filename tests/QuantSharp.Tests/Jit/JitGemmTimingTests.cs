using System.Diagnostics;
using QuantSharp.Runtime.Kernels.Jit;
using Xunit.Abstractions;

namespace QuantSharp.Tests.Jit;

/// <summary>
/// Single-thread throughput of the generated int8 GEMM (GOPS = 2·M·N·K / seconds, best of a few repetitions).
/// Runs only when QUANTSHARP_JIT_TIMING=1, so the regular test run stays fast; prints the figures.
/// </summary>
public class JitGemmTimingTests(ITestOutputHelper output)
{
    [Fact]
    public void ReportThroughput()
    {
        if (Environment.GetEnvironmentVariable("QUANTSHARP_JIT_TIMING") != "1") return;
        foreach (var backend in new[] { JitBackend.Amx, JitBackend.Avx512Vnni })
        {
            using var gemm = JitInt8Gemm.TryCreate(maxBackend: backend);
            if (gemm is null || gemm.Backend != backend) continue;
            foreach (var (m, n, k) in new[] { (1024, 1024, 1024), (64, 4096, 4096), (1, 4096, 4096) })
            {
                var rnd = new Random(7);
                var a = new sbyte[m * k];
                var b = new sbyte[k * n];
                rnd.NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()));
                rnd.NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.AsSpan()));
                var c = new int[m * n];
                using var packed = gemm.PackB(b, k, n, n);
                gemm.Gemm(m, a, k, [], packed, [], c, n);
                double best = double.MaxValue;
                for (int rep = 0; rep < 5; rep++)
                {
                    var sw = Stopwatch.StartNew();
                    gemm.Gemm(m, a, k, [], packed, [], c, n);
                    best = Math.Min(best, sw.Elapsed.TotalSeconds);
                }
                output.WriteLine($"{backend} s8×s8 {m}×{n}×{k}, 1 thread: {2.0 * m * n * k / best / 1e9:F0} GOPS ({best * 1e3:F2} ms best of 5)");
            }
        }
    }
}
