using QuantSharp.Data;
using QuantSharp.Onnx;
using QuantSharp.Quantization.Calibration;
using QuantSharp.Quantization.Quantizers;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Lowering;

/// <summary>
/// The example models quantized to static INT8 QDQ by the quantizer give the same top-1 class lowered (integer
/// kernels) as unlowered (float between DequantizeLinear and QuantizeLinear) on ≥ 99.5 % of the 2,000-image
/// evaluation subset.
/// </summary>
public class ExampleModelLoweringTests
{
    private const float Mean = 0.2860f, Std = 0.3530f;

    private static Tensor<float> Images(Tensor<byte> x, int start, int count)
    {
        int pixels = x.Length / x.Shape[0];
        var t = new Tensor<float>([count, 1, 28, 28]);
        for (int i = 0; i < count * pixels; i++) t.Data[i] = (x.Data[start * pixels + i] / 255f - Mean) / Std;
        return t;
    }

    [Theory]
    [InlineData("fmnist_cnn")]
    [InlineData("fmnist_mobilenet")]
    public void LoweredModelAgreesWithQdqReference(string name)
    {
        var examples = Path.Combine(TestPaths.RepoRoot, "examples");
        var model = OnnxModelIO.Load(Path.Combine(examples, "models", name + ".onnx"));
        var calib = Npz.Read(Path.Combine(examples, "data", "fmnist_calib_1000.npz")).Single(a => a.Name == "x").Tensor.As<byte>();
        var eval = Npz.Read(Path.Combine(examples, "data", "fmnist_eval_2000.npz")).Single(a => a.Name == "x").Tensor.As<byte>();
        string input = model.Graph.RuntimeInputs.Single().Name;
        var batches = Enumerable.Range(0, 8).Select(i => (IReadOnlyDictionary<string, Tensor>)new Dictionary<string, Tensor> { [input] = Images(calib, i * 32, 32) });
        var quantized = Quantizer.QuantizeStatic(model, batches, 256, new StaticQuantizerOptions
        {
            Calibration = new CalibrationOptions { Samples = 256, BatchSize = 32, IntraOpThreads = 2 },
        }).Model;

        using var lowered = new InferenceSession(quantized, new SessionOptions { IntraOpThreads = 2 });
        using var reference = new InferenceSession(quantized, new SessionOptions { IntraOpThreads = 2, IntegerExecution = new IntegerExecutionOptions { Enabled = false } });
        Assert.Contains(lowered.Model.Graph.Nodes, n => n.Domain == IntegerLowering.Domain);
        Assert.DoesNotContain(reference.Model.Graph.Nodes, n => n.Domain == IntegerLowering.Domain);

        int n = eval.Shape[0], agree = 0;
        const int batch = 250;
        for (int start = 0; start < n; start += batch)
        {
            int b = Math.Min(batch, n - start);
            var x = Images(eval, start, b);
            var l = lowered.Run(x).Values.First().As<float>();
            var r = reference.Run(x).Values.First().As<float>();
            int classes = l.Shape[1];
            for (int i = 0; i < b; i++)
                if (ArgMax(l.Data.AsSpan(i * classes, classes)) == ArgMax(r.Data.AsSpan(i * classes, classes))) agree++;
        }
        Assert.True(agree >= 0.995 * n, $"{name}: top-1 agreement {agree}/{n}");
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
