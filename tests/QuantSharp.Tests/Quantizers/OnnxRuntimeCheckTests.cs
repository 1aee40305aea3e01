using System.Diagnostics;
using QuantSharp.Data;
using QuantSharp.Graph;
using QuantSharp.Onnx;
using QuantSharp.Quantization.Quantizers;
using QuantSharp.Runtime;
using QuantSharp.Tensors;
using Xunit.Abstractions;

namespace QuantSharp.Tests.Quantizers;

/// <summary>
/// Proof that the quantized models are standard: ONNX Runtime (onnxruntime-node, installed into tests/tools by
/// `npm install`) runs each of them on the evaluation subset, and its predictions agree with QuantSharp's run of the
/// same model. When tests/tools/node_modules is absent the cases are skipped with the install command as the reason,
/// unless QUANTSHARP_REQUIRE_ORT=1 (set by .ci/run, which installs it): then they run and fail.
/// </summary>
public class OnnxRuntimeCheckTests(ITestOutputHelper output)
{
    internal static string ToolsDir => Path.Combine(TestPaths.RepoRoot, "tests", "tools");

    internal static bool OrtInstalled =>
        Directory.Exists(Path.Combine(ToolsDir, "node_modules", "onnxruntime-node")) && File.Exists("/usr/bin/node");

    public static TheoryData<string> Models => new() { "static:fmnist_cnn", "static:fmnist_mobilenet", "static:fmnist_vit", "dynamic:fmnist_vit", "int4:fmnist_cnn" };

    [OrtTheory]
    [MemberData(nameof(Models))]
    public void OnnxRuntimeAgreesWithQuantSharp(string which)
    {
        var (mode, name) = (which.Split(':')[0], which.Split(':')[1]);
        var model = mode switch
        {
            "static" => QuantizerTests.Static(name).Model,
            "dynamic" => Quantizer.QuantizeDynamic(Examples.Load(name), new DynamicQuantizerOptions()).Model,
            _ => Quantizer.QuantizeWeightOnly(Examples.Load(name), new WeightOnlyQuantizerOptions { WeightType = DataType.Int4, BlockSize = 32 }).Model,
        };
        const int n = 2000;
        var dir = TestPaths.NewTempDir("qs-ort");
        try
        {
            string modelPath = Path.Combine(dir, "model.onnx"), inPath = Path.Combine(dir, "x.f32"), outPath = Path.Combine(dir, "y.f32");
            OnnxModelIO.Save(model, modelPath);
            var x = Batcher.Stack(Examples.Eval, 0, n, Examples.Preprocessing()).Input.As<float>();
            File.WriteAllBytes(inPath, System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.Data.AsSpan()).ToArray());
            var psi = new ProcessStartInfo("/usr/bin/node", [Path.Combine(ToolsDir, "ort_run.js"), modelPath, inPath, $"{n}", "1", "28", "28", outPath])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = ToolsDir,
            };
            using (var p = Process.Start(psi)!)
            {
                string so = p.StandardOutput.ReadToEnd(), se = p.StandardError.ReadToEnd();
                Assert.True(p.WaitForExit(120_000), "ONNX Runtime did not finish");
                Assert.True(p.ExitCode == 0, $"ONNX Runtime failed on {which}: {se}");
                output.WriteLine(so.Trim());
            }
            var ort = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(outPath)).ToArray();
            using var session = new InferenceSession(OnnxModelIO.Load(modelPath));
            // Batches of 100 as in ort_run.js: dynamic quantization's activation scales depend on the batch.
            var ours = Batcher.Batches(Examples.Eval, 100, Examples.Preprocessing(), n)
                .SelectMany(b => ((Tensor<float>)session.Run(b.Input).Values.First()).Data).ToArray();
            Assert.Equal(ours.Length, ort.Length);
            int classes = ours.Length / n, agree = 0, within = 0;
            // One quantization step of the logits: their observed range over 255 levels (uint8).
            float step = (ours.Max() - ours.Min()) / 255f;
            double maxDiff = 0;
            for (int i = 0; i < n; i++)
            {
                if (Argmax(ours, i * classes, classes) == Argmax(ort, i * classes, classes)) agree++;
                for (int j = 0; j < classes; j++)
                {
                    double d = Math.Abs(ours[i * classes + j] - ort[i * classes + j]);
                    maxDiff = Math.Max(maxDiff, d);
                    if (d <= step) within++;
                }
            }
            output.WriteLine($"{which}: top-1 agreement {agree}/{n}, {within}/{ours.Length} logits within one step ({step:g3}), max difference {maxDiff:g3}");
            Assert.True(agree >= 0.995 * n, $"{which}: ONNX Runtime agrees on {agree}/{n} predictions");
            Assert.True(within >= 0.995 * ours.Length, $"{which}: {within}/{ours.Length} logits within one quantization step {step}; max difference {maxDiff}");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static int Argmax(float[] y, int start, int count)
    {
        int best = 0;
        for (int j = 1; j < count; j++) if (y[start + j] > y[start + best]) best = j;
        return best;
    }
}

/// <summary>A theory skipped (with the reason) when onnxruntime-node is not installed and not required.</summary>
public sealed class OrtTheoryAttribute : TheoryAttribute
{
    public OrtTheoryAttribute()
    {
        if (!OnnxRuntimeCheckTests.OrtInstalled && Environment.GetEnvironmentVariable("QUANTSHARP_REQUIRE_ORT") != "1")
            Skip = "onnxruntime-node is not installed: run (cd tests/tools && ONNXRUNTIME_NODE_INSTALL=skip npm install --ignore-scripts), as .ci/run does";
    }
}
