using QuantSharp.Tensors;
using static QuantSharp.Tests.Operators.ShapeTestUtil;

namespace QuantSharp.Tests.Operators;

public class ShapeReshapeTests
{
    [Theory]
    [InlineData(0, 1, 120)]
    [InlineData(1, 2, 60)]
    [InlineData(2, 6, 20)]
    [InlineData(4, 120, 1)]
    [InlineData(-1, 24, 5)]
    [InlineData(-4, 1, 120)]
    public void FlattenSplitsDimensionsAtAxis(long axis, int rows, int cols)
    {
        var x = Seq(2, 3, 4, 5);
        var y = Run1("Flatten", 13, [x], A("axis", axis));
        Assert.Equal([rows, cols], y.Shape);
        Assert.Equal(x.Data, y.As<float>().Data);
    }

    [Fact]
    public void ReshapeCopiesZeroAndInfersMinusOne()
    {
        var x = Seq(2, 3, 4);
        var y = Run1("Reshape", 13, [x, Longs(0, -1)]);
        Assert.Equal([2, 12], y.Shape);
        Assert.Equal(x.Data, y.As<float>().Data);
        y = Run1("Reshape", 5, [x, Longs(4, 0, -1)]);
        Assert.Equal([4, 3, 2], y.Shape);
    }

    [Fact]
    public void ReshapeAllowZeroKeepsZeroDimensions()
    {
        var x = new Tensor<float>([0, 3, 4]);
        var y = Run1("Reshape", 14, [x, Longs(3, 4, 0)], A("allowzero", 1L));
        Assert.Equal([3, 4, 0], y.Shape);
        // Without allowzero a 0 copies the input dimension.
        var z = Run1("Reshape", 14, [Seq(2, 3), Longs(0, 3)]);
        Assert.Equal([2, 3], z.Shape);
    }

    [Fact]
    public void ReshapeOpset1UsesAttributeAndRejectsBadCounts()
    {
        var y = Run1("Reshape", 1, [Seq(6)], A("shape", new long[] { 3, 2 }));
        Assert.Equal([3, 2], y.Shape);
        Assert.Throws<QuantSharpException>(() => Run1("Reshape", 13, [Seq(6), Longs(4, -1)]));
    }

    [Fact]
    public void ReshapeKeepsElementTypes()
    {
        var b = Of(new[] { true, false, true, true, false, false }, 2, 3);
        Same<bool>(Of(b.Data, 3, 2), Run1("Reshape", 13, [b, Longs(3, 2)]));
        var l = Of(new long[] { 1, -2, long.MaxValue, 4 }, 4);
        Same<long>(Of(l.Data, 2, 2), Run1("Reshape", 13, [l, Longs(2, 2)]));
        var h = Of(new[] { (Half)1, (Half)2 }, 2);
        Same<Half>(Of(h.Data, 1, 2), Run1("Reshape", 13, [h, Longs(1, -1)]));
    }

    [Fact]
    public void SqueezeWithAttributeInputOrNothing()
    {
        var x = Seq(1, 3, 1, 2);
        Assert.Equal([3, 2], Run1("Squeeze", 11, [x]).Shape);
        Assert.Equal([3, 1, 2], Run1("Squeeze", 11, [x], A("axes", new long[] { 0 })).Shape);
        Assert.Equal([1, 3, 2], Run1("Squeeze", 11, [x], A("axes", new long[] { -2 })).Shape);
        Assert.Equal([3, 2], Run1("Squeeze", 13, [x, Longs(0, -2)]).Shape);
        Assert.Equal([3, 2], Run1("Squeeze", 13, [x, null]).Shape);
        Assert.Throws<QuantSharpException>(() => Run1("Squeeze", 13, [x, Longs(1)]));
        Assert.Equal([], Run1("Squeeze", 13, [Seq(1, 1)]).Shape);
    }

    [Fact]
    public void UnsqueezeInsertsAxesInOutputPositions()
    {
        var x = Seq(3, 4);
        Assert.Equal([1, 3, 4], Run1("Unsqueeze", 11, [x], A("axes", new long[] { 0 })).Shape);
        Assert.Equal([3, 1, 4, 1], Run1("Unsqueeze", 13, [x, Longs(3, 1)]).Shape);
        Assert.Equal([3, 4, 1], Run1("Unsqueeze", 13, [x, Longs(-1)]).Shape);
        Assert.Equal([1, 3, 1, 4, 1], Run1("Unsqueeze", 13, [x, Longs(-1, 0, 2)]).Shape);
        var s = Run1("Unsqueeze", 13, [Tensor<long>.Scalar(7), Longs(0)]);
        Same<long>(Of(new long[] { 7 }, 1), s);
        Assert.Throws<QuantSharpException>(() => Run1("Unsqueeze", 13, [x, Longs(1, 1)]));
    }

    [Fact]
    public void IdentityAndDropoutCopy()
    {
        var x = Seq(2, 3);
        var outs = Run("Dropout", 13, [x], outputs: 2);
        Assert.Equal(x.Data, outs[0].As<float>().Data);
        Assert.All(outs[1].As<bool>().Data, Assert.True);
        outs = Run("Dropout", 13, [x, Tensor<float>.Scalar(0.5f), Tensor<bool>.Scalar(false)], outputs: 2);
        Assert.Equal(x.Data, outs[0].As<float>().Data);
        outs = Run("Dropout", 7, [x], outputs: 2);
        Assert.Equal(DataType.Float, outs[1].DataType);
        Assert.All(outs[1].As<float>().Data, v => Assert.Equal(1f, v));
        // Training with ratio 0 keeps everything.
        outs = Run("Dropout", 13, [x, Tensor<float>.Scalar(0f), Tensor<bool>.Scalar(true)], outputs: 2);
        Assert.Equal(x.Data, outs[0].As<float>().Data);
        // Training with ratio r: kept elements are scaled by 1/(1-r), the rest are 0, and the mask says which.
        outs = Run("Dropout", 13, [x, Tensor<float>.Scalar(0.5f), Tensor<bool>.Scalar(true)], [A("seed", 3f)], outputs: 2);
        var m = outs[1].As<bool>().Data;
        var y = outs[0].As<float>().Data;
        for (int i = 0; i < y.Length; i++) Assert.Equal(m[i] ? x.Data[i] * 2 : 0, y[i], 5);
    }
}
