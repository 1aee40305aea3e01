using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Tests.Kernels;

public class SgemmEpilogueTests
{
    private static float[] Random(Random rnd, int n)
    {
        var a = new float[n];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rnd.NextDouble() * 2 - 1);
        return a;
    }

    public static TheoryData<int, int, int, bool, bool> Sizes()
    {
        var d = new TheoryData<int, int, int, bool, bool>();
        // Odd sizes, register-tile edges (8 × 32), and depths past one K block (256).
        int[][] shapes = [[1, 1, 1], [7, 9, 11], [8, 32, 16], [9, 33, 17], [32, 784, 16], [24, 196, 72], [13, 70, 257], [17, 45, 300], [5, 3, 0]];
        int t = 0;
        foreach (var s in shapes)
        {
            d.Add(s[0], s[1], s[2], (t & 1) == 0, (t & 2) == 0);
            d.Add(s[0], s[1], s[2], (t & 1) != 0, (t & 2) != 0);
            t++;
        }
        return d;
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void MatchesScalarReference(int m, int n, int k, bool withBias, bool withClamp)
    {
        var rnd = new Random(m * 1009 + n * 31 + k);
        var a = Random(rnd, m * k);
        var b = Random(rnd, k * n);
        var bias = withBias ? Random(rnd, m) : [];
        float lo = withClamp ? -0.3f : float.NegativeInfinity, hi = withClamp ? 0.4f : float.PositiveInfinity;
        var expected = new float[m * n];
        Sgemm.MultiplyBiasClampReference(m, n, k, a, b, expected, bias, lo, hi);

        var packed = Sgemm.PackA(false, m, k, a, k);
        var one = new float[m * n];
        var two = new float[m * n];
        Sgemm.MultiplyBiasClamp(packed, false, n, b, n, one, n, bias, lo, hi, threads: 1);
        Sgemm.MultiplyBiasClamp(packed, false, n, b, n, two, n, bias, lo, hi, threads: 2);
        Assert.Equal(one, two);
        // FMA and K blocking change the rounding of the sum: a few ulps of the magnitude per term.
        float tol = 1e-5f * Math.Max(1, k);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - one[i]) <= tol * Math.Max(1f, Math.Abs(expected[i])),
                $"element {i}: expected {expected[i]}, got {one[i]}");
        if (withClamp)
            Assert.All(one, v => Assert.InRange(v, lo, hi));
    }

    [Fact]
    public void TransposedBAndStridedCMatchPlainProduct()
    {
        const int m = 11, n = 37, k = 19, ldc = 41;
        var rnd = new Random(7);
        var a = Random(rnd, m * k);
        var bt = Random(rnd, n * k);
        var b = new float[k * n];
        for (int p = 0; p < k; p++)
            for (int j = 0; j < n; j++) b[p * n + j] = bt[j * k + p];
        var bias = Random(rnd, m);
        var packed = Sgemm.PackA(false, m, k, a, k);
        var plain = new float[m * n];
        Sgemm.MultiplyBiasClamp(packed, false, n, b, n, plain, n, bias, float.NegativeInfinity, float.PositiveInfinity);
        var strided = new float[m * ldc];
        Array.Fill(strided, 42f);
        Sgemm.MultiplyBiasClamp(packed, true, n, bt, k, strided, ldc, bias, float.NegativeInfinity, float.PositiveInfinity);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++) Assert.Equal(plain[i * n + j], strided[i * ldc + j]);
            for (int j = n; j < ldc && i * ldc + j < strided.Length; j++) Assert.Equal(42f, strided[i * ldc + j]);
        }
    }
}
