using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Tests.Kernels;

public class SgemmTests
{
    private static float[] Random(Random rnd, int n)
    {
        var a = new float[n];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rnd.NextDouble() * 2 - 1);
        return a;
    }

    private static void AssertClose(float[] expected, float[] actual, int k)
    {
        Assert.Equal(expected.Length, actual.Length);
        // Different summation (FMA, blocking) changes rounding: allow a few ulps of the sum's magnitude.
        float tol = 1e-5f * Math.Max(1, k);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * Math.Max(1f, Math.Abs(expected[i])),
                $"element {i}: expected {expected[i]}, got {actual[i]}");
    }

    public static TheoryData<int, int, int, bool, bool> Sizes()
    {
        var d = new TheoryData<int, int, int, bool, bool>();
        int[][] shapes =
        [
            [0, 5, 3], [4, 0, 3], [3, 4, 0], [1, 1, 1], [1, 37, 5], [37, 1, 9], [7, 9, 11], [8, 32, 16],
            [9, 33, 17], [6, 16, 257], [31, 47, 255], [64, 64, 64], [65, 97, 130], [97, 130, 33],
            [130, 129, 3], [100, 70, 513], [2, 300, 20],
        ];
        int t = 0;
        foreach (var s in shapes)
        {
            d.Add(s[0], s[1], s[2], (t & 1) != 0, (t & 2) != 0);
            d.Add(s[0], s[1], s[2], (t & 1) == 0, (t & 2) == 0);
            t++;
        }
        return d;
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void MatchesReference(int m, int n, int k, bool transA, bool transB)
    {
        var rnd = new Random(m * 1000 + n * 10 + k);
        int lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 1, ldc = n + 2;
        var a = Random(rnd, (transA ? k : m) * lda);
        var b = Random(rnd, (transB ? n : k) * ldb);
        var c0 = Random(rnd, m * ldc);
        foreach (bool accumulate in new[] { false, true })
        {
            foreach (float alpha in new[] { 1f, -0.5f })
            {
                var expected = (float[])c0.Clone();
                SgemmReference.Multiply(transA, transB, m, n, k, a, lda, b, ldb, expected, ldc, alpha, accumulate);
                var actual = (float[])c0.Clone();
                Sgemm.Multiply(transA, transB, m, n, k, a, lda, b, ldb, actual, ldc, alpha, accumulate);
                AssertClose(expected, actual, k);

                var packedA = (float[])c0.Clone();
                Sgemm.Multiply(Sgemm.PackA(transA, m, k, a, lda), transB, n, b, ldb, packedA, ldc, alpha, accumulate);
                Assert.Equal(actual, packedA);
                var packedB = (float[])c0.Clone();
                Sgemm.Multiply(transA, m, a, lda, Sgemm.PackB(transB, k, n, b, ldb), packedB, ldc, alpha, accumulate);
                Assert.Equal(actual, packedB);
                var both = (float[])c0.Clone();
                Sgemm.Multiply(Sgemm.PackA(transA, m, k, a, lda), Sgemm.PackB(transB, k, n, b, ldb), both, ldc, alpha, accumulate);
                Assert.Equal(actual, both);
            }
        }
    }

    [Theory]
    [InlineData(200, 300, 600)]
    [InlineData(33, 1000, 70)]
    [InlineData(257, 5, 300)]
    public void ThreadCountDoesNotChangeResults(int m, int n, int k)
    {
        var rnd = new Random(7);
        var a = Random(rnd, m * k);
        var b = Random(rnd, k * n);
        var c1 = new float[m * n];
        var c2 = new float[m * n];
        var c3 = new float[m * n];
        Sgemm.Multiply(false, false, m, n, k, a, k, b, n, c1, n, threads: 1);
        Sgemm.Multiply(false, false, m, n, k, a, k, b, n, c2, n, threads: 2);
        Sgemm.Multiply(false, false, m, n, k, a, k, b, n, c3, n, threads: 5);
        Assert.Equal(c1, c2);
        Assert.Equal(c1, c3);
    }

    [Fact]
    public void ReferenceIsThePlainDefinition()
    {
        // 2x3 · 3x2 worked by hand from the definition C(i,j) = Σ_p A(i,p)·B(p,j).
        float[] a = [1, 2, 3, 4, 5, 6];
        float[] b = [7, 8, 9, 10, 11, 12];
        var c = new float[4];
        SgemmReference.Multiply(false, false, 2, 2, 3, a, 3, b, 2, c, 2);
        Assert.Equal([1 * 7 + 2 * 9 + 3 * 11, 1 * 8 + 2 * 10 + 3 * 12, 4 * 7 + 5 * 9 + 6 * 11, 4 * 8 + 5 * 10 + 6 * 12], c);
        var ct = new float[4];
        // Aᵀ stored as 3x2 and Bᵀ stored as 2x3 give the same product.
        float[] at = [1, 4, 2, 5, 3, 6];
        float[] bt = [7, 9, 11, 8, 10, 12];
        SgemmReference.Multiply(true, true, 2, 2, 3, at, 2, bt, 3, ct, 2);
        Assert.Equal(c, ct);
    }

    [Fact]
    public void RejectsTooSmallBuffers()
    {
        Assert.Throws<ArgumentException>(() => Sgemm.Multiply(false, false, 4, 4, 4, new float[15], 4, new float[16], 4, new float[16], 4));
    }
}
