using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Bench;

/// <summary>
/// Int8 GEMM throughput per kernel: GOPS = 2·M·N·K / time (one multiply and one add per MAC), one thread, at the
/// shapes of <see cref="Shape"/>; the 1×4096×4096 GEMV (LLM decode shape) reads as weight bandwidth, GB/s = N·K bytes
/// / time (the suite's "B GB/s" column). Weights of 8 MiB or more rotate through copies (<see cref="WeightCopies"/>).
/// Run: the `suite` mode (bench/README.md), or dotnet run -c Release --project bench/QuantSharp.Bench -- --filter
/// '*Int8Gemm*' --job short, or a Stopwatch pass: dotnet run -c Release --project bench/QuantSharp.Bench -- int8-quick.
/// </summary>
public class Int8GemmBenchmarks
{
    private byte[] _a = [];
    private int[] _c = [];
    private PackedInt8Weights[] _b = [];
    private int _next;
    private IInt8GemmKernel? _kernel;

    public static IEnumerable<string> SupportedKernels => Int8Gemm.SupportedKernels.Where(k => k.Name != "Scalar").Select(k => k.Name);

    [ParamsSource(nameof(SupportedKernels))]
    public string Kernel { get; set; } = "";

    /// <summary>
    /// M×N×K: the 1024³ square; an LLM prompt chunk of 64 tokens through a 4096×4096 projection and a 4096→11008
    /// feed-forward layer; and the 4096×4096 GEMV of LLM decoding (M = 1).
    /// </summary>
    [Params("1024x1024x1024", "64x4096x4096", "64x11008x4096", "1x4096x4096")]
    public string Shape { get; set; } = "1024x1024x1024";

    [Params(1)]
    public int Threads { get; set; }

    private int _m, _n, _k;

    [GlobalSetup]
    public void Setup()
    {
        var d = Shape.Split('x').Select(int.Parse).ToArray();
        (_m, _n, _k) = (d[0], d[1], d[2]);
        var rnd = new Random(42);
        _a = new byte[_m * _k];
        rnd.NextBytes(_a);
        _c = new int[_m * _n];
        _b = new PackedInt8Weights[WeightCopies.For((long)_n * _k)];
        var braw = new byte[_k * _n];
        for (int i = 0; i < _b.Length; i++)
        {
            rnd.NextBytes(braw);
            _b[i] = PackedInt8Weights.Pack(_k, _n, (sbyte[])(Array)braw, _n, false, [1]);
        }
        _kernel = Int8Gemm.Find(Kernel);
    }

    /// <summary>u8 A (zero point 3) × packed s8 B (zero point 1) → int32; successive calls take the next weight copy.</summary>
    [Benchmark]
    public void Multiply()
    {
        var b = _b[_next];
        _next = (_next + 1) % _b.Length;
        Int8Gemm.Multiply(_m, (ReadOnlySpan<byte>)_a, _k, 3, b, _c, _n, Threads, _kernel);
    }

    private static (byte[] A, PackedInt8Weights B, int[] C) Make(int m, int n, int k)
    {
        var rnd = new Random(42);
        var a = new byte[m * k];
        rnd.NextBytes(a);
        var braw = new byte[k * n];
        rnd.NextBytes(braw);
        var b = PackedInt8Weights.Pack(k, n, (sbyte[])(Array)braw, n, false, [1]);
        return (a, b, new int[m * n]);
    }

    /// <summary>Stopwatch measurement: best of a few runs per kernel, printed as GOPS and GB/s.</summary>
    public static void Quick(int threads)
    {
        foreach (var kernel in Int8Gemm.SupportedKernels.Where(k => k.Name != "Scalar"))
        {
            var (a, b, c) = Make(1024, 1024, 1024);
            double best = Best(() => Int8Gemm.Multiply(1024, (ReadOnlySpan<byte>)a, 1024, 3, b, c, 1024, threads, kernel), 5);
            Console.WriteLine($"{kernel.Name,-10} gemm 1024^3   threads={threads}: {2.0 * 1024 * 1024 * 1024 / best / 1e9,7:F1} GOPS ({best * 1e3:F2} ms)");
            var (va, vb, vc) = Make(1, 4096, 4096);
            // 16 MiB of weights plus 512 MiB of other traffic per repetition keeps the weights out of the caches (L3 here is larger than 64 MiB).
            var flush = new byte[512 << 20];
            double gemv = Best(() =>
            {
                Int8Gemm.Multiply(1, (ReadOnlySpan<byte>)va, 4096, 3, vb, vc, 4096, threads, kernel);
            }, 5, () => flush.AsSpan().Fill((byte)Environment.TickCount));
            Console.WriteLine($"{kernel.Name,-10} gemv 4096^2   threads={threads}: {4096.0 * 4096 / gemv / 1e9,7:F2} GB/s ({gemv * 1e3:F2} ms)");
        }
    }

    private static double Best(Action run, int reps, Action? between = null)
    {
        run();
        double best = double.MaxValue;
        for (int r = 0; r < reps; r++)
        {
            between?.Invoke();
            var sw = Stopwatch.StartNew();
            run();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }
}
