using QuantSharp.Graph;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Operators.NnTestGraph;

namespace QuantSharp.Tests.Operators;

public class NnPoolNormTests
{
    private static Tensor<float> Ramp(params int[] shape)
    {
        var t = new Tensor<float>(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = i;
        return t;
    }

    [Fact]
    public void MaxAndAveragePoolOnARamp()
    {
        // 4×4 ramp 0..15, 2×2 windows, stride 2: maxima are the bottom-right corners, means the block centres.
        var x = Ramp(1, 1, 4, 4);
        var max = Run("MaxPool", [R(x)], [L("kernel_shape", 2, 2), L("strides", 2, 2)], outputs: 2);
        Assert.Equal([5f, 7f, 13f, 15f], max[0].As<float>().Data);
        Assert.Equal([5L, 7L, 13L, 15L], max[1].As<long>().Data);
        var avg = Run("AveragePool", [R(x)], [L("kernel_shape", 2, 2), L("strides", 2, 2)]);
        Assert.Equal([2.5f, 4.5f, 10.5f, 12.5f], avg[0].As<float>().Data);
        // storage_order 1 reports the argmax column-major: (h, w) → h + H·w.
        var cm = Run("MaxPool", [R(x)], [L("kernel_shape", 2, 2), L("strides", 2, 2), A("storage_order", 1L)], outputs: 2);
        Assert.Equal([1L + 4 * 1, 1 + 4 * 3, 3 + 4 * 1, 3 + 4 * 3], cm[1].As<long>().Data);
    }

    [Fact]
    public void CeilModeAndPads()
    {
        // 1-D ramp 0..4, k=2, s=2, ceil_mode: windows [0,1], [2,3], [4] → max 1, 3, 4; mean 0.5, 2.5, 4.
        var x = Ramp(1, 1, 5);
        NodeAttribute[] ceil = [L("kernel_shape", 2), L("strides", 2), A("ceil_mode", 1L)];
        Assert.Equal([1f, 3f, 4f], Run("MaxPool", [R(x)], ceil)[0].As<float>().Data);
        Assert.Equal([0.5f, 2.5f, 4f], Run("AveragePool", [R(x)], ceil)[0].As<float>().Data);
        // pads 1/1, k=3, s=2 on 0..4: windows [p,0,1], [1,2,3], [3,4,p].
        NodeAttribute[] padded = [L("kernel_shape", 3), L("strides", 2), L("pads", 1, 1)];
        Assert.Equal([1f, 3f, 4f], Run("MaxPool", [R(x)], padded)[0].As<float>().Data);
        Assert.Equal([0.5f, 2f, 3.5f], Run("AveragePool", [R(x)], padded)[0].As<float>().Data);
        Assert.Equal([1f / 3, 2f, 7f / 3], Run("AveragePool", [R(x)], [.. padded, A("count_include_pad", 1L)])[0].As<float>().Data);
        // dilation 2, k=2 on 0..4: windows {0,2}, {1,3}, {2,4}.
        Assert.Equal([2f, 3f, 4f], Run("MaxPool", [R(x)], [L("kernel_shape", 2), L("dilations", 2)])[0].As<float>().Data);
        Assert.Equal([1f, 2f, 3f], Run("AveragePool", [R(x)], [L("kernel_shape", 2), L("dilations", 2)], opset: 19)[0].As<float>().Data);
        // SAME_UPPER on 5 with k=2, s=1: output 5, the last window padded at the end.
        Assert.Equal([1f, 2f, 3f, 4f, 4f], Run("MaxPool", [R(x)], [L("kernel_shape", 2), A("auto_pad", "SAME_UPPER")])[0].As<float>().Data);
    }

    [Fact]
    public void MaxPoolOnIntegersAnd3D()
    {
        var xb = new Tensor<byte>([1, 1, 2, 2]);
        xb.Data[0] = 3; xb.Data[1] = 200; xb.Data[2] = 7; xb.Data[3] = 1;
        Assert.Equal([(byte)200], Run("MaxPool", [R(xb)], [L("kernel_shape", 2, 2)])[0].As<byte>().Data);
        var x3 = Ramp(1, 2, 2, 2, 2);
        Assert.Equal([7f, 15f], Run("MaxPool", [R(x3)], [L("kernel_shape", 2, 2, 2)])[0].As<float>().Data);
        Assert.Equal([3.5f, 11.5f], Run("AveragePool", [R(x3)], [L("kernel_shape", 2, 2, 2)])[0].As<float>().Data);
    }

    [Theory]
    [InlineData("3,3", "2,2", "1,1,1,1", "1,1", 0)]
    [InlineData("3,3", "2,2", "0,0,0,0", "1,1", 1)]
    [InlineData("2,3", "1,2", "1,0,0,2", "2,1", 1)]
    [InlineData("5", "3", "2,2", "2", 0)]
    [InlineData("2,2,2", "2,1,2", "1,0,1,0,1,1", "1,1,2", 1)]
    public void MaxPoolFastPathMatchesIndexedPath(string kernel, string strides, string pads, string dilations, long ceil)
    {
        long[] P(string v) => v.Split(',').Select(long.Parse).ToArray();
        int rank = P(kernel).Length;
        int[] shape = [2, 3, .. Enumerable.Range(0, rank).Select(d => 9 + d * 4)];
        var x = Random(new Random(rank * 13 + (int)ceil), shape);
        NodeAttribute[] attrs = [L("kernel_shape", P(kernel)), L("strides", P(strides)), L("pads", P(pads)), L("dilations", P(dilations)), A("ceil_mode", ceil)];
        var fast = Run("MaxPool", [R(x)], attrs)[0];
        var indexed = Run("MaxPool", [R(x)], attrs, outputs: 2);
        Assert.Equal(indexed[0].As<float>().Data, fast.As<float>().Data);
        // Each index points at the value reported.
        var idx = indexed[1].As<long>().Data;
        for (int i = 0; i < idx.Length; i++) Assert.Equal(x.Data[idx[i]], fast.As<float>().Data[i]);
    }

    [Fact]
    public void GlobalPools()
    {
        var x = Ramp(2, 3, 2, 2);
        var avg = Run("GlobalAveragePool", [R(x)], [])[0];
        Assert.Equal([2, 3, 1, 1], avg.Shape);
        Assert.Equal([1.5f, 5.5f, 9.5f, 13.5f, 17.5f, 21.5f], avg.As<float>().Data);
        var max = Run("GlobalMaxPool", [R(x)], [])[0];
        Assert.Equal([3f, 7f, 11f, 15f, 19f, 23f], max.As<float>().Data);
    }

    [Fact]
    public void PoolShapeInference()
    {
        var m = Build("MaxPool", [R(new Tensor<float>([2, 3, 7, 7]))], [L("kernel_shape", 3, 3), L("strides", 2, 2), A("ceil_mode", 1L)], 2, 17);
        var t = Infer(m);
        Assert.Equal([2, 3, 3, 3], t[0]!.ConcreteShape()!);
        Assert.Equal(DataType.Int64, t[1]!.ElementType);
    }

    [Fact]
    public void NormalizationShapeInference()
    {
        var m = Build("LayerNormalization", [R(new Tensor<float>([2, 5, 6])), C(new Tensor<float>([6]))], [A("axis", 1L)], 3, 17);
        var t = Infer(m);
        Assert.Equal([2, 5, 6], t[0]!.ConcreteShape()!);
        Assert.Equal([2, 1, 1], t[1]!.ConcreteShape()!);
        Assert.Equal([2, 1, 1], t[2]!.ConcreteShape()!);
        var g = Build("GlobalAveragePool", [R(new Tensor<float>([2, 5, 6, 7]))], [], 1, 17);
        Assert.Equal([2, 5, 1, 1], Infer(g)[0]!.ConcreteShape()!);
    }

    [Fact]
    public void BatchNormalizationInferenceAndTraining()
    {
        var rnd = new Random(3);
        var x = Random(rnd, 2, 3, 2, 2);
        float[] scale = [1f, 2f, -1f], bias = [0f, 0.5f, 1f], mean = [0.1f, -0.2f, 0.3f], var = [1f, 0.5f, 2f];
        var y = Run("BatchNormalization", [R(x), C(F(scale, 3)), C(F(bias, 3)), C(F(mean, 3)), C(F(var, 3))], [A("epsilon", 1e-3f)], opset: 15)[0];
        var expected = new Tensor<float>(x.Shape);
        for (int i = 0; i < x.Length; i++)
        {
            int c = i / 4 % 3;
            expected.Data[i] = (x.Data[i] - mean[c]) / MathF.Sqrt(var[c] + 1e-3f) * scale[c] + bias[c];
        }
        AssertClose(expected, y, 1e-5f);

        var tr = Run("BatchNormalization", [R(x), C(F(scale, 3)), C(F(bias, 3)), C(F(mean, 3)), C(F(var, 3))],
            [A("training_mode", 1L), A("momentum", 0.8f)], outputs: 3, opset: 15);
        for (int c = 0; c < 3; c++)
        {
            var vals = Enumerable.Range(0, x.Length).Where(i => i / 4 % 3 == c).Select(i => (double)x.Data[i]).ToArray();
            double mu = vals.Average(), v = vals.Select(q => (q - mu) * (q - mu)).Average();
            Assert.Equal(mean[c] * 0.8 + mu * 0.2, tr[1].As<float>().Data[c], 5);
            Assert.Equal(var[c] * 0.8 + v * 0.2, tr[2].As<float>().Data[c], 5);
            foreach (int i in Enumerable.Range(0, x.Length).Where(i => i / 4 % 3 == c))
                Assert.Equal((x.Data[i] - mu) / Math.Sqrt(v + 1e-5) * scale[c] + bias[c], tr[0].As<float>().Data[i], 4);
        }
    }

    [Fact]
    public void InstanceAndLayerNormalization()
    {
        var rnd = new Random(5);
        var x = Random(rnd, 2, 3, 4);
        float[] scale = [1f, -2f, 0.5f], bias = [0.1f, 0.2f, 0.3f];
        var y = Run("InstanceNormalization", [R(x), C(F(scale, 3)), C(F(bias, 3))], [A("epsilon", 1e-4f)])[0].As<float>();
        for (int p = 0; p < 6; p++)
        {
            var v = x.Data.Skip(p * 4).Take(4).Select(f => (double)f).ToArray();
            double mu = v.Average(), sd = Math.Sqrt(v.Select(q => (q - mu) * (q - mu)).Average() + 1e-4);
            for (int i = 0; i < 4; i++) Assert.Equal((v[i] - mu) / sd * scale[p % 3] + bias[p % 3], y.Data[p * 4 + i], 4);
        }

        // LayerNormalization over the last two axes (axis = −2) with scale/bias of shape [3, 4].
        var s = Random(rnd, 3, 4);
        var b = Random(rnd, 4);
        var ln = Run("LayerNormalization", [R(x), C(s), C(b)], [A("axis", -2L)], outputs: 3);
        Assert.Equal([2, 1, 1], ln[1].Shape);
        for (int r = 0; r < 2; r++)
        {
            var v = x.Data.Skip(r * 12).Take(12).Select(f => (double)f).ToArray();
            double mu = v.Average(), inv = 1 / Math.Sqrt(v.Select(q => (q - mu) * (q - mu)).Average() + 1e-5);
            Assert.Equal(mu, ln[1].As<float>().Data[r], 5);
            Assert.Equal(inv, ln[2].As<float>().Data[r], 4);
            for (int i = 0; i < 12; i++)
                Assert.Equal((v[i] - mu) * inv * s.Data[i] + b.Data[i % 4], ln[0].As<float>().Data[r * 12 + i], 4);
        }
        // Default axis −1 without bias.
        var ln1 = Run("LayerNormalization", [R(x), C(F([2f, 2f, 2f, 2f], 4))], [])[0].As<float>();
        var row = x.Data.Take(4).Select(f => (double)f).ToArray();
        double m0 = row.Average(), i0 = 1 / Math.Sqrt(row.Select(q => (q - m0) * (q - m0)).Average() + 1e-5);
        Assert.Equal((row[0] - m0) * i0 * 2, ln1.Data[0], 4);
    }
}
