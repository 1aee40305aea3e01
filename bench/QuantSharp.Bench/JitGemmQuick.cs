using System.Diagnostics;
using QuantSharp.Runtime.Kernels.Jit;
using QuantSharp.Runtime.Kernels.Simd;

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
        Engine();
    }

    /// <summary>
    /// The integer engine's path: <see cref="Int8Gemm"/> (A panel copy, zero-point correction with a_zero_point 3
    /// and b_zero_point 1, u8 A) on each supported kernel, kernels interleaved within each repetition so machine
    /// load affects them alike; best of 5 per kernel after one warm-up.
    /// </summary>
    private static void Engine()
    {
        var kernels = Int8Gemm.SupportedKernels.Where(k => k.Name is GeneratedInt8Kernel.KernelName or "AvxVnni" or "Avx512BW").ToArray();
        Console.WriteLine($"engine driver (Int8Gemm.Multiply, u8×s8 with zero points), default kernel {Int8Gemm.Default.Name}:");
        foreach (var (m, n, k) in (Environment.GetEnvironmentVariable("JITQ_SHAPES") is { } e ? e.Split(";").Select(x => x.Split("x").Select(int.Parse).ToArray()).Select(v => (v[0], v[1], v[2])).ToArray() : new[] { (1024, 1024, 1024), (64, 4096, 4096), (1, 4096, 4096), (3136, 64, 288), (784, 128, 576) }))
        {
            var rnd = new Random(7);
            var a = new byte[m * k];
            var b = new sbyte[k * n];
            rnd.NextBytes(a);
            rnd.NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.AsSpan()));
            var c = new int[m * n];
            var packed = PackedInt8Weights.Pack(k, n, b, n, false, [1]);
            var best = new double[kernels.Length];
            Array.Fill(best, double.MaxValue);
            foreach (var kern in kernels) Int8Gemm.Multiply(m, a, k, 3, packed, c, n, 1, kern);
            for (int rep = 0; rep < 5; rep++)
                for (int i = 0; i < kernels.Length; i++)
                {
                    var sw = Stopwatch.StartNew();
                    Int8Gemm.Multiply(m, a, k, 3, packed, c, n, 1, kernels[i]);
                    best[i] = Math.Min(best[i], sw.Elapsed.TotalSeconds);
                }
            for (int i = 0; i < kernels.Length; i++)
                Console.WriteLine($"  {kernels[i].Name,-15} u8×s8 {m}×{n}×{k}, 1 thread: {2.0 * m * n * k / best[i] / 1e9:F0} GOPS ({best[i] * 1e3:F3} ms best of 5)");
        }
    }
}
