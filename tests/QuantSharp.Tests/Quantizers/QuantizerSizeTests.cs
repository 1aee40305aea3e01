using QuantSharp.Graph;
using QuantSharp.Onnx;
using QuantSharp.Quantization.Calibration;
using QuantSharp.Quantization.Passes;
using QuantSharp.Quantization.Quantizers;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Quantizers;

/// <summary>What keeps quantized files small: short generated names, shared constants, float16 block scales.</summary>
public class QuantizerSizeTests
{
    private static Model RoundTrip(Model m) => OnnxModelIO.Load(OnnxModelIO.ToBytes(m), null);

    [Fact]
    public void GeneratedValuesGetShortNamesAndOriginalNamesStay()
    {
        var source = Examples.Load("fmnist_vit");
        var q = RoundTrip(QuantizerTests.Static("fmnist_vit").Model);
        var originalValues = QdqCompaction.ValueNames(source);
        var originalNodes = source.Graph.Nodes.Select(n => n.Name).ToHashSet();
        foreach (var n in q.Graph.Nodes)
        {
            if (n.OpType is "QuantizeLinear" or "DequantizeLinear") Assert.True(n.Name.Length <= 5, $"generated node name '{n.Name}'");
            else Assert.Contains(n.Name, originalNodes);
            foreach (var o in n.Outputs)
                if (o is not null && !originalValues.Contains(o.Name)) Assert.True(o.Name.Length <= 2, $"generated value name '{o.Name}'");
        }
        Assert.Equal(source.Graph.RuntimeInputs.Select(v => v.Name), q.Graph.RuntimeInputs.Select(v => v.Name));
        // Identical constants are stored once.
        var keys = q.Graph.Initializers.Select(v => (v.Initializer!.DataType, string.Join(',', v.Initializer.Shape),
            string.Join(',', Enumerable.Range(0, v.Initializer.Length).Select(i => v.Initializer.GetDouble(i))))).ToList();
        Assert.Equal(keys.Count, keys.Distinct().Count());
    }

    [Fact]
    public void LongNamesOptionKeepsDescriptiveNames()
    {
        var r = Quantizer.QuantizeStatic(Examples.Load("fmnist_cnn"), Examples.Calib, Examples.Preprocessing(), new StaticQuantizerOptions
        {
            Names = QuantizedNames.Descriptive, Calibration = new CalibrationOptions { Samples = 64, BatchSize = 64 },
        });
        Assert.Contains(r.Model.Graph.Nodes, n => n.OpType == "DequantizeLinear" && n.Name.EndsWith("_DQ", StringComparison.Ordinal));
        Assert.Contains(r.Model.Graph.Initializers, v => v.Name.EndsWith("_q", StringComparison.Ordinal));
        long shortBytes = OnnxModelIO.ToBytes(QuantizerTests.Static("fmnist_cnn").Model).LongLength;
        Assert.True(OnnxModelIO.ToBytes(r.Model).LongLength > shortBytes);
    }

    [Fact]
    public void MinimalNamesRenameEveryInternalValueButKeepNodeNames()
    {
        var source = Examples.Load("fmnist_cnn");
        var r = Quantizer.QuantizeStatic(source, Examples.Calib, Examples.Preprocessing(), new StaticQuantizerOptions
        {
            Names = QuantizedNames.Minimal, Calibration = new CalibrationOptions { Samples = 64, BatchSize = 64 },
        });
        var g = r.Model.Graph;
        var io = g.Inputs.Concat(g.Outputs).ToHashSet();
        foreach (var v in g.Initializers.Concat(g.Nodes.SelectMany(n => n.Outputs)).OfType<Value>().Where(v => !io.Contains(v)))
            Assert.True(v.Name.Length <= 2, $"value '{v.Name}'");
        Assert.Equal(source.Graph.Outputs.Select(v => v.Name), g.Outputs.Select(v => v.Name));
        var convs = source.Graph.Nodes.Where(n => n.OpType == "Conv").Select(n => n.Name);
        Assert.All(convs, c => Assert.NotNull(g.FindNode(c)));
        Assert.True(OnnxModelIO.ToBytes(r.Model).LongLength < OnnxModelIO.ToBytes(QuantizerTests.Static("fmnist_cnn").Model).LongLength);
    }

    [Fact]
    public void Int4Block32CnnIsAtMost16PercentWithFloat16Scales()
    {
        var model = Examples.Load("fmnist_cnn");
        var r = Quantizer.QuantizeWeightOnly(model, new WeightOnlyQuantizerOptions { WeightType = DataType.Int4, BlockSize = 32 });
        long fp32 = new FileInfo(Examples.ModelPath("fmnist_cnn")).Length;
        long w4 = OnnxModelIO.ToBytes(r.Model).LongLength;
        Assert.True(w4 <= 0.16 * fp32, $"{w4} bytes is {100.0 * w4 / fp32:0.0} % of {fp32}");
        var q = RoundTrip(r.Model);
        foreach (var dq in q.Graph.Nodes.Where(n => n.OpType == "DequantizeLinear"))
        {
            Assert.Equal(DataType.Float16, dq.Input(1)!.Initializer!.DataType);
            Assert.Null(dq.Input(2));
            var cast = Assert.Single(dq.Output(0)!.Uses).Node;
            Assert.Equal("Cast", cast.OpType);
            Assert.Equal((long)DataType.Float, cast.GetInt("to", 0));
        }
        // Float scales stay available: no Cast, a larger file.
        var f = Quantizer.QuantizeWeightOnly(model, new WeightOnlyQuantizerOptions { WeightType = DataType.Int4, BlockSize = 32, ScaleType = DataType.Float });
        Assert.All(f.Model.Graph.Nodes.Where(n => n.OpType == "DequantizeLinear"), dq => Assert.Equal(DataType.Float, dq.Input(1)!.Initializer!.DataType));
        Assert.DoesNotContain(f.Model.Graph.Nodes, n => n.OpType == "Cast");
        Assert.True(OnnxModelIO.ToBytes(f.Model).LongLength > w4);
    }

    [Fact]
    public void SoftmaxOutputsKeepTheirWholeRangeUnderClippingCalibrators()
    {
        var r = Quantizer.QuantizeStatic(Examples.Load("fmnist_vit"), Examples.Calib, Examples.Preprocessing(), new StaticQuantizerOptions
        {
            Calibration = new CalibrationOptions { Calibrator = CalibratorSpec.Parse("entropy"), Samples = 64, BatchSize = 64 },
        });
        var qs = r.Model.Graph.Nodes.Where(n => n.OpType == "QuantizeLinear" && n.Input(0)!.Producer?.OpType == "Softmax").ToList();
        Assert.Equal(2, qs.Count);
        foreach (var q in qs)
        {
            // Scale 1/256, zero point 0: the whole [0, 1) range, as ONNX Runtime's QLinearSoftmax expects.
            Assert.Equal(1f / 256f, ((Tensor<float>)q.Input(1)!.Initializer!).Data[0]);
            Assert.Equal(0, q.Input(2)!.Initializer!.GetDouble(0));
        }
    }
}
