using QuantSharp.Tensors;
using static QuantSharp.Tests.Operators.ShapeTestUtil;

namespace QuantSharp.Tests.Operators;

public class ShapeTransposeTests
{
    /// <summary>Naive reference: out[idx] = in[idx permuted back].</summary>
    private static T[] Reference<T>(T[] x, int[] shape, int[] perm)
    {
        var outShape = perm.Select(p => shape[p]).ToArray();
        var r = new T[x.Length];
        for (int o = 0; o < r.Length; o++)
        {
            var oi = Unravel(o, outShape);
            var ii = new int[shape.Length];
            for (int d = 0; d < perm.Length; d++) ii[perm[d]] = oi[d];
            r[o] = x[Ravel(ii, shape)];
        }
        return r;
    }

    private static IEnumerable<int[]> Permutations(int n)
    {
        if (n == 0) { yield return []; yield break; }
        foreach (var p in Permutations(n - 1))
            for (int i = 0; i <= p.Length; i++)
            {
                var q = p.ToList();
                q.Insert(i, n - 1);
                yield return q.ToArray();
            }
    }

    [Fact]
    public void AllPermutationsOfA4DTensorMatchReference()
    {
        int[] shape = [2, 3, 4, 5];
        var x = Seq(shape);
        foreach (var perm in Permutations(4))
        {
            var y = Run1("Transpose", 13, [x], A("perm", perm.Select(p => (long)p).ToArray()));
            Assert.Equal(perm.Select(p => shape[p]).ToArray(), y.Shape);
            Assert.Equal(Reference(x.Data, shape, perm), y.As<float>().Data);
        }
    }

    [Theory]
    [InlineData(new[] { 70, 45 }, new[] { 1, 0 })]
    [InlineData(new[] { 2, 33, 7, 9 }, new[] { 0, 2, 3, 1 })]
    [InlineData(new[] { 2, 7, 9, 33 }, new[] { 0, 3, 1, 2 })]
    [InlineData(new[] { 1, 5, 1, 6 }, new[] { 3, 2, 1, 0 })]
    [InlineData(new[] { 3, 1, 4 }, new[] { 1, 0, 2 })]
    [InlineData(new[] { 4, 3, 2, 5, 3 }, new[] { 4, 0, 2, 1, 3 })]
    public void FastPathsMatchReference(int[] shape, int[] perm)
    {
        var x = Seq(shape);
        var y = Run1("Transpose", 13, [x], A("perm", perm.Select(p => (long)p).ToArray()));
        Assert.Equal(Reference(x.Data, shape, perm), y.As<float>().Data);
        // Single-threaded gives the same.
        var y1 = Run("Transpose", 13, [x], [A("perm", perm.Select(p => (long)p).ToArray())], threads: 1)[0];
        Assert.Equal(y.As<float>().Data, y1.As<float>().Data);
    }

    [Fact]
    public void DefaultReversesAxesForOtherTypes()
    {
        var b = Of(new[] { true, false, false, true, true, false }, 2, 3);
        Same<bool>(Of(Reference(b.Data, [2, 3], [1, 0]), 3, 2), Run1("Transpose", 1, [b]));
        var h = Of(Enumerable.Range(0, 24).Select(i => (Half)i).ToArray(), 2, 3, 4);
        Same<Half>(Of(Reference(h.Data, [2, 3, 4], [2, 1, 0]), 4, 3, 2), Run1("Transpose", 13, [h]));
        var i8 = new Tensor<sbyte>(Enumerable.Range(0, 12).Select(i => (sbyte)(i - 6)).ToArray(), [3, 4], DataType.Int4);
        var y = Run1("Transpose", 21, [i8]);
        Assert.Equal(DataType.Int4, y.DataType);
        Assert.Equal(Reference(i8.Data, [3, 4], [1, 0]), y.As<sbyte>().Data);
    }

    [Fact]
    public void ZeroSizedAndScalarInputs()
    {
        var z = new Tensor<float>([0, 3]);
        Assert.Equal([3, 0], Run1("Transpose", 13, [z]).Shape);
        var s = Run1("Transpose", 13, [Tensor<long>.Scalar(5)]);
        Assert.Equal([], s.Shape);
        Assert.Equal(5L, s.As<long>().Data[0]);
        Assert.Throws<QuantSharpException>(() => Run1("Transpose", 13, [Seq(2, 3)], A("perm", new long[] { 0, 0 })));
    }
}
