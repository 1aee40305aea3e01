using System.Diagnostics;
using System.Runtime.Intrinsics;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Bench;

/// <summary>
/// `gemv-quick [threads]`: the LLM-decode shape of issue 4 — INT8 GEMV 4096×4096 with the weights in DRAM — against
/// the machine's DRAM read bandwidth measured in the same run. Weights: 32 different packed matrices (512 MiB, far
/// more than the caches), used in turn, so every call streams its 16 MiB from DRAM. Bandwidth: a 512 MiB array
/// summed with 512-bit loads, split over the same number of threads, read as one sequential stream per thread and
/// as eight interleaved streams per thread (the GEMV reads several column panels at once); the larger figure is
/// the reference. Best of a few repetitions each.
/// </summary>
public static class GemvQuick
{
    private const int N = 4096, Matrices = 32;

    public static void Run(int threads)
    {
        var stream = new long[512 << 17]; // 512 MiB
        new Random(1).NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(stream.AsSpan()));
        double one = stream.Length * 8.0 / Best(() => Sum(stream, threads, 1), 3) / 1e9;
        double eight = stream.Length * 8.0 / Best(() => Sum(stream, threads, 8), 3) / 1e9;
        double dram = Math.Max(one, eight);
        Console.WriteLine($"DRAM read (512 MiB, Vector512 sum)   threads={threads}: {one,7:F2} GB/s one stream per thread, {eight,7:F2} GB/s eight streams per thread");

        var rnd = new Random(42);
        var raw = new byte[N * N];
        var weights = new PackedInt8Weights[Matrices];
        for (int i = 0; i < Matrices; i++)
        {
            rnd.NextBytes(raw);
            weights[i] = PackedInt8Weights.Pack(N, N, (sbyte[])(Array)raw, N, false, [0]);
        }
        var a = new byte[N];
        rnd.NextBytes(a);
        var c = new int[N];
        foreach (var kernel in Int8Gemm.SupportedKernels.Where(k => k.Name is not ("Scalar" or "Vector128")))
        {
            double t = Best(() =>
            {
                foreach (var w in weights) Int8Gemm.Multiply(1, (ReadOnlySpan<byte>)a, N, 3, w, c, N, threads, kernel);
            }, 3);
            double gbs = (double)Matrices * N * N / t / 1e9;
            Console.WriteLine($"{kernel.Name,-10} gemv 4096x4096 (weights in DRAM) threads={threads}: {gbs,7:F2} GB/s = {100 * gbs / dram,5:F1} % of DRAM read ({t / Matrices * 1e3:F3} ms per GEMV)");
        }
    }

    /// <summary>
    /// Σ of the array, four independent 512-bit accumulators per thread (so the adds are not the limit); each
    /// thread's range is read as <paramref name="streams"/> equal parts advanced in lockstep.
    /// </summary>
    private static unsafe long Sum(long[] data, int threads, int streams)
    {
        long total = 0;
        object gate = new();
        int unit = 32 * streams;
        Parallelism.For(threads, data.Length / unit, 256, (s, e) =>
        {
            Vector512<long> a0 = default, a1 = default, a2 = default, a3 = default;
            long part = (long)(e - s) * 32;
            fixed (long* p0 = data)
            {
                long* start = p0 + (long)s * unit;
                for (long i = 0; i < part; i += 32)
                    for (int q = 0; q < streams; q++)
                    {
                        long* p = start + q * part + i;
                        a0 += Vector512.Load(p);
                        a1 += Vector512.Load(p + 8);
                        a2 += Vector512.Load(p + 16);
                        a3 += Vector512.Load(p + 24);
                    }
            }
            lock (gate) total += Vector512.Sum(a0 + a1 + a2 + a3);
        });
        return total;
    }

    private static double Best(Action run, int reps)
    {
        run();
        double best = double.MaxValue;
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            run();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }
}
