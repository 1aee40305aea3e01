using QuantSharp.Quantization.Math;

namespace QuantSharp.Tests.QuantizationMath;

public class NonUniformTests
{
    [Fact]
    public void Log2LevelsArePowersOfTwoOfTheScale()
    {
        var q = Log2Quantizer.FromMaxAbs(4, 8.0); // M = 7 levels: 8 · 2^(m − 7)
        Assert.Equal(7, q.Levels);
        for (int m = 1; m <= 7; m++)
        {
            float v = 8f * MathF.Pow(2, m - 7);
            Assert.Equal(m, q.Quantize(v));
            Assert.Equal(-m, q.Quantize(-v));
            Assert.Equal(v, q.Dequantize(m));
        }
        Assert.Equal(0, q.Quantize(0f));
        Assert.Equal(0f, q.Dequantize(0));
        Assert.Equal(0, q.Quantize(8f / 128 * 0.99f)); // below half the smallest level (8 · 2^−6 / 2)
        Assert.Equal(1, q.Quantize(8f / 128 * 1.01f));
        Assert.Equal(7, q.Quantize(1000f));
        Assert.Equal(-7, q.Quantize(float.NegativeInfinity));
        Assert.Equal(0, q.Quantize(float.NaN));
        // Rounding in the log domain: 3 = 2^1.585 → 2^2 = 4 (code 7 − 1 = 6 for scale 8).
        Assert.Equal(6, q.Quantize(3f));
        Assert.Equal(1f, Log2Quantizer.FromMaxAbs(4, 0).Scale);
    }

    /// <summary>Plain O(n·k) Lloyd iterations from the same quantile start, as the reference.</summary>
    private static double[] NaiveLloyd(float[] x, int k, int iterations)
    {
        var s = x.Select(v => (double)v).OrderBy(v => v).ToArray();
        var c = Enumerable.Range(0, k).Select(j => s[System.Math.Min(s.Length - 1, (int)((j + 0.5) / k * s.Length))]).ToArray();
        for (int it = 0; it < iterations; it++)
        {
            var sum = new double[k];
            var cnt = new int[k];
            foreach (double v in s)
            {
                int best = 0;
                for (int j = 1; j < k; j++)
                    if (System.Math.Abs(v - c[j]) < System.Math.Abs(v - c[best])) best = j;
                sum[best] += v;
                cnt[best]++;
            }
            for (int j = 0; j < k; j++)
                if (cnt[j] > 0) c[j] = sum[j] / cnt[j];
            Array.Sort(c);
        }
        return c;
    }

    [Fact]
    public void CodebookMatchesLloydAndBeatsUniformOnBimodalData()
    {
        var r = new Random(1);
        var x = Enumerable.Range(0, 4000).Select(i => (float)((i % 2 == 0 ? -3 : 2) + 0.3 * (r.NextDouble() - 0.5))).ToArray();
        var cb = Codebook.Fit(x, 2, 30);
        var reference = NaiveLloyd(x, 4, 30);
        for (int j = 0; j < 4; j++) Assert.Equal(reference[j], cb.Centroids[j], 4);
        Assert.True(cb.Centroids.Zip(cb.Centroids.Skip(1)).All(p => p.First <= p.Second));
        var q = new int[x.Length];
        var y = new float[x.Length];
        cb.Quantize(x, q);
        cb.Dequantize(q, y);
        double mseCodebook = x.Zip(y, (a, b) => (double)(a - b) * (a - b)).Average();
        var s = QuantScheme.Integer(2, false, false);
        var p = QuantParams.FromData(x, [x.Length], s);
        var yu = new float[x.Length];
        QuantOps.FakeQuantize(x, [x.Length], p, yu);
        double mseUniform = x.Zip(yu, (a, b) => (double)(a - b) * (a - b)).Average();
        Assert.True(mseCodebook < mseUniform / 4, $"codebook {mseCodebook} vs uniform {mseUniform}");
        var packed = CodePacking.Pack(q, 2, signed: false);
        var back = new int[q.Length];
        CodePacking.Unpack(packed, 2, false, back);
        Assert.Equal(q, back);
        Assert.Equal(new float[4], Codebook.Fit([float.NaN], 2).Centroids);
    }
}
