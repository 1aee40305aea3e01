using System.Diagnostics;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Kernels.Jit;
using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Runtime.Lowering;

namespace QuantSharp.Bench;

/// <summary>
/// `jit-epilogue [REPS] [THREADS,...]`: int8 GEMM plus requantization to u8 (per-channel float multipliers), as the
/// lowered Gemm/MatMul runs it: "separate" = the product into an m×N int32 matrix, then a parallel requantization
/// pass over its rows (the session-2 operator), vs "fused" = the driver hands each finished tile to the requantizer
/// while it is in cache (<see cref="IInt8GemmTileSink"/>). Interleaved call by call; best / median of REPS in ms.
/// `JITS_CLOCK=cpu` times one-thread calls by thread CPU time (see jit-shapes). `JITE_SHAPES="MxNxK;..."` replaces the shape list.
/// </summary>
public static unsafe class JitEpilogueQuick
{
    private static readonly (int M, int N, int K)[] DefaultShapes =
    [
        (1024, 1024, 1024), (256, 4096, 4096), (197, 768, 768), (197, 3072, 768), (197, 768, 3072), (3136, 64, 288), (784, 128, 576),
    ];

    public static void Run(string[] args)
    {
        int reps = args.Length > 0 ? int.Parse(args[0]) : 20;
        int[] threadCounts = args.Length > 1 ? args[1].Split(',').Select(int.Parse).ToArray() : [1, 2];
        var shapes = Environment.GetEnvironmentVariable("JITE_SHAPES") is { Length: > 0 } e
            ? e.Split(';').Select(x => x.Split('x').Select(int.Parse).ToArray()).Select(v => (v[0], v[1], v[2])).ToArray()
            : DefaultShapes;
        bool cpuClock = Environment.GetEnvironmentVariable("JITS_CLOCK") == "cpu" && OperatingSystem.IsLinux();
        Console.WriteLine($"int8 GEMM + requantization to u8, kernel {Int8Gemm.Default.Name}; best / median of {reps} (ms, {(cpuClock ? "thread CPU time for 1 thread, wall for more" : "wall")}); load average before: {File.ReadAllText("/proc/loadavg").Trim()}");
        foreach (var (m, n, k) in shapes)
        {
            var rnd = new Random(3);
            var a = new byte[m * k];
            var w = new sbyte[k * n];
            rnd.NextBytes(a);
            rnd.NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(w.AsSpan()));
            var packed = PackedInt8Weights.Pack(k, n, w, n, false, [0]);
            var accScale = Enumerable.Range(0, n).Select(j => 1e-4f * (1 + j % 7)).ToArray();
            var bias = Enumerable.Range(0, n).Select(j => j % 11 - 5f).ToArray();
            var rq = new Requantizer(n, accScale, bias, 0.5f, 128, 0, 255, RequantizationMode.Float);
            var acc = new int[m * n];
            var y1 = new byte[m * n];
            var y2 = new byte[m * n];
            foreach (int threads in threadCounts)
            {
                var times = new[] { new List<double>(), new List<double>() };
                for (int rep = -1; rep < reps; rep++)
                {
                    bool cpu = threads == 1 && cpuClock;
                    double t0 = cpu ? CpuClock.ThreadSeconds() : 0;
                    var sw = Stopwatch.StartNew();
                    Int8Gemm.Multiply(m, a, k, 3, packed, acc, n, threads);
                    Parallelism.For(threads, m, 16, (lo, hi) =>
                    {
                        for (int r = lo; r < hi; r++)
                        {
                            var row = acc.AsSpan(r * n, n);
                            rq.ApplyRow(row, 0);
                            Narrow(row, y1.AsSpan(r * n, n));
                        }
                    });
                    if (rep >= 0) times[0].Add(cpu ? (CpuClock.ThreadSeconds() - t0) * 1e3 : sw.Elapsed.TotalMilliseconds);
                    t0 = cpu ? CpuClock.ThreadSeconds() : 0;
                    sw.Restart();
                    Int8Gemm.Multiply(m, a, k, 3, packed, new Sink(rq, y2, n), threads);
                    if (rep >= 0) times[1].Add(cpu ? (CpuClock.ThreadSeconds() - t0) * 1e3 : sw.Elapsed.TotalMilliseconds);
                }
                if (!y1.AsSpan().SequenceEqual(y2)) throw new InvalidOperationException($"fused output differs at {m}x{n}x{k}");
                var s0 = times[0].Order().ToArray();
                var s1 = times[1].Order().ToArray();
                Console.WriteLine($"  {m,4}×{n,5}×{k,4} {threads}T: separate {s0[0],8:F3} / {s0[s0.Length / 2],8:F3}   fused {s1[0],8:F3} / {s1[s1.Length / 2],8:F3}   best ratio fused/separate {s1[0] / s0[0]:F3}");
            }
        }
        Console.WriteLine($"load average after: {File.ReadAllText("/proc/loadavg").Trim()}");
    }

    private static void Narrow(ReadOnlySpan<int> v, Span<byte> dst)
    {
        for (int i = 0; i < v.Length; i++) dst[i] = (byte)v[i];
    }

    private sealed class Sink(Requantizer rq, byte[] y, int n) : IInt8GemmTileSink
    {
        public void Consume(int* tile, int ldt, int row0, int rows, int col0, int cols)
        {
            for (int i = 0; i < rows; i++)
            {
                var row = new Span<int>(tile + (long)i * ldt, cols);
                rq.ApplyRow(row, col0);
                Narrow(row, y.AsSpan((row0 + i) * n + col0, cols));
            }
        }
    }
}
