using System.Diagnostics;
using QuantSharp.Runtime.Kernels.Jit;

namespace QuantSharp.Bench;

/// <summary>
/// `jit-quick`: single-thread throughput of the generated int8 GEMM backends available on this CPU
/// (GOPS = 2·M·N·K / seconds, best of 5 after one warm-up). A quick Stopwatch pass; AmxGemmBenchmarks is the
/// BenchmarkDotNet version.
/// </summary>
public static class JitGemmQuick
{
    public static void Run()
    {
        foreach (var backend in new[] { JitBackend.Amx, JitBackend.Avx512Vnni })
        {
            using var gemm = JitInt8Gemm.TryCreate(maxBackend: backend);
            if (gemm is null || gemm.Backend != backend)
            {
                Console.WriteLine($"{backend}: not available on this CPU/OS");
                continue;
            }
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
                Console.WriteLine($"{backend} s8×s8 {m}×{n}×{k}, 1 thread: {2.0 * m * n * k / best / 1e9:F0} GOPS ({best * 1e3:F2} ms best of 5)");
            }
        }
    }
}
