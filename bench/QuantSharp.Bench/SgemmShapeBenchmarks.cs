using BenchmarkDotNet.Attributes;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Bench;

/// <summary>
/// FP32 SGEMM at the shapes of <see cref="Int8GemmBenchmarks"/> (B packed once, one thread), the baseline the int8
/// kernels are compared with; large weights cycle through copies (<see cref="WeightCopies"/>) like the int8 ones.
/// GFLOP/s = 2·M·N·K / time.
/// </summary>
public class SgemmShapeBenchmarks
{
    private float[] _a = [], _c = [];
    private SgemmPackedB[] _b = [];
    private int _next;
    private int _m, _n, _k;

    [Params("1024x1024x1024", "64x4096x4096", "64x11008x4096", "1x4096x4096")]
    public string Shape { get; set; } = "1024x1024x1024";

    [Params(1)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var d = Shape.Split('x').Select(int.Parse).ToArray();
        (_m, _n, _k) = (d[0], d[1], d[2]);
        var rnd = new Random(42);
        _a = new float[_m * _k];
        for (int i = 0; i < _a.Length; i++) _a[i] = (float)rnd.NextDouble() - 0.5f;
        _c = new float[_m * _n];
        _b = new SgemmPackedB[WeightCopies.For(4L * _n * _k)];
        var b = new float[_k * _n];
        for (int copy = 0; copy < _b.Length; copy++)
        {
            for (int i = 0; i < b.Length; i++) b[i] = (float)rnd.NextDouble() - 0.5f;
            _b[copy] = Sgemm.PackB(false, _k, _n, b, _n);
        }
    }

    [Benchmark]
    public void MultiplyPackedB()
    {
        var b = _b[_next];
        _next = (_next + 1) % _b.Length;
        Sgemm.Multiply(false, _m, _a, _k, b, _c, _n, threads: Threads);
    }
}
