using BenchmarkDotNet.Attributes;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Bench;

/// <summary>
/// FP32 GEMM throughput, the baseline quantized kernels are compared with. GFLOP/s = 2·M·N·K / time.
/// Run: dotnet run -c Release --project bench/QuantSharp.Bench -- --filter '*Sgemm*' (add --job short for a quick look).
/// </summary>
[MemoryDiagnoser]
public class SgemmBenchmarks
{
    private float[] _a = [], _b = [], _c = [];
    private SgemmPackedB? _packedB;

    /// <summary>Square size M = N = K.</summary>
    [Params(64, 256, 1024)]
    public int Size { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rnd = new Random(42);
        int n = Size;
        _a = new float[n * n];
        _b = new float[n * n];
        _c = new float[n * n];
        for (int i = 0; i < _a.Length; i++)
        {
            _a[i] = (float)rnd.NextDouble() - 0.5f;
            _b[i] = (float)rnd.NextDouble() - 0.5f;
        }
        _packedB = Sgemm.PackB(false, n, n, _b, n);
    }

    /// <summary>Both operands packed on every call (MatMul of two activations).</summary>
    [Benchmark(Baseline = true)]
    public void Multiply() => Sgemm.Multiply(false, false, Size, Size, Size, _a, Size, _b, Size, _c, Size, threads: Threads);

    /// <summary>B packed once (Gemm/MatMul with a constant weight).</summary>
    [Benchmark]
    public void MultiplyPackedB() => Sgemm.Multiply(false, Size, _a, Size, _packedB!, _c, Size, threads: Threads);

    /// <summary>B transposed (Gemm transB = 1, the usual fully-connected layout).</summary>
    [Benchmark]
    public void MultiplyTransB() => Sgemm.Multiply(false, true, Size, Size, Size, _a, Size, _b, Size, _c, Size, threads: Threads);
}
