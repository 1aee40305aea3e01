using System.Globalization;
using System.Text.Json;
using QuantSharp.Data;
using QuantSharp.Onnx;
using QuantSharp.Runtime;
using QuantSharp.Tensors;
using QuantSharp.Tests.Cli;
using Xunit.Abstractions;

namespace QuantSharp.Tests.Models;

/// <summary>
/// Real trained models from the shared folder against the figures measured independently
/// (shared/README.md and shared/models/onnx/reference_results.json).
/// </summary>
public sealed class RealModelTests(ITestOutputHelper output)
{
    private static string ModelFile(string name) => TestPaths.SharedFile("models", "onnx", name);

    private static JsonElement Reference(string model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(ModelFile("reference_results.json")));
        return doc.RootElement.GetProperty(model).Clone();
    }

    private static InferenceSession Session(string name) =>
        new(OnnxModelIO.Load(ModelFile(name)), new SessionOptions { IntraOpThreads = Environment.ProcessorCount });

    /// <summary>
    /// |actual − expected| ≤ 1e-4 · max|expected row|: relative to the row's scale, because logits near zero in a
    /// row of thousands carry the absolute float32 error of the large ones.
    /// </summary>
    private static void AssertRowClose(double[] expected, Tensor actual, int offset, string what)
    {
        double scale = expected.Max(Math.Abs);
        for (int j = 0; j < expected.Length; j++)
        {
            double a = actual.GetDouble(offset + j);
            Assert.True(Math.Abs(a - expected[j]) <= 1e-4 * scale, $"{what}[{j}] = {a}, reference {expected[j]}");
        }
    }

    [Fact]
    public void Mnist_CliEvalReproducesReferenceAccuracy()
    {
        var model = ModelFile("mnist_cntk_opset7.onnx");
        var data = TestPaths.SharedFile("data", "mnist");
        // One thread: this small CNN runs faster without splitting its operators, and the machine may be shared.
        var r = CliRunner.Run("eval", model, "--data", "mnist:" + data, "--threads", "1", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        output.WriteLine(r.Stdout);
        using var doc = JsonDocument.Parse(r.Stdout);
        var j = doc.RootElement;
        double percent = j.GetProperty("accuracy_percent").GetDouble();
        Assert.Equal(10000, j.GetProperty("samples").GetInt32());
        Assert.Equal(1, j.GetProperty("batch").GetInt32());
        double reference = Reference("mnist_cntk_opset7.onnx").GetProperty("test_accuracy_10k_0_255").GetDouble() * 100;
        Assert.True(percent >= reference - 0.005, $"accuracy {percent} %, reference {reference} %");
        Assert.Equal(Math.Round(reference, 2), Math.Round(percent, 2));
    }

    [Fact]
    public void Inspect_DescribesRealModelsAsLoaded()
    {
        foreach (var name in new[] { "mnist_cntk_opset7.onnx", "squeezenet1.0_fp16_opset7.onnx", "iris_mlp_opset11.onnx" })
        {
            var r = CliRunner.Run("inspect", ModelFile(name), "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            var j = doc.RootElement;
            var m = OnnxModelIO.Load(ModelFile(name));
            Assert.Equal(m.IrVersion, j.GetProperty("ir_version").GetInt64());
            Assert.Equal(m.Graph.Nodes.Count, j.GetProperty("nodes").GetInt32());
            foreach (var g in m.Graph.Nodes.GroupBy(n => n.OpType))
                Assert.Equal(g.Count(), j.GetProperty("ops").GetProperty(g.Key).GetInt32());
            Assert.Equal(m.Graph.Initializers.Sum(v => (long)v.Initializer!.Length), j.GetProperty("parameters").GetInt64());
            Assert.Equal(m.Graph.RuntimeInputs.Count(), j.GetProperty("inputs").GetArrayLength());
            Assert.Empty(j.GetProperty("unsupported_ops").EnumerateArray());
        }
    }

    [Fact]
    public void Mnist_FirstLogitsMatchReference()
    {
        var reference = Reference("mnist_cntk_opset7.onnx");
        var logits = reference.GetProperty("first5_logits").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
        var labels = reference.GetProperty("first5_labels").EnumerateArray().Select(v => v.GetInt32()).ToArray();
        var images = IdxReader.ReadImages(TestPaths.SharedFile("data", "mnist", "t10k-images-idx3-ubyte.gz"));
        using var s = Session("mnist_cntk_opset7.onnx");
        for (int i = 0; i < logits.Length; i++)
        {
            var x = new float[28 * 28];
            for (int k = 0; k < x.Length; k++) x[k] = images.Data[i * x.Length + k];
            var y = s.Run(new Tensor<float>(x, [1, 1, 28, 28])).Values.Single();
            AssertRowClose(logits[i], y, 0, $"mnist sample {i}");
            Assert.Equal(labels[i], ArgMax(y, 0, 10));
        }
    }

    [Theory]
    [InlineData("kitten_224.png", 281)]
    [InlineData("fish.png", 0)]
    public void SqueezeNetFp16_ClassifiesImages(string image, int expectedClass)
    {
        using var s = Session("squeezenet1.0_fp16_opset7.onnx");
        var input = s.Inputs.Single();
        Assert.Equal(DataType.Float16, input.Type!.ElementType);
        // BGR, 0..255, no mean/std, float16 NCHW: the model's WinML default binding.
        var pre = new ImagePreprocessing { ChannelOrder = ChannelOrder.BGR, OutputType = DataType.Float16 }
            .ForInputShape([1, 3, 224, 224], ImageLayout.NCHW);
        var batch = Batcher.Batches(new ImageFolderDataset(ModelFile(image)), 1, pre).Single();
        var x = batch.Input;
        Assert.Equal([1, 3, 224, 224], x.Shape);
        if (image == "kitten_224.png") AssertMatchesReferenceInput(x);

        var y = s.Run(x).Values.Single();
        Assert.Equal(1000, y.Length);
        int top = ArgMax(y, 0, 1000);
        output.WriteLine($"{image}: class {top} p={y.GetDouble(top):0.0000}");
        Assert.Equal(expectedClass, top);
        if (image == "kitten_224.png")
        {
            var top5 = Reference("squeezenet1.0_fp16_opset7.onnx").GetProperty("kitten_224_top5_fp32_compute")[0];
            // The reference computed in fp32; fp16 arithmetic moves the probability a little.
            Assert.Equal(top5[2].GetDouble(), y.GetDouble(top), 2);
        }
    }

    /// <summary>The shared kitten_224_bgr_chw.csv is the kitten input tensor the reference used.</summary>
    private static void AssertMatchesReferenceInput(Tensor x)
    {
        var text = File.ReadAllText(ModelFile("kitten_224_bgr_chw.csv"));
        var values = text.Split([',', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries)
            .Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(x.Length, values.Length);
        for (int i = 0; i < values.Length; i++)
            Assert.True(values[i] == x.GetDouble(i), $"kitten input element {i}: {x.GetDouble(i)}, reference {values[i]}");
    }

    [Fact]
    public void IrisMlp_ReachesReferenceAccuracy()
    {
        // Iris.csv: Id, four measurements in cm, species; the model takes the raw measurements as float[N, 4].
        var rows = File.ReadAllLines(ModelFile("Iris.csv")).Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',')).ToArray();
        string[] species = ["Iris-setosa", "Iris-versicolor", "Iris-virginica"];
        var x = new float[rows.Length * 4];
        for (int i = 0; i < rows.Length; i++)
            for (int k = 0; k < 4; k++) x[i * 4 + k] = float.Parse(rows[i][1 + k], CultureInfo.InvariantCulture);
        using var s = Session("iris_mlp_opset11.onnx");
        var y = s.Run(new Tensor<float>(x, [rows.Length, 4])).Values.First();
        Assert.Equal([rows.Length, 3], y.Shape);
        int correct = 0;
        for (int i = 0; i < rows.Length; i++)
            if (ArgMax(y, i * 3, 3) == Array.IndexOf(species, rows[i][5])) correct++;
        output.WriteLine($"iris: {correct}/{rows.Length}");
        // shared/README.md: 98 % on the 150 rows.
        Assert.Equal(0.98, (double)correct / rows.Length, 2);
    }

    [Fact]
    public void Cifar10Cnn_RunsBatchedLikeOneByOne()
    {
        // reference_results.json gives this model's first logits for CIFAR-10 images that are not shipped (no
        // licence), so the check here is structural: [N, 10] finite logits, and batching does not change them.
        using var s = Session("cifar10_winml_tutorial_cnn.onnx");
        var rng = new Random(12345);
        const int n = 3, per = 3 * 32 * 32;
        var x = new float[n * per];
        for (int i = 0; i < x.Length; i++) x[i] = (rng.Next(256) / 255f - 0.5f) / 0.5f;
        var batched = s.Run(new Tensor<float>(x, [n, 3, 32, 32])).Values.Single();
        Assert.Equal([n, 10], batched.Shape);
        for (int i = 0; i < n; i++)
        {
            var one = s.Run(new Tensor<float>(x.AsSpan(i * per, per).ToArray(), [1, 3, 32, 32])).Values.Single();
            var row = Enumerable.Range(0, 10).Select(j => one.GetDouble(j)).ToArray();
            Assert.All(row, v => Assert.True(double.IsFinite(v)));
            AssertRowClose(row, batched, i * 10, $"cifar sample {i}");
        }
    }

    private static int ArgMax(Tensor t, int offset, int count)
    {
        int best = 0;
        for (int j = 1; j < count; j++) if (t.GetDouble(offset + j) > t.GetDouble(offset + best)) best = j;
        return best;
    }
}
