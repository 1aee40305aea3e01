using QuantSharp.Data;
using QuantSharp.Onnx;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Models;

/// <summary>
/// The example models (trained and exported by examples/make_models.py) must give exactly PyTorch's predictions:
/// the script stored PyTorch's FP32 logits for the 2,000-image evaluation subset.
/// </summary>
public class PyTorchAgreementTests
{
    private const float Mean = 0.2860f, Std = 0.3530f;

    [Theory]
    [InlineData("fmnist_cnn")]
    [InlineData("fmnist_mobilenet")]
    [InlineData("fmnist_vit")]
    public void ExampleModelMatchesPyTorchLogits(string name)
    {
        var examples = Path.Combine(TestPaths.RepoRoot, "examples");
        var data = Npz.Read(Path.Combine(examples, "data", "fmnist_eval_2000.npz")).ToDictionary(a => a.Name, a => a.Tensor);
        var reference = Npz.Read(Path.Combine(examples, "data", "pytorch_predictions_eval_2000.npz"))
            .Single(a => a.Name == name + "_logits").Tensor.As<float>();
        var images = data["x"].As<byte>();
        int n = images.Shape[0], pixels = images.Length / n, classes = reference.Shape[1];

        using var session = InferenceSession.Load(Path.Combine(examples, "models", name + ".onnx"));
        const int batch = 250;
        int agree = 0;
        double maxDiff = 0;
        for (int start = 0; start < n; start += batch)
        {
            int b = Math.Min(batch, n - start);
            var x = new Tensor<float>([b, 1, 28, 28]);
            for (int i = 0; i < b * pixels; i++) x.Data[i] = (images.Data[start * pixels + i] / 255f - Mean) / Std;
            var logits = session.Run(x)["logits"].As<float>();
            Assert.Equal([b, classes], logits.Shape);
            for (int r = 0; r < b; r++)
            {
                var ours = logits.Data.AsSpan(r * classes, classes);
                var theirs = reference.Data.AsSpan((start + r) * classes, classes);
                if (ArgMax(ours) == ArgMax(theirs)) agree++;
                for (int c = 0; c < classes; c++) maxDiff = Math.Max(maxDiff, Math.Abs(ours[c] - theirs[c]));
            }
        }
        Assert.Equal(n, agree);
        Assert.True(maxDiff < 1e-3, $"{name}: largest logit difference {maxDiff}");
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
