using QuantSharp.Graph;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Operators.ShapeTestUtil;

namespace QuantSharp.Tests.Operators;

public class ShapeMiscTests
{
    [Fact]
    public void ShapeWithStartAndEnd()
    {
        var x = Seq(2, 3, 4);
        Same<long>(Longs(2, 3, 4), Run1("Shape", 13, [x]));
        Same<long>(Longs(3, 4), Run1("Shape", 15, [x], A("start", 1L)));
        Same<long>(Longs(2, 3), Run1("Shape", 15, [x], A("end", -1L)));
        Same<long>(Longs(2, 3, 4), Run1("Shape", 15, [x], A("start", -10L), A("end", 10L)));
        Same<long>(Longs(), Run1("Shape", 15, [x], A("start", 2L), A("end", 1L)));
        // Before opset 15 the attributes do not exist.
        Same<long>(Longs(2, 3, 4), Run1("Shape", 13, [x], A("start", 1L)));
        Same<long>(Longs(), Run1("Shape", 13, [Tensor<bool>.Scalar(true)]));
    }

    [Fact]
    public void SizeCountsElements()
    {
        Same<long>(Tensor<long>.Scalar(24), Run1("Size", 13, [Seq(2, 3, 4)]));
        Same<long>(Tensor<long>.Scalar(0), Run1("Size", 13, [new Tensor<float>([3, 0])]));
    }

    [Fact]
    public void ExpandBroadcastsBothWays()
    {
        var x = Seq(3, 1);
        var y = Run1("Expand", 13, [x, Longs(2, 1, 4)]);
        Assert.Equal([2, 3, 4], y.Shape);
        for (int o = 0; o < y.Length; o++) Assert.Equal(x.Data[Unravel(o, [2, 3, 4])[1]], y.As<float>().Data[o]);
        // A smaller target keeps the input's larger dimensions.
        Assert.Equal([3, 1], Run1("Expand", 8, [x, Longs(1)]).Shape);
        var s = Run1("Expand", 13, [Tensor<bool>.Scalar(true), Longs(2, 2)]);
        Same<bool>(Of(new[] { true, true, true, true }, 2, 2), s);
        Assert.Throws<QuantSharpException>(() => Run1("Expand", 13, [x, Longs(2, 5)]));
    }

    [Fact]
    public void TileRepeatsEachAxis()
    {
        var x = Seq(2, 3);
        var y = Run1("Tile", 13, [x, Longs(2, 3)]);
        Assert.Equal([4, 9], y.Shape);
        for (int o = 0; o < y.Length; o++)
        {
            var oi = Unravel(o, [4, 9]);
            Assert.Equal(x.Data[(oi[0] % 2) * 3 + oi[1] % 3], y.As<float>().Data[o]);
        }
        Assert.Equal([0, 3], Run1("Tile", 13, [x, Longs(0, 1)]).Shape);
        var old = Run1("Tile", 1, [x, Tensor<long>.Scalar(2), Tensor<long>.Scalar(1)]);
        Assert.Equal([2, 6], old.Shape);
    }

    [Fact]
    public void ConstantVariants()
    {
        var t = Of(new[] { 1.5f, 2.5f }, 2);
        Same<float>(t, Run1("Constant", 13, [], A("value", t)));
        Same<float>(Tensor<float>.Scalar(3f), Run1("Constant", 13, [], A("value_float", 3f)));
        Same<float>(Of(new[] { 1f, 2f }, 2), Run1("Constant", 13, [], A("value_floats", new[] { 1f, 2f })));
        Same<long>(Tensor<long>.Scalar(-4), Run1("Constant", 13, [], A("value_int", -4L)));
        Same<long>(Longs(4, 5), Run1("Constant", 13, [], A("value_ints", new long[] { 4, 5 })));
        Same<string>(Tensor<string>.Scalar("hi"), Run1("Constant", 13, [], A("value_string", "hi")));
        var strings = new NodeAttribute("value_strings", AttributeKind.Strings) { Strings = ["a", "b"] };
        Same<string>(Of(new[] { "a", "b" }, 2), Run1("Constant", 13, [], strings));
        // The output is a copy: changing it leaves the attribute alone.
        var y = Run1("Constant", 13, [], A("value", t));
        y.As<float>().Data[0] = 99;
        Assert.Equal(1.5f, t.Data[0]);
    }

    [Fact]
    public void ConstantOfShapeFillsWithValue()
    {
        var y = Run1("ConstantOfShape", 9, [Longs(2, 3)]);
        Assert.Equal(DataType.Float, y.DataType);
        Assert.Equal([2, 3], y.Shape);
        Assert.All(y.As<float>().Data, v => Assert.Equal(0f, v));
        var yi = Run1("ConstantOfShape", 20, [Longs(4)], A("value", Of(new[] { 7 }, 1)));
        Same<int>(Of(new[] { 7, 7, 7, 7 }, 4), yi);
        var scalar = Run1("ConstantOfShape", 20, [new Tensor<long>([0])], A("value", Of(new[] { true }, 1)));
        Same<bool>(Tensor<bool>.Scalar(true), scalar);
        Assert.Equal([3, 0], Run1("ConstantOfShape", 9, [Longs(3, 0)]).Shape);
    }

    [Fact]
    public void RangeCountsLikeTheSpec()
    {
        // n = max(ceil((limit - start) / delta), 0); element i = start + i·delta.
        Same<int>(Of(new[] { 10, 7, 4 }, 3), Run1("Range", 11, [Tensor<int>.Scalar(10), Tensor<int>.Scalar(1), Tensor<int>.Scalar(-3)]));
        Same<long>(Longs(0, 1, 2, 3, 4), Run1("Range", 11, [Tensor<long>.Scalar(0), Tensor<long>.Scalar(5), Tensor<long>.Scalar(1)]));
        Same<long>(Longs(), Run1("Range", 11, [Tensor<long>.Scalar(5), Tensor<long>.Scalar(0), Tensor<long>.Scalar(1)]));
        var f = Run1("Range", 11, [Tensor<float>.Scalar(1f), Tensor<float>.Scalar(2f), Tensor<float>.Scalar(0.3f)]);
        Close([1f, 1.3f, 1.6f, 1.9f], f);
        var d = Run1("Range", 11, [Tensor<double>.Scalar(0), Tensor<double>.Scalar(1), Tensor<double>.Scalar(0.5)]);
        Same<double>(Of(new[] { 0.0, 0.5 }, 2), d);
    }
}
