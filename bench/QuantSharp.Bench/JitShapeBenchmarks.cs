using BenchmarkDotNet.Attributes;
using QuantSharp.Runtime.Kernels.Jit;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Bench;

/// <summary>
/// The integer engine's int8 GEMM with the generated kernel (<see cref="Int8Gemm"/>, u8 A with zero point 3 × packed
/// s8 B with zero point 1 → int32) at the issue-6 shapes, "before" (session-2 plan: row-major 96×8 tiles, no software
/// prefetch) and "after" (default plan and kernel), 1 and 2 threads. GOPS = 2·M·N·K / time. Weights of 8 MiB or more
/// rotate through copies (<see cref="WeightCopies"/>), so they come from DRAM. Skipped (empty) where the generated
/// kernel does not run. Run: `QuantSharp.Bench.dll suite bench/results/bdn --filter '*JitShape*'`; the Stopwatch
/// version is `jit-shapes`.
/// </summary>
public class JitShapeBenchmarks
{
    private static readonly GeneratedInt8Kernel NoPrefetch = new(null, prefetchMinBytes: long.MaxValue);
    private byte[] _a = [];
    private int[] _c = [];
    private PackedInt8Weights[] _b = [];
    private int _next;
    private int _m, _n, _k;

    [Params("1024x1024x1024", "1x4096x4096", "16x4096x4096", "64x4096x4096", "96x4096x4096", "128x4096x4096",
        "256x4096x4096", "512x4096x4096", "256x11008x4096")]
    public string Shape { get; set; } = "1024x1024x1024";

    [Params("before", "after")]
    public string Variant { get; set; } = "after";

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var d = Shape.Split('x').Select(int.Parse).ToArray();
        (_m, _n, _k) = (d[0], d[1], d[2]);
        var rnd = new Random(42);
        _a = new byte[_m * _k];
        rnd.NextBytes(_a);
        _c = new int[_m * _n];
        var braw = new byte[_k * _n];
        rnd.NextBytes(braw);
        _b = Enumerable.Range(0, WeightCopies.For((long)_n * _k))
            .Select(_ => PackedInt8Weights.Pack(_k, _n, (sbyte[])(Array)braw, _n, false, [1])).ToArray();
    }

    [Benchmark]
    public void Multiply()
    {
        if (!GeneratedInt8Kernel.Instance.IsSupported) return;
        var b = _b[_next];
        _next = (_next + 1) % _b.Length;
        if (Variant == "before") Int8Gemm.Multiply(_m, _a, _k, 3, b, _c, _n, Threads, NoPrefetch, Int8GemmTiling.RowMajor);
        else Int8Gemm.Multiply(_m, _a, _k, 3, b, _c, _n, Threads, GeneratedInt8Kernel.Instance, null);
    }
}
