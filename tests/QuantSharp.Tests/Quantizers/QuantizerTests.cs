using System.Collections.Concurrent;
using System.Text.Json;
using QuantSharp.Cli;
using QuantSharp.Data;
using QuantSharp.Graph;
using QuantSharp.Onnx;
using QuantSharp.Quantization.Calibration;
using QuantSharp.Quantization.Passes;
using QuantSharp.Quantization.Quantizers;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Quantizers;

public class QuantizerTests
{
    private static readonly ConcurrentDictionary<string, QuantizationResult> StaticResults = new();

    /// <summary>Static INT8 with the defaults, calibrated on the first 512 images of the calibration subset (cached per model).</summary>
    internal static QuantizationResult Static(string name) => StaticResults.GetOrAdd(name, n =>
        Quantizer.QuantizeStatic(Examples.Load(n), Examples.Calib, Examples.Preprocessing(),
            new StaticQuantizerOptions { Calibration = new CalibrationOptions { Samples = 512, BatchSize = 128 } }));

    /// <summary>Save and load again, so that what is checked is what a file holds.</summary>
    private static Model RoundTrip(Model m) => OnnxModelIO.Load(OnnxModelIO.ToBytes(m), null);

    [Fact]
    public void BatchNormFoldingPreservesOutputs()
    {
        var model = Examples.Load("fmnist_mobilenet");
        var folded = model.Clone();
        GraphPasses.ConstantsToInitializers(folded);
        int n = GraphPasses.FoldBatchNormalization(folded);
        Assert.Equal(model.Graph.Nodes.Count(x => x.OpType == "BatchNormalization"), n);
        Assert.DoesNotContain(folded.Graph.Nodes, x => x.OpType == "BatchNormalization");
        Assert.Empty(GraphValidation.Validate(folded.Graph));
        var batch = Batcher.Stack(Examples.Eval, 0, 16, Examples.Preprocessing()).Input;
        using var a = new InferenceSession(model);
        using var b = new InferenceSession(RoundTrip(folded));
        var ya = (Tensor<float>)a.Run(batch).Values.First();
        var yb = (Tensor<float>)b.Run(batch).Values.First();
        float scale = ya.Data.Max(MathF.Abs);
        for (int i = 0; i < ya.Length; i++) Assert.True(MathF.Abs(ya.Data[i] - yb.Data[i]) <= 1e-4f * scale, $"logit {i}: {ya.Data[i]} vs {yb.Data[i]}");
    }

    [Theory]
    [InlineData("fmnist_cnn")]
    [InlineData("fmnist_mobilenet")]
    [InlineData("fmnist_vit")]
    public void StaticInt8KeepsAccuracyOnTheEvalSubset(string name)
    {
        var r = Static(name);
        Assert.Empty(GraphValidation.Validate(r.Model.Graph));
        var q = RoundTrip(r.Model);
        Assert.Contains(q.Graph.Nodes, x => x.OpType == "QuantizeLinear");
        Assert.Equal(Examples.Load(name).Graph.Outputs.Select(o => o.Name), q.Graph.Outputs.Select(o => o.Name));
        // Every Conv/Gemm/MatMul with a constant weight now reads it through DequantizeLinear of int8 codes.
        foreach (var n in q.Graph.Nodes.Where(x => x.OpType is "Conv" or "Gemm"))
        {
            var dq = n.Input(1)!.Producer;
            Assert.True(dq is { OpType: "DequantizeLinear" }, $"{n.Describe()} weight is not dequantized");
            Assert.Equal(DataType.Int8, dq!.Input(0)!.Initializer!.DataType);
            if (n.Input(2) is { } bias) Assert.Equal(DataType.Int32, bias.Producer!.Input(0)!.Initializer!.DataType);
        }
        double fp32 = Examples.PyTorchFp32Accuracy(name);
        double int8 = Examples.Accuracy(Examples.Predict(q));
        Assert.True(fp32 - int8 <= 0.01, $"{name}: FP32 {fp32:P2} → INT8 {int8:P2}");
    }

    [Fact]
    public void StaticCnnIsAtMost27PercentOfFp32()
    {
        var r = Static("fmnist_cnn");
        long fp32 = new FileInfo(Examples.ModelPath("fmnist_cnn")).Length;
        long int8 = OnnxModelIO.ToBytes(r.Model).LongLength;
        Assert.True(int8 <= 0.27 * fp32, $"{int8} bytes is {100.0 * int8 / fp32:0.0} % of {fp32}");
        Assert.Equal(int8, r.Summary.OutputBytes);
        Assert.Equal(13, r.Summary.QuantizedNodes);
    }

