using BenchmarkDotNet.Attributes;
using QuantSharp.Runtime.Kernels.Jit;

namespace QuantSharp.Bench;

/// <summary>
/// Generated-code int8 GEMM (AMX tiles, else 512-bit vpdpbusd), s8×s8 → int32, B packed once in setup.
/// GOPS = 2·M·N·K / time. Run: dotnet run -c Release --project bench/QuantSharp.Bench -- --filter '*AmxGemm*' --job short
/// </summary>
public class AmxGemmBenchmarks
{
    private JitInt8Gemm? _gemm;
    private JitPackedB? _packed;
    private sbyte[] _a = [];
    private int[] _c = [];

    /// <summary>Shapes M×N×K: the 1024³ square and the M=64 prompt-processing shape.</summary>
    [Params("1024x1024x1024", "64x4096x4096", "1x4096x4096")]
    public string Shape { get; set; } = "1024x1024x1024";

    /// <summary>The generated backends this CPU and OS can run (a missing one would only time an empty call).</summary>
    public static IEnumerable<JitBackend> AvailableBackends =>
        new[] { JitBackend.Amx, JitBackend.Avx512Vnni }.Where(b =>
        {
            using var gemm = JitInt8Gemm.TryCreate(maxBackend: b);
            return gemm is not null && gemm.Backend == b;
        }).ToArray();

    [ParamsSource(nameof(AvailableBackends))]
    public JitBackend Backend { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    private int _m, _n, _k;

    [GlobalSetup]
    public void Setup()
    {
        var dims = Shape.Split('x').Select(int.Parse).ToArray();
        (_m, _n, _k) = (dims[0], dims[1], dims[2]);
        _gemm = JitInt8Gemm.TryCreate(maxBackend: Backend);
        var rnd = new Random(42);
        _a = new sbyte[_m * _k];
        var b = new sbyte[_k * _n];
        for (int i = 0; i < _a.Length; i++) _a[i] = (sbyte)rnd.Next(-128, 128);
        for (int i = 0; i < b.Length; i++) b[i] = (sbyte)rnd.Next(-128, 128);
        _c = new int[_m * _n];
        _packed = _gemm?.PackB(b, _k, _n, _n);
    }

    /// <summary>Does nothing if the backend became unavailable after the parameters were listed.</summary>
    [Benchmark]
    public void Gemm()
    {
        if (_gemm is null || _gemm.Backend != Backend || _packed is null) return;
        _gemm.Gemm(_m, _a, _k, [], _packed, [], _c, _n, Threads);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _packed?.Dispose();
        _gemm?.Dispose();
    }
}
