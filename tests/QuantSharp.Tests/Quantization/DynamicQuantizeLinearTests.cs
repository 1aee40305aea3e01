using QuantSharp.Tensors;
using static QuantSharp.Tests.Quantization.QuantGraph;

namespace QuantSharp.Tests.Quantization;

public class DynamicQuantizeLinearTests
{
    /// <summary>The ONNX formula in float32: scale = (max(0,max) − min(0,min)) / 255, zp = round(clip(−min/scale, 0, 255)).</summary>
    private static (float Scale, int Zp, int[] Y) Reference(float[] x)
    {
        float min = Math.Min(0f, x.Min()), max = Math.Max(0f, x.Max());
        float scale = (max - min) / 255f;
        if (scale == 0f) scale = 1f;
        int zp = (int)Math.Round(Math.Clamp(0f - min / scale, 0f, 255f), MidpointRounding.ToEven);
        return (scale, zp, x.Select(v => RefQuantize(v, scale, zp, DataType.UInt8)).ToArray());
    }

    [Theory]
    [InlineData(-3f, 5f)]
    [InlineData(1f, 9f)]     // all positive: min adjusted to 0
    [InlineData(-9f, -1f)]   // all negative: max adjusted to 0
    [InlineData(-0.001f, 100f)]
    public void MatchesFormula(float lo, float hi)
    {
        var x = RandomFloats(new Random((int)(lo * 100 + hi)), 97, lo, hi);
        var outs = Run("DynamicQuantizeLinear", [F(x, 97)], opset: 11, outputCount: 3);
        var (scale, zp, y) = Reference(x);
        Assert.Equal(DataType.UInt8, outs[0].DataType);
        Assert.Equal(y, IntsOf(outs[0]));
        Assert.Equal(scale, outs[1].As<float>().Data[0]);
        Assert.Empty(outs[1].Shape);
        Assert.Equal(zp, IntsOf(outs[2])[0]);
        Assert.Equal(DataType.UInt8, outs[2].DataType);
    }

    [Fact]
    public void AllZeroInputGivesZeroCodesAndZeroPoint()
    {
        var outs = Run("DynamicQuantizeLinear", [F(new float[6], 2, 3)], opset: 11, outputCount: 3);
        Assert.All(IntsOf(outs[0]), v => Assert.Equal(0, v));
        Assert.Equal(0, IntsOf(outs[2])[0]);
        Assert.True(float.IsFinite(outs[1].As<float>().Data[0]) && outs[1].As<float>().Data[0] > 0);
    }
}