    [Fact]
    public void StaticQuantizationFoldsBatchNormAndQuantizesAfterActivations()
    {
        var r = Static("fmnist_mobilenet");
        var g = r.Model.Graph;
        Assert.Equal(14, r.Summary.FoldedBatchNorms);
        Assert.DoesNotContain(g.Nodes, n => n.OpType == "BatchNormalization");
        // ReLU6 after a Conv is absorbed by the QuantizeLinear that follows (zero point 0, range within [0, 6]).
        foreach (var conv in g.Nodes.Where(n => n.OpType == "Conv"))
        {
            var consumers = conv.Output(0)!.Uses.Select(u => u.Node.OpType).ToList();
            Assert.Contains("QuantizeLinear", consumers);
        }
        Assert.True(g.Nodes.Count(n => n.OpType == "Clip") < 9);
        Assert.True((r.Model.Opset("") ?? 0) >= 13);
        // Residual Adds read dequantized inputs.
        foreach (var add in g.Nodes.Where(n => n.OpType == "Add"))
            Assert.All(add.Inputs, v => Assert.Equal("DequantizeLinear", v!.Producer?.OpType));
    }

    [Fact]
    public void SharedScaleOpsReuseTheirInputParameters()
    {
        var g = Static("fmnist_cnn").Model.Graph;
        foreach (var pool in g.Nodes.Where(n => n.OpType == "MaxPool"))
        {
            var dqIn = pool.Input(0)!.Producer!;
            var qOut = pool.Output(0)!.Uses.Single().Node;
            Assert.Equal("DequantizeLinear", dqIn.OpType);
            Assert.Equal("QuantizeLinear", qOut.OpType);
            Assert.Same(dqIn.Input(1), qOut.Input(1));
            Assert.Same(dqIn.Input(2), qOut.Input(2));
        }
    }

    [Fact]
    public void DynamicTransformerStaysWithinHalfAPoint()
    {
        var r = Quantizer.QuantizeDynamic(Examples.Load("fmnist_vit"), new DynamicQuantizerOptions());
        var q = RoundTrip(r.Model);
        Assert.Empty(GraphValidation.Validate(q.Graph));
        Assert.Contains(q.Graph.Nodes, n => n.OpType == "MatMulInteger");
        Assert.Contains(q.Graph.Nodes, n => n.OpType == "DynamicQuantizeLinear");
        Assert.Contains(q.Graph.Nodes, n => n.OpType == "Conv");
        Assert.Contains(r.Summary.Nodes, d => d.OpType == "Conv" && !d.Quantized);
        double fp32 = Examples.PyTorchFp32Accuracy("fmnist_vit");
        double dyn = Examples.Accuracy(Examples.Predict(q));
        Assert.True(fp32 - dyn <= 0.005, $"FP32 {fp32:P2} → dynamic {dyn:P2}");
    }

    [Fact]
    public void WeightOnlyInt4Block32OnTheCnn()
    {
        var r = Quantizer.QuantizeWeightOnly(Examples.Load("fmnist_cnn"), new WeightOnlyQuantizerOptions { WeightType = DataType.Int4, BlockSize = 32 });
        var q = RoundTrip(r.Model);
        Assert.Equal(21, q.Opset(""));
        var dqs = q.Graph.Nodes.Where(n => n.OpType == "DequantizeLinear").ToList();
        Assert.Equal(5, dqs.Count);
        Assert.All(dqs, d => Assert.Equal(DataType.Int4, d.Input(0)!.Initializer!.DataType));
        Assert.Contains(dqs, d => d.GetInt("block_size", 0) == 32);
        Assert.True(r.Summary.OutputWeightBytes < 0.17 * r.Summary.InputWeightBytes);
        double fp32 = Examples.PyTorchFp32Accuracy("fmnist_cnn");
        double w4 = Examples.Accuracy(Examples.Predict(q));
        Assert.True(fp32 - w4 <= 0.015, $"FP32 {fp32:P2} → int4 {w4:P2}");
    }

    [Fact]
    public void MatMulNBitsFormatMatchesTheDequantizeLinearForm()
    {
        var vit = Examples.Load("fmnist_vit");
        var a = Quantizer.QuantizeWeightOnly(vit, new WeightOnlyQuantizerOptions { WeightType = DataType.Int4, BlockSize = 32, OpTypes = ["MatMul"] });
        var b = Quantizer.QuantizeWeightOnly(vit, new WeightOnlyQuantizerOptions { WeightType = DataType.UInt4, BlockSize = 32, OpTypes = ["MatMul"], Format = WeightOnlyFormat.MatMulNBits });
        Assert.Contains(b.Model.Graph.Nodes, n => n.OpType == "MatMulNBits" && n.Domain == "com.microsoft");
        var batch = Batcher.Stack(Examples.Eval, 0, 8, Examples.Preprocessing()).Input;
        using var sb = new InferenceSession(RoundTrip(b.Model));
        using var sf = new InferenceSession(vit);
        var yb = (Tensor<float>)sb.Run(batch).Values.First();
        var yf = (Tensor<float>)sf.Run(batch).Values.First();
        // 4-bit weights move the logits a little; the predictions agree with FP32 on these images.
        for (int i = 0; i < 8; i++) Assert.Equal(Examples.Argmax(yf, i * 10, 10), Examples.Argmax(yb, i * 10, 10));
        Assert.True(a.Summary.QuantizedNodes > 0);
    }

