using QuantSharp.Graph;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Operators.NnTestGraph;

namespace QuantSharp.Tests.Operators;

public class NnGemmTests
{
    /// <summary>Y = alpha · op(A) · op(B) + beta · C, straight from the definition (C broadcast by index wrap).</summary>
    private static Tensor<float> GemmExpected(Tensor<float> a, Tensor<float> b, Tensor<float>? c, bool ta, bool tb, float alpha, float beta)
    {
        int m = ta ? a.Shape[1] : a.Shape[0], k = ta ? a.Shape[0] : a.Shape[1], n = tb ? b.Shape[0] : b.Shape[1];
        var y = new Tensor<float>([m, n]);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (ta ? a.Data[p * m + i] : a.Data[i * k + p]) * (double)(tb ? b.Data[j * k + p] : b.Data[p * n + j]);
                double cv = 0;
                if (c is not null)
                {
                    int cr = c.Rank >= 2 ? c.Shape[^2] : 1, cc = c.Rank >= 1 ? c.Shape[^1] : 1;
                    cv = c.Data[(cr == 1 ? 0 : i) * cc + (cc == 1 ? 0 : j)];
                }
                y.Data[i * n + j] = (float)(alpha * s + beta * cv);
            }
        return y;
    }

    public static TheoryData<int, int, int, bool, bool, string> GemmCases() => new()
    {
        { 3, 4, 5, false, false, "MN" },
        { 7, 33, 19, true, false, "N" },
        { 9, 2, 40, false, true, "1N" },
        { 17, 35, 8, true, true, "M1" },
        { 5, 6, 7, false, false, "scalar" },
        { 4, 3, 2, false, false, "one" },
        { 6, 5, 4, true, true, "none" },
        { 1, 1, 1, false, false, "MN" },
    };

    [Theory]
    [MemberData(nameof(GemmCases))]
    public void GemmMatchesDefinition(int m, int n, int k, bool ta, bool tb, string cKind)
    {
        var rnd = new Random(m * 100 + n + k);
        var a = Random(rnd, ta ? [k, m] : [m, k]);
        var b = Random(rnd, tb ? [n, k] : [k, n]);
        Tensor<float>? c = cKind switch
        {
            "MN" => Random(rnd, m, n),
            "N" => Random(rnd, n),
            "1N" => Random(rnd, 1, n),
            "M1" => Random(rnd, m, 1),
            "scalar" => Random(rnd),
            "one" => Random(rnd, 1),
            _ => null,
        };
        NodeAttribute[] attrs = [A("transA", ta ? 1L : 0L), A("transB", tb ? 1L : 0L), A("alpha", 0.75f), A("beta", -1.5f)];
        var expected = GemmExpected(a, b, c, ta, tb, 0.75f, -1.5f);
        In cIn = c is null ? None : R(c);
        AssertClose(expected, Run("Gemm", [R(a), R(b), cIn], attrs)[0]);
        AssertClose(expected, Run("Gemm", [R(a), C(b), cIn], attrs, threads: 2)[0]);
        // Defaults: alpha = beta = 1, no transposes (opset 6 form with C required).
        if (!ta && !tb && c is not null)
            AssertClose(GemmExpected(a, b, c, false, false, 1f, 1f), Run("Gemm", [R(a), R(b), R(c)], [], opset: 6)[0]);
    }

    [Fact]
    public void GemmShapeInference()
    {
        var m = Build("Gemm", [R(new Tensor<float>([7, 3])), C(new Tensor<float>([5, 7]))], [A("transA", 1L), A("transB", 1L)], 1, 13);
        Assert.Equal([3, 5], Infer(m)[0]!.ConcreteShape()!);
    }

    [Fact]
    public void GemmRejectsBadShapes()
    {
        var ex = Assert.Throws<QuantSharpException>(() => Run("Gemm", [R(new Tensor<float>([2, 3])), R(new Tensor<float>([4, 2]))], []));
        Assert.Contains("inner", ex.Message);
        Assert.Throws<QuantSharpException>(() => Run("Gemm", [R(new Tensor<float>([2, 3])), R(new Tensor<float>([3, 2])), R(new Tensor<float>([3]))], []));
    }

    private static Tensor<float> MatMulExpected(Tensor<float> a, Tensor<float> b, int[] outShape)
    {
        // Broadcast by hand: promote 1-D operands, then index each batch with wrap-around for size-1 axes.
        int[] ash = a.Rank == 1 ? [1, a.Shape[0]] : a.Shape, bsh = b.Rank == 1 ? [b.Shape[0], 1] : b.Shape;
        int m = ash[^2], k = ash[^1], n = bsh[^1];
        var batch = ShapeUtil.Broadcast(ash[..^2], bsh[..^2]);
        var y = new Tensor<float>(outShape);
        int count = ShapeUtil.Product(batch);
        for (int t = 0; t < count; t++)
        {
            var idx = new int[batch.Length];
            for (int d = batch.Length - 1, r = t; d >= 0; d--) { idx[d] = r % batch[d]; r /= batch[d]; }
            int Offset(int[] shape)
            {
                int off = 0, lead = shape.Length - 2;
                for (int d = 0; d < lead; d++) off = off * shape[d] + (shape[d] == 1 ? 0 : idx[d + batch.Length - lead]);
                return off;
            }
            int ao = Offset(ash) * m * k, bo = Offset(bsh) * k * n;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++) s += a.Data[ao + i * k + p] * (double)b.Data[bo + p * n + j];
                    y.Data[(t * m + i) * n + j] = (float)s;
                }
        }
        return y;
    }

    [Theory]
    [InlineData("3,4", "4,5", "3,5")]
    [InlineData("4", "4,5", "5")]
    [InlineData("3,4", "4", "3")]
    [InlineData("6", "6", "")]
    [InlineData("2,3,4", "4,5", "2,3,5")]
    [InlineData("2,1,3,4", "5,4,6", "2,5,3,6")]
    [InlineData("3,4", "2,4,5", "2,3,5")]
    [InlineData("7", "3,7,2", "3,2")]
    [InlineData("2,3,40", "2,40,33", "2,3,33")]
    [InlineData("1,3,4", "1,4,5", "1,3,5")]
    [InlineData("0,4", "4,5", "0,5")]
    public void MatMulBroadcasts(string aShape, string bShape, string yShape)
    {
        int[] P(string s) => s.Length == 0 ? [] : s.Split(',').Select(int.Parse).ToArray();
        var rnd = new Random(aShape.Length + bShape.Length * 7);
        var a = Random(rnd, P(aShape));
        var b = Random(rnd, P(bShape));
        var expected = MatMulExpected(a, b, P(yShape));
        AssertClose(expected, Run("MatMul", [R(a), R(b)], [])[0]);
        AssertClose(expected, Run("MatMul", [R(a), C(b)], [], threads: 2)[0]);
        var types = Infer(Build("MatMul", [R(a), R(b)], [], 1, 13));
        Assert.Equal(P(yShape), types[0]!.ConcreteShape());
    }

    [Fact]
    public void MatMulRejectsMismatchedInnerDimension()
    {
        var ex = Assert.Throws<QuantSharpException>(() => Run("MatMul", [R(new Tensor<float>([2, 3])), R(new Tensor<float>([4, 2]))], []));
        Assert.Contains("inner", ex.Message);
    }
}
