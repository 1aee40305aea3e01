using QuantSharp.Quantization.Math;
using QuantSharp.Quantization.Observers;

namespace QuantSharp.Tests.QuantizationMath;

/// <summary>The entropy observer on ReLU6-like activations: a spike of exact zeros must not pull the threshold down.</summary>
public class EntropyZeroSpikeTests
{
    /// <summary>60 % exact zeros, 0.5 % exactly 6 (saturated), the rest |N(0, 0.8²)| clipped to [0, 6] (most mass below 1.5, like a MobileNet ReLU6).</summary>
    private static float[] Relu6Like(int n, int seed)
    {
        var r = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u = r.NextDouble();
            if (u < 0.60) continue;
            if (u < 0.605) { x[i] = 6f; continue; }
            double g = System.Math.Sqrt(-2 * System.Math.Log(1 - r.NextDouble())) * System.Math.Cos(2 * System.Math.PI * r.NextDouble());
            x[i] = (float)System.Math.Min(6, System.Math.Abs(0.8 * g));
        }
        return x;
    }

    /// <summary>Candidate with the smallest KL over the given |x| counts (first on ties).</summary>
    private static int ArgMinKl(double[] abs, int levels)
    {
        int best = 0;
        double bestKl = double.PositiveInfinity;
        for (int i = levels; i <= abs.Length; i++)
        {
            double kl = EntropyObserver.Divergence(abs, i, levels);
            if (kl < bestKl) { bestKl = kl; best = i; }
        }
        return best;
    }

    [Fact]
    public void ZeroSpikeDoesNotCollapseTheThreshold()
    {
        var x = Relu6Like(200_000, 21);
        var o = new EntropyObserver();
        for (int k = 0; k < x.Length; k += 50_000) o.Observe(x.AsSpan(k, 50_000).ToArray());
        Assert.Equal(6.0, o.Histogram.MaxAbs);
        long zeros = x.LongCount(v => v == 0);
        Assert.Equal(zeros, o.Histogram.ZeroCount);

        // The failure: with the exact zeros left in bin 0 the KL minimum is the smallest candidate(s).
        double w = o.Histogram.BinWidth;
        int withZeros = ArgMinKl(o.Histogram.AbsCounts(), 256);
        Assert.True(withZeros * w < 1.5, $"zeros included: threshold {withZeros * w}");

        // uint8 over [0, t] (ReLU6 output): the search keeps the range up to the saturation spike.
        var (lo, hi) = o.ComputeRange(QuantScheme.UInt8Asymmetric);
        Assert.Equal(0, lo);
        Assert.True(hi >= 3, $"uint8 threshold {hi}");
        var search = o.SearchCounts();
        Assert.Equal(o.Histogram.AbsCounts()[0] - zeros, search[0], 6);
        var (bins, t, _) = o.FindThreshold(256);
        Assert.Equal(ArgMinKl(search, 256), bins);
        Assert.Equal(hi, t, 12);

        // int8 symmetric (128 levels per side) also keeps a wide range.
        var (slo, shi) = o.ComputeRange(QuantScheme.Int8Symmetric);
        Assert.Equal(0, slo);
        Assert.True(shi >= 3, $"int8 threshold {shi}");
        Assert.Equal(0, o.ComputeParams(QuantScheme.UInt8Asymmetric).ZeroPoint[0]);
    }

    [Fact]
    public void OnlyZerosGiveAnEmptyRange()
    {
        var o = new EntropyObserver();
        o.Observe(new float[1000]);
        Assert.Equal((0.0, 0.0), o.ComputeRange(QuantScheme.UInt8Asymmetric));
    }
}