    [Fact]
    public void AlreadyQuantizedModelGivesAClearError()
    {
        var q = RoundTrip(Quantizer.QuantizeWeightOnly(Examples.Load("fmnist_cnn"), new WeightOnlyQuantizerOptions { WeightType = DataType.Int8, BlockSize = 0 }).Model);
        var e = Assert.Throws<QuantSharpException>(() => Quantizer.QuantizeDynamic(q, new DynamicQuantizerOptions()));
        Assert.Contains("already quantized", e.Message);
        e = Assert.Throws<QuantSharpException>(() => Quantizer.QuantizeStatic(q, Examples.Calib, Examples.Preprocessing(), new StaticQuantizerOptions()));
        Assert.Contains("already quantized", e.Message);
    }

    [Fact]
    public void NothingToQuantizeGivesAClearError()
    {
        var g = new Graph.Graph { Name = "erf" };
        var e = g.Edit();
        var x = e.AddInput("x", TensorTypeInfo.FromShape(DataType.Float, [1, 4]));
        var n = e.AddNode("Erf", [x], name: "erf");
        e.AddOutput(n.Output(0)!);
        var m = new Model(g);
        m.SetOpset("", 17);
        var ex = Assert.Throws<QuantSharpException>(() => Quantizer.QuantizeStatic(m,
            [new Dictionary<string, Tensor> { ["x"] = new Tensor<float>([1, 4]) }], 1, new StaticQuantizerOptions()));
        Assert.Contains("nothing to quantize", ex.Message);
        Assert.Throws<QuantSharpException>(() => Quantizer.QuantizeDynamic(m, new DynamicQuantizerOptions()));
        Assert.Throws<QuantSharpException>(() => Quantizer.QuantizeWeightOnly(m, new WeightOnlyQuantizerOptions()));
    }

    [Fact]
    public void ExcludePatternsAreRespected()
    {
        var model = Examples.Load("fmnist_cnn");
        var r = Quantizer.QuantizeStatic(model, Examples.Calib, Examples.Preprocessing(), new StaticQuantizerOptions
        {
            ExcludeNodes = ["/fc*", "re:conv3"],
            Calibration = new CalibrationOptions { Samples = 64, BatchSize = 64 },
        });
        var g = r.Model.Graph;
        foreach (var n in g.Nodes.Where(n => n.OpType == "Gemm" || n.Name == "/conv3/Conv"))
        {
            Assert.True(n.Input(1)!.IsInitializer, $"{n.Describe()} should keep its float weight");
            Assert.Equal(DataType.Float, n.Input(1)!.Initializer!.DataType);
        }
        Assert.Equal("DequantizeLinear", g.FindNode("/conv1/Conv")!.Input(1)!.Producer!.OpType);
        Assert.Contains(r.Summary.Nodes, d => d.Node == "/fc1/Gemm" && !d.Quantized && d.Detail.Contains("/fc*"));
        var w = Quantizer.QuantizeWeightOnly(model, new WeightOnlyQuantizerOptions { ExcludeNodes = ["/conv?/Conv"] });
        Assert.Equal(2, w.Summary.QuantizedNodes);
    }

    [Fact]
    public void TensorOverridesAndActivationTypesAreApplied()
    {
        var r = Quantizer.QuantizeStatic(Examples.Load("fmnist_cnn"), Examples.Calib, Examples.Preprocessing(), new StaticQuantizerOptions
        {
            ActivationType = DataType.Int8,
            PerChannel = false,
            TensorOverrides = new Dictionary<string, TensorOverride> { ["input"] = new() { Scale = 0.25f, ZeroPoint = -3 } },
            Calibration = new CalibrationOptions { Samples = 32, BatchSize = 32 },
        });
        var q = r.Model.Graph.Nodes.Single(n => n.OpType == "QuantizeLinear" && n.Input(0)!.Name == "input");
        Assert.Equal(0.25f, ((Tensor<float>)q.Input(1)!.Initializer!).Data[0]);
        var zp = q.Input(2)!.Initializer!;
        Assert.Equal(DataType.Int8, zp.DataType);
        Assert.Equal(-3, zp.GetDouble(0));
        var w = r.Model.Graph.FindNode("/conv1/Conv")!.Input(1)!.Producer!;
        Assert.Equal(1, w.Input(1)!.Initializer!.Length);
    }

