using QuantSharp.Tensors;
using static QuantSharp.Tests.Operators.ShapeTestUtil;

namespace QuantSharp.Tests.Operators;

public class ShapeSliceGatherTests
{
    /// <summary>Python-style slice indices of one axis: start, start+step, … (clamped as numpy does).</summary>
    private static List<int> PySlice(int dim, long start, long end, long step)
    {
        long Norm(long v, bool isEnd)
        {
            if (v < 0) v += dim;
            if (step > 0) return Math.Clamp(v, 0, dim);
            return Math.Clamp(v, -1, dim - 1);
        }
        long s = Norm(start, false), e = Norm(end, true);
        var r = new List<int>();
        for (long i = s; step > 0 ? i < e : i > e; i += step)
            if (i >= 0 && i < dim) r.Add((int)i);
        return r;
    }

    private static float[] SliceReference(Tensor<float> x, long[] starts, long[] ends, long[] axes, long[] steps, out int[] shape)
    {
        int rank = x.Rank;
        var picks = Enumerable.Range(0, rank).Select(d => Enumerable.Range(0, x.Shape[d]).ToList()).ToArray();
        for (int i = 0; i < axes.Length; i++)
        {
            int d = (int)(axes[i] < 0 ? axes[i] + rank : axes[i]);
            picks[d] = PySlice(x.Shape[d], starts[i], ends[i], steps[i]);
        }
        shape = picks.Select(p => p.Count).ToArray();
        var r = new float[shape.Aggregate(1, (a, b) => a * b)];
        for (int o = 0; o < r.Length; o++)
        {
            var oi = Unravel(o, shape);
            r[o] = x.Data[Ravel(oi.Select((v, d) => picks[d][v]).ToArray(), x.Shape)];
        }
        return r;
    }

    public static TheoryData<long[], long[], long[], long[]> SliceCases => new()
    {
        { [0, 1], [2, 3], [0, 1], [1, 1] },
        { [1], [1000], [1], [1] },
        { [-1], [long.MinValue], [1], [-1] },
        { [10], [-100], [2], [-2] },
        { [-3, 0], [long.MaxValue, -1], [-1, 0], [1, 1] },
        { [3, 2], [0, -5], [1, 2], [-1, -2] },
        { [0], [0], [0], [1] },
        { [5], [1], [2], [1] },
        { [1, 0, 0], [4, 100, 5], [0, 1, 2], [2, 3, 2] },
        { [-2], [2], [0], [-1] },
    };

    [Theory]
    [MemberData(nameof(SliceCases))]
    public void SliceMatchesPythonSlicing(long[] starts, long[] ends, long[] axes, long[] steps)
    {
        var x = Seq(3, 4, 5);
        var expected = SliceReference(x, starts, ends, axes, steps, out var shape);
        var y = Run1("Slice", 13, [x, Longs(starts), Longs(ends), Longs(axes), Longs(steps)]);
        Assert.Equal(shape, y.Shape);
        Assert.Equal(expected, y.As<float>().Data);
    }

    [Fact]
    public void SliceDefaultsAndOpset1Attributes()
    {
        var x = Seq(3, 4);
        var expected = SliceReference(x, [1, 0], [3, 2], [0, 1], [1, 1], out var shape);
        var y = Run1("Slice", 10, [x, Longs(1, 0), Longs(3, 2), null, null]);
        Assert.Equal(shape, y.Shape);
        Assert.Equal(expected, y.As<float>().Data);
        var y1 = Run1("Slice", 1, [x], A("starts", new long[] { 1, 0 }), A("ends", new long[] { 3, 2 }));
        Assert.Equal(expected, y1.As<float>().Data);
        var y2 = Run1("Slice", 1, [x], A("starts", new long[] { 1 }), A("ends", new long[] { 3 }), A("axes", new long[] { 1 }));
        Assert.Equal([3, 2], y2.Shape);
        // int32 starts/ends and int64 data.
        var l = Of(new long[] { 10, 20, 30, 40 }, 4);
        var yl = Run1("Slice", 13, [l, Of(new[] { -1 }, 1), Of(new[] { int.MinValue }, 1), Of(new[] { 0 }, 1), Of(new[] { -2 }, 1)]);
        Same<long>(Of(new long[] { 40, 20 }, 2), yl);
        Assert.Throws<QuantSharpException>(() => Run1("Slice", 13, [x, Longs(0), Longs(1), Longs(0), Longs(0)]));
        // An empty axis stays empty for either step sign.
        var empty = new Tensor<float>([0, 3]);
        Assert.Equal([0, 3], Run1("Slice", 13, [empty, Longs(-1), Longs(long.MinValue), Longs(0), Longs(-1)]).Shape);
        Assert.Equal([0, 2], Run1("Slice", 13, [empty, Longs(0, 1), Longs(5, 3), Longs(0, 1)]).Shape);
    }

