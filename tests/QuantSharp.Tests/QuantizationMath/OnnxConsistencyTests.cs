using QuantSharp.Graph;
using QuantSharp.Quantization.Math;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Quantization.QuantGraph;

namespace QuantSharp.Tests.QuantizationMath;

/// <summary>The parameters and codes of QuantOps agree with the runtime's ONNX QuantizeLinear/DequantizeLinear kernels.</summary>
public class OnnxConsistencyTests
{
    [Fact]
    public void QuantizeAndDequantizeMatchTheOnnxKernels()
    {
        var r = new Random(31);
        int[] shape = [3, 10, 4];
        var x = Enumerable.Range(0, 120).Select(i => (float)((r.NextDouble() - 0.4) * (1 + i % 7))).ToArray();
        x[17] = 0f;
        var schemes = new[]
        {
            QuantScheme.Int8Symmetric,
            QuantScheme.UInt8Asymmetric,
            QuantScheme.Integer(16, true, false),
            QuantScheme.Int8Symmetric.PerAxis(1),
            QuantScheme.UInt8Asymmetric.PerAxis(-1),
            QuantScheme.Int4Symmetric.PerBlock(1, 4),
            QuantScheme.Integer(4, false, false).PerBlock(1, 3),
        };
        foreach (var s in schemes)
        {
            var p = QuantParams.FromData(x, shape, s);
            var attrs = new List<NodeAttribute>();
            if (s.Granularity != QuantGranularity.PerTensor) attrs.Add(A("axis", s.Axis));
            if (s.Granularity == QuantGranularity.Blocked) attrs.Add(A("block_size", s.BlockSize));
            var xt = new Tensor<float>(x, shape);
            var q = Run1("QuantizeLinear", [xt, p.ScaleTensor(), p.ZeroPointTensor()], attrs.ToArray());
            var mine = QuantOps.ToStorage(QuantOps.Quantize(xt, p), s);
            Assert.Equal(mine.DataType, q.DataType);
            for (int i = 0; i < x.Length; i++) Assert.Equal(mine.GetDouble(i), q.GetDouble(i));
            var y = Run1("DequantizeLinear", [q, p.ScaleTensor(), p.ZeroPointTensor()], attrs.ToArray()).As<float>();
            var fake = QuantOps.FakeQuantize(xt, p);
            Assert.Equal(fake.Data, y.Data);
            Assert.Equal(0f, fake.Data[17]);
        }
    }
}
