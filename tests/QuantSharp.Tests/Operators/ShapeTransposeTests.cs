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

public class ShapeSpaceDepthTests
{
    [Theory]
    [InlineData("DCR")]
    [InlineData("CRD")]
    public void DepthToSpaceMatchesDefinition(string mode)
    {
        int n = 2, c = 8, h = 3, w = 2, b = 2, oc = 2;
        var x = Seq(n, c, h, w);
        var y = Run1("DepthToSpace", 13, [x], A("blocksize", (long)b), A("mode", mode));
        Assert.Equal([n, oc, h * b, w * b], y.Shape);
        for (int o = 0; o < y.Length; o++)
        {
            var oi = Unravel(o, y.Shape);
            int i = oi[2] % b, j = oi[3] % b;
            // DCR: channel (i·b + j)·oc + c; CRD: channel c·b² + i·b + j.
            int ch = mode == "DCR" ? (i * b + j) * oc + oi[1] : oi[1] * b * b + i * b + j;
            Assert.Equal(x.Data[Ravel([oi[0], ch, oi[2] / b, oi[3] / b], x.Shape)], y.As<float>().Data[o]);
        }
    }

    [Fact]
    public void SpaceToDepthInvertsDepthToSpaceDcr()
    {
        var x = Seq(1, 3, 4, 6);
        var s = Run1("SpaceToDepth", 13, [x], A("blocksize", 2L));
        Assert.Equal([1, 12, 2, 3], s.Shape);
        var back = Run1("DepthToSpace", 13, [s], A("blocksize", 2L));
        Assert.Equal(x.Data, back.As<float>().Data);
    }

    [Fact]
    public void GatherNDWithAndWithoutBatchDims()
    {
        var x = Seq(2, 3, 4);
        var idx = Of(new long[] { 1, 2, 0, -1 }, 2, 2);
        var y = Run1("GatherND", 13, [x, idx]);
        Assert.Equal([2, 4], y.Shape);
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < 4; k++)
            {
                long a = idx.Data[t * 2], bb = idx.Data[t * 2 + 1];
                if (bb < 0) bb += 3;
                Assert.Equal(x.Data[(a * 3 + bb) * 4 + k], y.As<float>().Data[t * 4 + k]);
            }
        var yb = Run1("GatherND", 13, [x, Of(new long[] { 2, 0 }, 2, 1)], A("batch_dims", 1L));
        Assert.Equal([2, 4], yb.Shape);
        Assert.Equal(x.Data.Skip(8).Take(4).Concat(x.Data.Skip(12).Take(4)), yb.As<float>().Data);
    }
}
