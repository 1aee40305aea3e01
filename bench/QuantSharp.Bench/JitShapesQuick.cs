using System.Diagnostics;
using QuantSharp.Runtime.Kernels.Jit;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Bench;

/// <summary>
/// `jit-shapes [REPS] [THREADS,...]`: the integer engine's int8 GEMM (<see cref="Int8Gemm"/> with the generated
/// kernel, u8 A with zero point 3, s8 B with zero point 1) over the issue-6 shapes, "before" (the session-2 plan:
/// row-major 96×8 tiles, kernel without software prefetch) and "after" (the default plan and kernel) interleaved call
/// by call so machine load hits both alike; GOPS = 2·M·N·K / time, best and median of REPS calls. B matrices of
/// 8 MiB or more cycle through copies spanning 256 MiB (<see cref="WeightCopies"/>), so they come from DRAM as in
/// LLM inference. `JITS_SHAPES="MxNxK;..."` replaces the shape list.
/// </summary>
public static class JitShapesQuick
{
    private static readonly (int M, int N, int K)[] DefaultShapes =
    [
        (1024, 1024, 1024), (1, 4096, 4096), (16, 4096, 4096), (64, 4096, 4096), (96, 4096, 4096),
        (128, 4096, 4096), (256, 4096, 4096), (512, 4096, 4096), (256, 11008, 4096),
    ];

    public static void Run(string[] args)
    {
        int reps = args.Length > 0 ? int.Parse(args[0]) : 10;
        int[] threadCounts = args.Length > 1 ? args[1].Split(',').Select(int.Parse).ToArray() : [1, 2];
        var shapes = Environment.GetEnvironmentVariable("JITS_SHAPES") is { Length: > 0 } e
            ? e.Split(';').Select(x => x.Split('x').Select(int.Parse).ToArray()).Select(v => (v[0], v[1], v[2])).ToArray()
            : DefaultShapes;
        if (!GeneratedInt8Kernel.Instance.IsSupported)
        {
            Console.WriteLine("generated int8 kernel not supported on this machine");
            return;
        }
        var variants = Variants();
        // JITS_CLOCK=cpu: one-thread calls are timed by the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), which leaves
        // out the time the thread spends descheduled on a busy machine (cache damage by other jobs stays in).
        bool cpuClock = Environment.GetEnvironmentVariable("JITS_CLOCK") == "cpu" && OperatingSystem.IsLinux();
        Console.WriteLine($"clock: {(cpuClock ? "thread CPU time for 1 thread, wall time for more" : "wall time")}; load average before: {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine($"int8 GEMM through the engine driver, kernel Jit ({GeneratedInt8Kernel.Instance.Backend}), u8×s8 with zero points; best / median of {reps}, GOPS");
        foreach (var (m, n, k) in shapes)
        {
            var rnd = new Random(7);
            var a = new byte[m * k];
            var b = new sbyte[k * n];
            rnd.NextBytes(a);
            rnd.NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.AsSpan()));
            int copies = WeightCopies.For((long)k * n);
            var packs = Enumerable.Range(0, copies).Select(_ => PackedInt8Weights.Pack(k, n, b, n, false, [1])).ToArray();
            var c = new int[m * n];
            var check = new int[m * n];
            foreach (int threads in threadCounts)
            {
                var times = variants.Select(_ => new List<double>()).ToArray();
                int call = 0;
                for (int rep = -1; rep < reps; rep++)
                    for (int v = 0; v < variants.Length; v++)
                    {
                        var packed = packs[call++ % copies];
                        bool cpu = threads == 1 && cpuClock;
                        double t0 = cpu ? CpuClock.ThreadSeconds() : 0;
                        var sw = Stopwatch.StartNew();
                        Int8Gemm.Multiply(m, a, k, 3, packed, c, n, threads, variants[v].Kernel, variants[v].Tiling);
                        double s = cpu ? CpuClock.ThreadSeconds() - t0 : sw.Elapsed.TotalSeconds;
                        if (rep >= 0) times[v].Add(s);
                        if (v == 0) Array.Copy(c, check, c.Length);
                        else if (!c.AsSpan().SequenceEqual(check)) throw new InvalidOperationException($"{variants[v].Name} differs from {variants[0].Name} at {m}x{n}x{k}");
                    }
                var line = $"  {m,4}×{n,5}×{k,4} {threads}T B {(long)k * n >> 20,2} MiB{(copies > 1 ? " DRAM" : "     ")}:";
                for (int v = 0; v < variants.Length; v++)
                {
                    var sorted = times[v].Order().ToArray();
                    double ops = 2.0 * m * n * k / 1e9;
                    line += $"  {variants[v].Name} {ops / sorted[0],4:F0} / {ops / sorted[sorted.Length / 2],4:F0}";
                }
                Console.WriteLine(line);
            }
        }
        Console.WriteLine($"load average after: {File.ReadAllText("/proc/loadavg").Trim()}");
    }

    private sealed record Variant(string Name, IInt8GemmKernel Kernel, Int8GemmTiling? Tiling);

    /// <summary>before, after, and any `JITS_EXTRA="ROWS,BLOCKS,COLUMNSOUTER(0/1),PREFETCH(0/1);..."` plans.</summary>
    private static Variant[] Variants()
    {
        var noPrefetch = new GeneratedInt8Kernel(null, prefetchMinBytes: long.MaxValue);
        var list = new List<Variant>
        {
            new("before", noPrefetch, Int8GemmTiling.RowMajor),
            new("after", GeneratedInt8Kernel.Instance, null),
        };
        if (Environment.GetEnvironmentVariable("JITS_EXTRA") is { Length: > 0 } extra)
            foreach (var spec in extra.Split(';'))
            {
                var v = spec.Split(',').Select(int.Parse).ToArray();
                list.Add(new($"{v[0]}/{v[1]}/{(v[2] != 0 ? "c" : "r")}{(v[3] != 0 ? "p" : "")}", v[3] != 0 ? GeneratedInt8Kernel.Instance : noPrefetch,
                    new Int8GemmTiling(v[0], v[1], v[2] != 0)));
            }
        return [.. list];
    }
}

/// <summary>The calling thread's CPU time (Linux CLOCK_THREAD_CPUTIME_ID), for timing one-thread calls on a busy machine.</summary>
public static class CpuClock
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec ts);

    private struct TimeSpec
    {
        public long Seconds, Nanoseconds;
    }

    public static double ThreadSeconds()
    {
        const int ClockThreadCpuTimeId = 3;
        ClockGetTime(ClockThreadCpuTimeId, out var ts);
        return ts.Seconds + ts.Nanoseconds * 1e-9;
    }
}
