using QuantSharp.Graph;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Operators.OpTester;

namespace QuantSharp.Tests.Operators;

public class MoreElementwiseTests
{
    [Fact]
    public void ModFollowsDivisorOrDividendSign()
    {
        var a = L([7, -7, 7, -7, 0], 5);
        var b = L([3, 3, -3, -3, 5], 5);
        Assert.Equal([1L, 2, -2, -1, 0], Run1("Mod", 13, [a, b]).As<long>().Data);
        Assert.Equal([1L, -1, 1, -1, 0], Run1("Mod", 13, [a, b], [NodeAttribute.Of("fmod", 1L)]).As<long>().Data);
        var f = Run1("Mod", 13, [F([5.5f, -5.5f], 2), F([2f], 1)], [NodeAttribute.Of("fmod", 1L)]);
        AllClose([1.5, -1.5], f);
    }

    [Fact]
    public void BitShiftBothDirections()
    {
        var x = new Tensor<byte>([1, 16, 255], [3]);
        var n = new Tensor<byte>([1, 2, 8], [3]);
        Assert.Equal([(byte)2, (byte)64, (byte)0], Run1("BitShift", 11, [x, n], [NodeAttribute.Of("direction", "LEFT")]).As<byte>().Data);
        Assert.Equal([(byte)0, (byte)4, (byte)0], Run1("BitShift", 11, [x, n], [NodeAttribute.Of("direction", "RIGHT")]).As<byte>().Data);
    }

    [Fact]
    public void HardmaxMarksFirstMaximum()
    {
        var x = F([1f, 3f, 3f, 0f, 5f, 2f], 2, 3);
        Assert.Equal([0f, 1f, 0f, 0f, 1f, 0f], Run1("Hardmax", 13, [x]).As<float>().Data);
        // Opset 11 coerces to 2-D at axis 0: one row of six values.
        Assert.Equal([0f, 0f, 0f, 0f, 1f, 0f], Run1("Hardmax", 11, [x], [NodeAttribute.Of("axis", 0L)]).As<float>().Data);
    }

    [Fact]
    public void SmoothActivationsMatchFormulas()
    {
        var x = F([-30f, -2f, -1e-7f, 0f, 0.5f, 3f, 40f], 7);
        double[] v = x.Data.Select(t => (double)t).ToArray();
        AllClose(v.Select(t => t < 0 ? Math.Exp(t) - 1 : t).ToArray(), Run1("Elu", 6, [x]), 1e-6, 1e-7);
        AllClose(v.Select(t => 1.0507009873554805 * (t > 0 ? t : 1.6732632423543772 * (Math.Exp(t) - 1))).ToArray(), Run1("Selu", 6, [x]), 1e-6, 1e-7);
        AllClose(v.Select(t => Math.Log(1 + Math.Exp(t))).ToArray(), Run1("Softplus", 1, [x]), 1e-6, 1e-7);
        AllClose(v.Select(t => t / (1 + Math.Abs(t))).ToArray(), Run1("Softsign", 1, [x]), 1e-6, 1e-7);
        AllClose(v.Select(t => t > 1 ? t : 0).ToArray(), Run1("ThresholdedRelu", 10, [x]));
        AllClose(v.Select(Math.Sin).ToArray(), Run1("Sin", 7, [x]), 1e-6, 1e-6);
        Assert.Equal([false, true, false], Run1("IsNaN", 13, [F([1f, float.NaN, float.PositiveInfinity], 3)]).As<bool>().Data);
        Assert.Equal([false, false, true, true], Run1("IsInf", 10, [F([1f, float.NaN, float.PositiveInfinity, float.NegativeInfinity], 4)]).As<bool>().Data);
        Assert.Equal([false, false, false, true], Run1("IsInf", 10, [F([1f, float.NaN, float.PositiveInfinity, float.NegativeInfinity], 4)], [NodeAttribute.Of("detect_positive", 0L)]).As<bool>().Data);
    }

    [Fact]
    public void CastToFourBitTypesWraps()
    {
        var x = F([-9f, -8f, -1f, 0f, 7f, 8f, 15f, 16f], 8);
        var i4 = Run1("Cast", 21, [x], [NodeAttribute.Of("to", (long)DataType.Int4)]);
        Assert.Equal(DataType.Int4, i4.DataType);
        Assert.Equal([(sbyte)7, (sbyte)-8, (sbyte)-1, (sbyte)0, (sbyte)7, (sbyte)-8, (sbyte)-1, (sbyte)0], i4.As<sbyte>().Data);
        var u4 = Run1("Cast", 21, [x], [NodeAttribute.Of("to", (long)DataType.UInt4)]);
        Assert.Equal([(byte)7, (byte)8, (byte)15, (byte)0, (byte)7, (byte)8, (byte)15, (byte)0], u4.As<byte>().Data);
        var back = Run1("Cast", 21, [i4], [NodeAttribute.Of("to", (long)DataType.Float)]);
        Assert.Equal([7f, -8f, -1f, 0f, 7f, -8f, -1f, 0f], back.As<float>().Data);
    }
}
