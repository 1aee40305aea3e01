using QuantSharp.Graph;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Operators.OpTester;

namespace QuantSharp.Tests.Operators;

/// <summary>
/// The vectorised FP32 paths added for the transformer baseline (Softmax over rows of a multiple of 16,
/// LayerNormalization with 16-lane statistics, Add of a trailing bias) against double-precision references, over
/// row lengths on and off the vector width and with 1 and 2 threads.
/// </summary>
public class FastFloatKernelTests
{
    [Theory]
    [InlineData(16)]
    [InlineData(32)]
    [InlineData(48)]
    [InlineData(17)]
    [InlineData(64)]
    public void SoftmaxLastAxisMatchesDouble(int reduce)
    {
        int rows = 37;
        var data = Random(rows * reduce, 3, -20f, 20f);
        data[5] = 80f;
        data[reduce + 1] = -80f;
        var x = F(data, rows, reduce);
        foreach (int threads in new[] { 1, 2 })
        {
            var y = Run1("Softmax", 13, [x], threads: threads);
            var want = new double[data.Length];
            for (int r = 0; r < rows; r++)
            {
                double max = double.NegativeInfinity, sum = 0;
                for (int i = 0; i < reduce; i++) max = Math.Max(max, data[r * reduce + i]);
                for (int i = 0; i < reduce; i++) sum += Math.Exp(data[r * reduce + i] - max);
                for (int i = 0; i < reduce; i++) want[r * reduce + i] = Math.Exp(data[r * reduce + i] - max) / sum;
            }
            AllClose(want, y, 1e-5, 1e-9);
        }
    }

    [Theory]
    [InlineData(64, true)]
    [InlineData(64, false)]
    [InlineData(35, true)]
    [InlineData(16, true)]
    [InlineData(7, false)]
    public void LayerNormalizationMatchesDouble(int size, bool withBias)
    {
        int rows = 19;
        var data = Random(rows * size, 4, -3f, 5f);
        var scale = Random(size, 5, 0.5f, 2f);
        var bias = Random(size, 6, -1f, 1f);
        Tensor?[] inputs = withBias ? [F(data, rows, size), F(scale, size), F(bias, size)] : [F(data, rows, size), F(scale, size)];
        var y = Run1("LayerNormalization", 17, inputs, [NodeAttribute.Of("epsilon", 1e-5f)]);
        var want = new double[data.Length];
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, var = 0;
            for (int i = 0; i < size; i++) mean += data[r * size + i];
            mean /= size;
            for (int i = 0; i < size; i++) var += Math.Pow(data[r * size + i] - mean, 2);
            double inv = 1 / Math.Sqrt(var / size + 1e-5);
            for (int i = 0; i < size; i++) want[r * size + i] = (data[r * size + i] - mean) * inv * scale[i] + (withBias ? bias[i] : 0);
        }
        AllClose(want, y, 1e-5, 1e-5);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AddOfTrailingBiasMatchesElementwise(bool biasFirst)
    {
        var a = Random(6 * 5 * 24, 7);
        var b = Random(24, 8);
        var ta = F(a, 6, 5, 24);
        var tb = F(b, 24);
        foreach (int threads in new[] { 1, 2 })
        {
            var y = Run1("Add", 14, biasFirst ? [tb, ta] : [ta, tb], threads: threads).As<float>();
            Assert.Equal([6, 5, 24], y.Shape);
            for (int i = 0; i < a.Length; i++) Assert.Equal(biasFirst ? b[i % 24] + a[i] : a[i] + b[i % 24], y.Data[i]);
        }
    }

    [Fact]
    public void ErfDenseRangeWithinTwoTenthsOfAMillionthAbsolute()
    {
        // 400 001 points over [−8, 8] (tails included) plus odd lengths for the partial last vector.
        int n = 400_001;
        var xs = new float[n];
        for (int i = 0; i < n; i++) xs[i] = -8f + 16f * i / (n - 1);
        foreach (int len in new[] { n, 17, 5 })
        {
            var y = Run1("Erf", 13, [F(xs[..len], len)]).As<float>().Data;
            for (int i = 0; i < len; i++)
            {
                double want = ErfReference(xs[i]);
                Assert.True(Math.Abs(y[i] - want) < 2e-7, $"erf({xs[i]}) = {y[i]}, want {want}");
            }
        }
    }

    /// <summary>erf in double: Maclaurin series for |x| ≤ 3, erfc's continued fraction beyond.</summary>
    private static double ErfReference(double x)
    {
        double a = Math.Abs(x), r;
        if (a <= 3)
        {
            double sum = 0, term = a;
            for (int k = 0; k < 200 && Math.Abs(term) > 1e-20; k++)
            {
                sum += term / (2 * k + 1);
                term *= -a * a / (k + 1);
            }
            r = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            double f = a;
            for (int k = 80; k >= 1; k--) f = a + k / 2.0 / f;
            r = 1 - Math.Exp(-a * a) / Math.Sqrt(Math.PI) / f;
        }
        return x < 0 ? -r : r;
    }

    [Theory]
    [InlineData(16, 16, 16, false)]
    [InlineData(5, 32, 7, false)]
    [InlineData(16, 64, 16, true)]
    [InlineData(1, 16, 1, false)]
    public void SmallBatchedMatMulMatchesDouble(int m, int n, int k, bool broadcastB)
    {
        int[] aShape = [3, 4, m, k];
        int[] bShape = broadcastB ? [4, k, n] : [3, 4, k, n];
        var a = Random(ShapeUtil.Product(aShape), 9);
        var b = Random(ShapeUtil.Product(bShape), 10);
        var ys = new[] { 1, 2 }.Select(t => Run1("MatMul", 13, [F(a, aShape), F(b, bShape)], threads: t).As<float>()).ToArray();
        Assert.Equal(ys[0].Data, ys[1].Data);
        var want = new double[12 * m * n];
        for (int t = 0; t < 12; t++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double acc = 0;
                    int bt = broadcastB ? t % 4 : t;
                    for (int p = 0; p < k; p++) acc += (double)a[t * m * k + i * k + p] * b[bt * k * n + p * n + j];
                    want[t * m * n + i * n + j] = acc;
                }
        AllClose(want, ys[0], 1e-5, 1e-5);
    }
}
