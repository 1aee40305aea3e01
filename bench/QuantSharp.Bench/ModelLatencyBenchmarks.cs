using BenchmarkDotNet.Attributes;
using QuantSharp.Data;
using QuantSharp.Graph;
using QuantSharp.Onnx;
using QuantSharp.Quantization.Calibration;
using QuantSharp.Quantization.Quantizers;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Bench;

/// <summary>
/// Model-level latency of the three example models (examples/models), FP32 against static INT8 run in the integer
/// domain, per batch and intra-op thread count. The INT8 model is made in the setup exactly as docs/results.md
/// does it (`quantsharp quantize … --calib npz:examples/data/fmnist_calib_1000.npz --samples 512 --scale 1/255
/// --mean 0.2860 --std 0.3530`: uint8 activations, int8 per-channel weights, MinMax); the input is random normal
/// (the models' inputs are standardised pixels). The Ratio column is INT8 time / FP32 time.
/// </summary>
public class ModelLatencyBenchmarks
{
    private InferenceSession? _fp32, _int8;
    private Dictionary<string, Tensor> _feeds = [];

    [Params("fmnist_cnn", "fmnist_mobilenet", "fmnist_vit")]
    public string Model { get; set; } = "fmnist_cnn";

    [Params(1, 64)]
    public int Batch { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        string root = RepoRoot();
        var model = OnnxModelIO.Load(Path.Combine(root, "examples", "models", Model + ".onnx"));
        var calibration = DatasetSpec.Open("npz:" + Path.Combine(root, "examples", "data", "fmnist_calib_1000.npz"));
        var pre = new ImagePreprocessing { Scale = 1f / 255f, Mean = [0.2860f], Std = [0.3530f] }
            .ForInputShape([-1, 1, 28, 28], ImageLayout.NCHW);
        var options = new StaticQuantizerOptions { Calibration = new CalibrationOptions { Samples = 512, BatchSize = 32 } };
        var quantized = Quantizer.QuantizeStatic(model, calibration, pre, options).Model;
        _fp32 = new InferenceSession(model, new SessionOptions { IntraOpThreads = Threads });
        _int8 = new InferenceSession(quantized, new SessionOptions { IntraOpThreads = Threads });
        var x = new Tensor<float>([Batch, 1, 28, 28]);
        var rnd = new Random(1234);
        // Standard normal values (Box–Muller), like `quantsharp bench`.
        for (int i = 0; i < x.Length; i++)
            x.Data[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rnd.NextDouble())) * Math.Cos(2 * Math.PI * rnd.NextDouble()));
        _feeds = new Dictionary<string, Tensor> { [_fp32.Inputs[0].Name] = x };
    }

    [Benchmark(Baseline = true)]
    public object Fp32() => _fp32!.Run(_feeds);

    [Benchmark]
    public object Int8() => _int8!.Run(_feeds);

    [GlobalCleanup]
    public void Cleanup()
    {
        _fp32?.Dispose();
        _int8?.Dispose();
    }

    /// <summary>The folder holding QuantSharp.slnx, searched upwards from the working directory and the binary.</summary>
    public static string RepoRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "QuantSharp.slnx"))) return dir.FullName;
        throw new InvalidOperationException("QuantSharp.slnx not found above the working directory or the benchmark binary");
    }
}