    [Fact]
    public void CalibratorsParseAndGiveRanges()
    {
        Assert.Equal(CalibratorKind.Percentile, CalibratorSpec.Parse("percentile:99.9").Kind);
        Assert.Equal(99.9, CalibratorSpec.Parse("percentile:99.9").Percentile);
        Assert.Throws<QuantSharpException>(() => CalibratorSpec.Parse("median"));
        Assert.Throws<QuantSharpException>(() => CalibratorSpec.Parse("percentile:20"));
        var model = Examples.Load("fmnist_cnn");
        var seen = new List<CalibrationProgress>();
        var minmax = Calibrator.Calibrate(model, Examples.Calib, Examples.Preprocessing(), ["/relu1/Relu_output_0", "input"],
            new CalibrationOptions { Samples = 96, BatchSize = 32, Progress = seen.Add });
        var pct = Calibrator.Calibrate(model, Examples.Calib, Examples.Preprocessing(), ["/relu1/Relu_output_0"],
            new CalibrationOptions { Samples = 96, BatchSize = 32, Calibrator = CalibratorSpec.Parse("percentile:99") });
        Assert.Equal([32, 64, 96], seen.Select(p => p.SamplesDone));
        var scheme = QuantSharp.Quantization.Math.QuantScheme.UInt8Asymmetric;
        var (lo, hi) = minmax.Range("/relu1/Relu_output_0", scheme);
        var (plo, phi) = pct.Range("/relu1/Relu_output_0", scheme);
        Assert.Equal(0, lo);
        Assert.True(hi > 0 && phi < hi && plo >= 0, $"minmax {hi}, percentile {phi}");
        Assert.Equal((0 - 0.2860) / 0.3530, minmax.Range("input", scheme).Min, 4);
    }

    [Fact]
    public void CliQuantizeWritesTheModelAndJson()
    {
        var dir = TestPaths.NewTempDir("qs-quant");
        try
        {
            string outPath = Path.Combine(dir, "cnn_w8.onnx");
            var r = Run("quantize", Examples.ModelPath("fmnist_cnn"), "-o", outPath, "--mode", "weight-only", "--weights", "int8", "--block", "0", "--json");
            Assert.Equal(0, r.Code);
            using var doc = JsonDocument.Parse(r.Out);
            Assert.Equal(new FileInfo(outPath).Length, doc.RootElement.GetProperty("output_bytes").GetInt64());
            Assert.Equal(new FileInfo(Examples.ModelPath("fmnist_cnn")).Length, doc.RootElement.GetProperty("input_bytes").GetInt64());
            Assert.Equal(5, doc.RootElement.GetProperty("quantized_nodes").GetInt32());
            Assert.Contains(OnnxModelIO.Load(outPath).Graph.Nodes, n => n.OpType == "DequantizeLinear");

            string sPath = Path.Combine(dir, "cnn_int8.onnx");
            r = Run("quantize", Examples.ModelPath("fmnist_cnn"), "-o", sPath, "--calib", "npz:" + Examples.CalibPath, "--samples", "64",
                "--calibrator", "percentile:99.99", "--scale", "1/255", "--mean", "0.2860", "--std", "0.3530", "--exclude", "/fc2/*");
            Assert.Equal(0, r.Code);
            Assert.Contains("quantized", r.Out);
            Assert.Contains("excluded by pattern '/fc2/*'", r.Out);

            r = Run("quantize", sPath, "-o", Path.Combine(dir, "again.onnx"), "--mode", "dynamic");
            Assert.Equal(1, r.Code);
            Assert.Contains("already quantized", r.Err);
            Assert.False(File.Exists(Path.Combine(dir, "again.onnx")));

            r = Run("quantize", Examples.ModelPath("fmnist_cnn"), "-o", Path.Combine(dir, "x.onnx"));
            Assert.Equal(2, r.Code);
            Assert.Contains("--calib", r.Err);
            r = Run("quantize", Examples.ModelPath("fmnist_cnn"), "-o", Path.Combine(dir, "x.onnx"), "--mode", "dynamic", "--calibrator", "bogus");
            Assert.Equal(2, r.Code);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void CliDemoPrintsTheTable()
    {
        var r = Run("demo", "--models", "fmnist_cnn", "--limit", "256", "--samples", "64", "--json");
        Assert.True(r.Code == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        var m = doc.RootElement.GetProperty("models")[0];
        Assert.Equal("fmnist_cnn", m.GetProperty("model").GetString());
        Assert.True(m.GetProperty("int8_bytes").GetInt64() < m.GetProperty("fp32_bytes").GetInt64() / 3);
        Assert.True(m.GetProperty("int8_accuracy").GetDouble() > 0.85);
    }

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = Program.Run(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }
}