    private static float[] GatherReference(Tensor<float> x, long[] idx, int[] idxShape, int axis, out int[] shape)
    {
        if (axis < 0) axis += x.Rank;
        shape = x.Shape[..axis].Concat(idxShape).Concat(x.Shape[(axis + 1)..]).ToArray();
        var r = new float[shape.Aggregate(1, (a, b) => a * b)];
        for (int o = 0; o < r.Length; o++)
        {
            var oi = Unravel(o, shape);
            var ii = oi[..axis].ToList();
            long k = idx[Ravel(oi[axis..(axis + idxShape.Length)], idxShape)];
            ii.Add((int)(k < 0 ? k + x.Shape[axis] : k));
            ii.AddRange(oi[(axis + idxShape.Length)..]);
            r[o] = x.Data[Ravel(ii.ToArray(), x.Shape)];
        }
        return r;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(-1)]
    public void GatherAnyAxisWithNegativeIndices(int axis)
    {
        var x = Seq(3, 4, 5);
        long[] idx = [0, -1, 2, 1, 0, -2];
        var expected = GatherReference(x, idx, [2, 3], axis, out var shape);
        var y = Run1("Gather", 13, [x, Of(idx, 2, 3)], A("axis", (long)axis));
        Assert.Equal(shape, y.Shape);
        Assert.Equal(expected, y.As<float>().Data);
        var y32 = Run1("Gather", 11, [x, Of(idx.Select(v => (int)v).ToArray(), 2, 3)], A("axis", (long)axis));
        Assert.Equal(expected, y32.As<float>().Data);
    }

    [Fact]
    public void GatherScalarIndexAndErrors()
    {
        var x = Of(new long[] { 5, 6, 7 }, 3);
        var y = Run1("Gather", 13, [x, Tensor<long>.Scalar(-1)]);
        Same<long>(Of(new long[] { 7 }), y);
        Assert.Throws<QuantSharpException>(() => Run1("Gather", 13, [x, Tensor<long>.Scalar(3)]));
        var empty = Run1("Gather", 13, [Seq(3, 2), new Tensor<long>([0])]);
        Assert.Equal([0, 2], empty.Shape);
    }

    [Fact]
    public void GatherElementsFollowsIndexAlongAxis()
    {
        var x = Seq(3, 3);
        var idx = Of(new long[] { 1, 2, 0, 2, 0, -1 }, 2, 3);
        var y0 = Run1("GatherElements", 13, [x, idx], A("axis", 0L));
        var y1 = Run1("GatherElements", 13, [x, idx], A("axis", 1L));
        var e0 = new float[6];
        var e1 = new float[6];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
            {
                long k = idx.Data[i * 3 + j];
                if (k < 0) k += 3;
                e0[i * 3 + j] = x.Data[k * 3 + j];
                e1[i * 3 + j] = x.Data[i * 3 + k];
            }
        Assert.Equal([2, 3], y0.Shape);
        Assert.Equal(e0, y0.As<float>().Data);
        Assert.Equal(e1, y1.As<float>().Data);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(-1)]
    [InlineData(-3)]
    public void ConcatJoinsAlongAxis(int axis)
    {
        var a = Seq(2, 3, 2);
        var b = Seq(2, 3, 2);
        for (int i = 0; i < b.Length; i++) b.Data[i] += 100;
        var y = Run1("Concat", 13, [a, b], A("axis", (long)axis));
        int ax = axis < 0 ? axis + 3 : axis;
        var shape = (int[])a.Shape.Clone();
        shape[ax] *= 2;
        Assert.Equal(shape, y.Shape);
        for (int o = 0; o < y.Length; o++)
        {
            var oi = Unravel(o, shape);
            bool second = oi[ax] >= a.Shape[ax];
            if (second) oi[ax] -= a.Shape[ax];
            Assert.Equal((second ? b : a).Data[Ravel(oi, a.Shape)], y.As<float>().Data[o]);
        }
    }

    [Fact]
    public void ConcatWithEmptyInputsAndTypes()
    {
        var a = Of(new long[] { 1, 2 }, 2);
        var e = new Tensor<long>([0]);
        Same<long>(Of(new long[] { 1, 2, 1, 2 }, 4), Run1("Concat", 13, [a, e, a], A("axis", 0L)));
        var b = Of(new[] { true, false }, 1, 2);
        Same<bool>(Of(new[] { true, false, true, false }, 2, 2), Run1("Concat", 4, [b, b], A("axis", 0L)));
        Assert.Throws<QuantSharpException>(() => Run1("Concat", 13, [Seq(2, 3), Seq(3, 2)], A("axis", 0L)));
    }

    [Fact]
    public void SplitAllVersions()
    {
        var x = Seq(2, 6);
        // Equal parts (number of outputs).
        var eq = Run("Split", 13, [x], [A("axis", 1L)], outputs: 3);
        Assert.All(eq, t => Assert.Equal([2, 2], t.Shape));
        Assert.Equal([3f, 4f, 9f, 10f], eq[1].As<float>().Data);
        // Attribute sizes (opset 2-12), negative axis.
        var at = Run("Split", 11, [x], [A("axis", -1L), A("split", new long[] { 1, 5 })], outputs: 2);
        Assert.Equal([1f, 7f], at[0].As<float>().Data);
        Assert.Equal([2, 5], at[1].Shape);
        // Input sizes (13+), including a zero-size part.
        var inp = Run("Split", 13, [x, Longs(0, 6)], [A("axis", 1L)], outputs: 2);
        Assert.Equal([2, 0], inp[0].Shape);
        Assert.Equal(x.Data, inp[1].As<float>().Data);
        // num_outputs with an uneven split: ceil(6/4) = 2, last part gets what is left.
        var no = Run("Split", 18, [Seq(7)], [A("num_outputs", 4L)], outputs: 4);
        Assert.Equal([2, 2, 2, 1], no.Select(t => t.Shape[0]).ToArray());
        Assert.Equal([7f], no[3].As<float>().Data);
        Assert.Throws<QuantSharpException>(() => Run("Split", 13, [Seq(7)], outputs: 2));
    }
}
