using QuantSharp.Quantization.Math;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Quantization;

public class QuantMathTests
{
    [Fact]
    public void RoundHalfToEvenAndSaturatingCasts()
    {
        foreach (double v in new[] { 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001 })
            Assert.Equal(Math.Round(v, MidpointRounding.ToEven), QuantMath.RoundHalfToEven(v));
        Assert.Equal(MathF.Round(2.5f, MidpointRounding.ToEven), QuantMath.RoundHalfToEven(2.5f));
        Assert.Equal(byte.MaxValue, QuantMath.SaturateToUInt8(1000));
        Assert.Equal(byte.MinValue, QuantMath.SaturateToUInt8(-1));
        Assert.Equal(sbyte.MinValue, QuantMath.SaturateToInt8(-1000));
        Assert.Equal(short.MaxValue, QuantMath.SaturateToInt16(1 << 20));
        Assert.Equal(ushort.MaxValue, QuantMath.SaturateToUInt16(1 << 20));
        Assert.Equal(Int4.Int4Min, QuantMath.SaturateToInt4(-9));
        Assert.Equal(Int4.Int4Max, QuantMath.SaturateToInt4(8));
        Assert.Equal(Int4.UInt4Max, QuantMath.SaturateToUInt4(16));
        Assert.Equal(int.MaxValue, QuantMath.SaturateToInt32(long.MaxValue));
        Assert.Equal(int.MinValue, QuantMath.RoundToInt32(double.NegativeInfinity));
        Assert.Equal(0, QuantMath.RoundToInt32(double.NaN));
        Assert.Equal((-8, 7), QuantMath.Range(DataType.Int4));
        Assert.Equal((0, 15), QuantMath.Range(DataType.UInt4));
        Assert.Throws<QuantSharpException>(() => QuantMath.Range(DataType.Float));
    }

    [Fact]
    public void QuantizeAndDequantizeScalars()
    {
        Assert.Equal(2, QuantMath.Quantize(5f, 2f, 0, -128, 127));   // 2.5 → 2
        Assert.Equal(14, QuantMath.Quantize(7f, 2f, 10, 0, 255));    // 3.5 → 4, + 10
        Assert.Equal(255, QuantMath.Quantize(1e9f, 1f, 0, 0, 255));
        Assert.Equal(-1.5f, QuantMath.Dequantize(7, 0.5f, 10));
    }

    [Fact]
    public void RoundToPrecisionMatchesTheNarrowType()
    {
        var r = new Random(9);
        for (int i = 0; i < 1000; i++)
        {
            float a = (float)(r.NextDouble() * 200 - 100), b = (float)(r.NextDouble() * 3 + 0.01);
            Assert.Equal((double)(a / b), QuantMath.RoundToPrecision((double)a / b, DataType.Float));
            // Operands already in float16: float division rounded to float16 is the correctly rounded float16 quotient.
            float ha = (float)(Half)a, hb = (float)(Half)b;
            Assert.Equal((double)(Half)(ha / hb), QuantMath.RoundToPrecision((double)ha / hb, DataType.Float16));
        }
    }

    [Fact]
    public void LayoutMapsElementsToParameters()
    {
        // x [2, 5, 3], blocked along axis 1 with block 2 → scale [2, 3, 3].
        var l = QuantParamLayout.Resolve([2, 5, 3], [2, 3, 3], 1, 2);
        Assert.Equal(QuantGranularity.Blocked, l.Granularity);
        Assert.Equal(18, l.ParamCount);
        for (int i = 0; i < 30; i++)
        {
            int a = i / 15, d = i / 3 % 5, c = i % 3;
            Assert.Equal((a * 3 + d / 2) * 3 + c, l.ParamIndex(i));
        }
        var pa = QuantParamLayout.Resolve([2, 5, 3], [5], -2, 0);
        Assert.Equal(QuantGranularity.PerAxis, pa.Granularity);
        for (int i = 0; i < 30; i++) Assert.Equal(i / 3 % 5, pa.ParamIndex(i));
        Assert.Equal(QuantGranularity.PerTensor, QuantParamLayout.Resolve([2, 5, 3], [1], 1, 0).Granularity);
        Assert.Throws<QuantSharpException>(() => QuantParamLayout.Resolve([2, 5, 3], [2, 2, 3], 1, 2));
        Assert.Throws<QuantSharpException>(() => QuantParamLayout.Resolve([2, 5, 3], [4], 1, 0));
    }
}
