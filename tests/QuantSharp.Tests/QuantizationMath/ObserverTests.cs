using QuantSharp.Quantization.Math;
using QuantSharp.Quantization.Observers;

namespace QuantSharp.Tests.QuantizationMath;

public class ObserverTests
{
    private static float Gaussian(Random r) =>
        (float)(System.Math.Sqrt(-2 * System.Math.Log(1 - r.NextDouble())) * System.Math.Cos(2 * System.Math.PI * r.NextDouble()));

    private static float Laplace(Random r)
    {
        double u = r.NextDouble() - 0.5;
        return (float)(-System.Math.Sign(u) * System.Math.Log(1 - 2 * System.Math.Abs(u)));
    }

    private static float[] Sample(int n, Func<Random, float> f, int seed, int outliers = 0, float outlier = 0)
    {
        var r = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = f(r);
        for (int i = 0; i < outliers; i++) x[r.Next(n)] = (i % 2 == 0 ? 1 : -1) * outlier * (float)(0.8 + 0.2 * r.NextDouble());
        return x;
    }

    private static IEnumerable<float[]> Batches(float[] x, int size)
    {
        for (int i = 0; i < x.Length; i += size) yield return x.AsSpan(i, System.Math.Min(size, x.Length - i)).ToArray();
    }

    /// <summary>Exact percentile of sorted values with linear interpolation between order statistics.</summary>
    private static double ExactPercentile(float[] sorted, double p)
    {
        double pos = p * (sorted.Length - 1);
        int lo = (int)System.Math.Floor(pos);
        int hi = System.Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }

    [Fact]
    public void MinMaxIsExactAndIgnoresNonFiniteValues()
    {
        var x = Sample(10_000, Gaussian, 1, 3, 40);
        x[5] = float.NaN;
        x[6] = float.PositiveInfinity;
        x[7] = float.NegativeInfinity;
        var finite = x.Where(float.IsFinite).ToArray();
        var o = new MinMaxObserver();
        foreach (var b in Batches(x, 333)) o.Observe(b);
        Assert.Equal((double)finite.Min(), o.Min);
        Assert.Equal((double)finite.Max(), o.Max);
        Assert.Equal(finite.Length, o.Count);
        var expected = QuantParams.FromRange(finite.Min(), finite.Max(), QuantScheme.UInt8Asymmetric);
        var actual = o.ComputeParams(QuantScheme.UInt8Asymmetric);
        Assert.Equal(expected.Scale, actual.Scale);
        Assert.Equal(expected.ZeroPoint, actual.ZeroPoint);
        var a = new MinMaxObserver();
        var b2 = new MinMaxObserver();
        a.Observe(x.AsSpan(0, 5000));
        b2.Observe(x.AsSpan(5000));
        a.Merge(b2);
        Assert.Equal((o.Min, o.Max, o.Count), (a.Min, a.Max, a.Count));
        var empty = new MinMaxObserver();
        empty.Observe([float.NaN, float.NaN]);
        var pe = empty.ComputeParams(QuantScheme.Int8Symmetric);
        Assert.Equal(1f, pe.Scale[0]);
        Assert.Equal(0, pe.ZeroPoint[0]);
        Assert.Throws<QuantSharpException>(() => o.ComputeParams(QuantScheme.Int8Symmetric.PerAxis(0)));
        Assert.Throws<QuantSharpException>(() => o.Merge(new EntropyObserver()));
    }

    [Fact]
    public void MovingAverageFollowsTheEmaFormula()
    {
        var r = new Random(2);
        var o = new MovingAverageMinMaxObserver(0.01);
        double min = 0, max = 0;
        for (int k = 0; k < 50; k++)
        {
            var b = Enumerable.Range(0, 64).Select(_ => (float)(r.NextDouble() * 4 - 1.5 + k * 0.1)).ToArray();
            double bmin = b.Min(), bmax = b.Max();
            if (k == 0) (min, max) = (bmin, bmax);
            else
            {
                min = min + 0.01 * (bmin - min);
                max = max + 0.01 * (bmax - max);
            }
            o.Observe(b);
            if (k == 10) o.Observe([float.NaN]); // skipped, not a batch
        }
        Assert.Equal(min, o.Min, 12);
        Assert.Equal(max, o.Max, 12);
        Assert.Equal(50, o.Batches);
        var p = o.ComputeParams(QuantScheme.UInt8Asymmetric);
        Assert.Equal(QuantParams.Compute(min, max, QuantScheme.UInt8Asymmetric).Scale, p.Scale[0]);
    }

    [Fact]
    public void PercentileIsWithinOneBinOfTheSortedSamplePercentile()
    {
        var dists = new (string Name, float[] X)[]
        {
            ("gaussian", Sample(200_000, Gaussian, 3)),
            ("laplace", Sample(200_000, Laplace, 4)),
            ("uniform", Sample(200_000, r => (float)(r.NextDouble() * 3 - 1), 5)),
            ("outliers", Sample(200_000, Gaussian, 6, 20, 60)),
        };
        foreach (var (name, x) in dists)
        {
            var abs = x.Select(MathF.Abs).ToArray();
            Array.Sort(abs);
            var sorted = (float[])x.Clone();
            Array.Sort(sorted);
            foreach (double pct in new[] { 99.9, 99.99, 99.999 })
            {
                var o = new PercentileObserver(pct);
                foreach (var b in Batches(x, 10_000)) o.Observe(b);
                double w = o.Histogram.BinWidth;
                double exactAbs = ExactPercentile(abs, pct / 100);
                var (lo, hi) = o.ComputeRange(QuantScheme.Int8Symmetric);
                double t = System.Math.Max(-lo, hi);
                Assert.True(System.Math.Abs(t - exactAbs) <= w, $"{name} {pct}: |x| percentile {t} vs exact {exactAbs}, bin {w}");
                var (alo, ahi) = o.ComputeRange(QuantScheme.UInt8Asymmetric);
                Assert.True(System.Math.Abs(ahi - ExactPercentile(sorted, pct / 100)) <= w, $"{name} {pct}: upper tail {ahi}");
                Assert.True(System.Math.Abs(alo - ExactPercentile(sorted, 1 - pct / 100)) <= w, $"{name} {pct}: lower tail {alo}");
            }
        }
    }

    /// <summary>The test's own implementation of TensorRT's KL criterion for candidate i (see EntropyObserver's documentation).</summary>
    private static double ReferenceKl(double[] hist, int i, int levels)
    {
        var p = hist.Take(i).ToList();
        p[i - 1] += hist.Skip(i).Sum();
        var q = new double[i];
        int per = i / levels;
        for (int g = 0; g < levels; g++)
        {
            int s = g * per, e = g == levels - 1 ? i : (g + 1) * per;
            var idx = Enumerable.Range(s, e - s).ToArray();
            int nz = idx.Count(j => hist[j] > 0);
            double total = idx.Sum(j => hist[j]);
            foreach (int j in idx) q[j] = hist[j] > 0 ? total / nz : 0;
        }
        double[]? Smooth(IList<double> d)
        {
            int zeros = d.Count(v => v == 0);
            if (zeros == d.Count) return null;
            double eps1 = 1e-4 * zeros / (d.Count - zeros);
            var r = d.Select(v => v == 0 ? 1e-4 : v - eps1).ToArray();
            if (r.Any(v => v <= 0)) return null;
            double sum = r.Sum();
            return r.Select(v => v / sum).ToArray();
        }
        var ps = Smooth(p);
        var qs = Smooth(q);
        if (ps == null || qs == null) return double.PositiveInfinity;
        return ps.Zip(qs, (a, b) => a * System.Math.Log(a / b)).Sum();
    }

    [Fact]
    public void EntropyThresholdIsAKlMinimumAndIgnoresOutliers()
    {
        var x = Sample(100_000, Gaussian, 7, 10, 50);
        var o = new EntropyObserver();
        foreach (var b in Batches(x, 20_000)) o.Observe(b);
        var (bins, threshold, kl) = o.FindThreshold(EntropyObserver.Levels(QuantScheme.Int8Symmetric));
        double maxAbs = x.Max(MathF.Abs);
        Assert.InRange(threshold, 2.5, 0.5 * maxAbs);
        var hist = o.Histogram.AbsCounts();
        Assert.Equal(2048, hist.Length);
        double mine = ReferenceKl(hist, bins, 128);
        Assert.Equal(mine, kl, 9);
        for (int d = -3; d <= 3; d++)
        {
            int i = bins + d;
            if (d == 0 || i < 128 || i > 2048) continue;
            Assert.True(mine <= ReferenceKl(hist, i, 128) + 1e-12, $"KL at {bins} exceeds KL at {i}");
        }
        // Global check on a coarse sweep of the test's own implementation.
        for (int i = 128; i <= 2048; i += 37) Assert.True(mine <= ReferenceKl(hist, i, 128) + 1e-12);
        var (lo, hi) = o.ComputeRange(QuantScheme.Int8Symmetric);
        Assert.Equal(-threshold, lo, 12);
        Assert.Equal(threshold, hi, 12);
    }

    [Fact]
    public void EntropyOnLaplaceAndUniform()
    {
        // A uniform distribution has nothing to clip: the threshold is close to its maximum.
        var u = Sample(100_000, r => (float)(r.NextDouble() * 2 - 1), 8);
        var ou = new EntropyObserver();
        ou.Observe(u);
        Assert.InRange(ou.FindThreshold(128).Threshold, 0.9, 1.0);
        var l = Sample(100_000, Laplace, 9);
        var ol = new EntropyObserver();
        ol.Observe(l);
        var t = ol.FindThreshold(128).Threshold;
        Assert.True(t < l.Max(MathF.Abs) && t > 3, $"laplace threshold {t}");
        // ReLU output under uint8: the range starts at 0 and all 256 codes are used for the search.
        var relu = Sample(100_000, Gaussian, 10, 10, 50).Select(v => System.Math.Max(v, 0f)).ToArray();
        var or = new EntropyObserver();
        or.Observe(relu);
        var (lo, hi) = or.ComputeRange(QuantScheme.UInt8Asymmetric);
        Assert.Equal(0, lo);
        Assert.Equal(or.FindThreshold(256).Threshold, hi);
        Assert.InRange(hi, 2.5, 25);
        var p = or.ComputeParams(QuantScheme.UInt8Asymmetric);
        Assert.Equal(0, p.ZeroPoint[0]);
    }

    /// <summary>The test's own brute-force expected MSE of a symmetric clip at t over the signed histogram.</summary>
    private static double ReferenceMse(double[] counts, double range, double zeros, double t, QuantScheme s)
    {
        int n = counts.Length;
        double w = 2 * range / n;
        double scale = (float)(2 * t / (s.QMax - s.QMin));
        double top = s.QMax * scale, bottom = s.QMin * scale, e = 0;
        for (int b = 0; b < n; b++)
        {
            double c = b == n / 2 ? counts[b] - zeros : counts[b];
            double x = -range + (b + 0.5) * w;
            e += c * (x > top ? (x - top) * (x - top) : x < bottom ? (x - bottom) * (x - bottom) : scale * scale / 12);
        }
        return e;
    }

    [Fact]
    public void MseThresholdMinimisesTheBruteForceExpectedError()
    {
        foreach (var (x, name) in new[] { (Sample(100_000, Laplace, 10, 5, 40), "laplace+outliers"), (Sample(100_000, Gaussian, 11), "gaussian") })
        {
            var s = QuantScheme.Int8Symmetric;
            var o = new MseObserver();
            foreach (var b in Batches(x, 25_000)) o.Observe(b);
            var (lo, hi) = o.ComputeRange(s);
            double t = System.Math.Max(-lo, hi);
            var h = o.Histogram;
            var counts = h.Counts();
            double maxAbs = h.MaxAbs, w = h.BinWidth;
            double bestT = 0, bestE = double.PositiveInfinity;
            for (int k = 1; k <= 4000; k++)
            {
                double tt = maxAbs * k / 4000;
                double e = ReferenceMse(counts, h.Range, h.ZeroCount, tt, s);
                if (e < bestE) (bestE, bestT) = (e, tt);
            }
            Assert.True(System.Math.Abs(t - bestT) <= w, $"{name}: MSE threshold {t} vs brute force {bestT} (bin {w})");
            Assert.True(t < maxAbs, name);
            // The real sample error at the chosen clip is close to the best of a sweep of clips.
            double SampleMse(double clip)
            {
                var p = QuantParams.FromRange(-clip, clip, s);
                var y = new float[x.Length];
                QuantOps.FakeQuantize(x, [x.Length], p, y);
                double acc = 0;
                for (int i = 0; i < x.Length; i++) acc += (x[i] - (double)y[i]) * (x[i] - (double)y[i]);
                return acc / x.Length;
            }
            double chosen = SampleMse(t), best = double.PositiveInfinity;
            for (int k = 1; k <= 60; k++) best = System.Math.Min(best, SampleMse(maxAbs * k / 60));
            Assert.True(chosen <= best * 1.05, $"{name}: sample MSE {chosen} vs best {best}");
        }
    }

    [Fact]
    public void StreamingOrderAndMergingBarelyChangeTheResult()
    {
        var x = Sample(120_000, Gaussian, 12, 6, 20);
        var s = QuantScheme.Int8Symmetric;
        foreach (var make in new Func<IObserver>[] { () => new PercentileObserver(99.99), () => new EntropyObserver(), () => new MseObserver(), () => new MinMaxObserver() })
        {
            var whole = make();
            whole.Observe(x);
            var batches = Batches(x, 4000).ToList();
            var forward = make();
            foreach (var b in batches) forward.Observe(b);
            // Smallest range first forces several histogram growths.
            var sorted = make();
            foreach (var b in batches.OrderBy(b => b.Max(MathF.Abs))) sorted.Observe(b);
            var merged = make();
            var other = make();
            for (int i = 0; i < batches.Count; i++) (i % 2 == 0 ? merged : other).Observe(batches[i]);
            merged.Merge(other);
            double reference = whole.ComputeParams(s).Scale[0];
            foreach (var o in new[] { forward, sorted, merged })
            {
                Assert.Equal(whole.Count, o.Count);
                double ratio = o.ComputeParams(s).Scale[0] / reference;
                Assert.True(ratio is > 0.97 and < 1.03, $"{whole.GetType().Name}: scale ratio {ratio}");
            }
        }
    }

    [Fact]
    public void HistogramGrowthIsExactForPowerOfTwoRanges()
    {
        var r = new Random(13);
        var a = Enumerable.Range(0, 5000).Select(_ => (float)(r.NextDouble() * 2 - 1)).Append(1f).ToArray();
        var b = Enumerable.Range(0, 5000).Select(_ => (float)(r.NextDouble() * 8 - 4)).Append(-4f).Append(0f).ToArray();
        var grown = new StreamingHistogram(256);
        grown.Add(a);
        grown.Add(b);
        var direct = new StreamingHistogram(256);
        direct.Add(b);
        direct.Add(a);
        Assert.Equal(4.0, grown.Range);
        Assert.Equal(direct.Counts(), grown.Counts());
        Assert.Equal(direct.AbsCounts(), grown.AbsCounts());
        Assert.Equal(10_003, grown.Counts().Sum());
        Assert.True(grown.ZeroCount >= 1);
    }

    [Fact]
    public void MemoryStaysBoundedAfterAMillionSamples()
    {
        var o = new EntropyObserver();
        var r = new Random(14);
        var batch = new float[10_000];
        for (int k = 0; k < 100; k++)
        {
            double spread = 1 + k * 0.5; // the range keeps growing
            for (int i = 0; i < batch.Length; i++) batch[i] = (float)((r.NextDouble() - 0.5) * spread);
            o.Observe(batch);
        }
        Assert.Equal(1_000_000, o.Count);
        Assert.Equal(4096, o.Histogram.BinCount);
        Assert.Equal(4096, o.Histogram.Counts().Length);
        Assert.Equal(1_000_000, o.Histogram.Counts().Sum(), 6);
    }

    [Fact]
    public void PerChannelObserversGivePerAxisParameters()
    {
        var r = new Random(15);
        int[] shape = [4, 3, 5];
        var w = Enumerable.Range(0, 60).Select(i => (float)((r.NextDouble() - 0.5) * (1 + i / 15))).ToArray();
        var o = new PerChannelObserver(() => new MinMaxObserver(), 0);
        o.Observe(w.AsSpan(0, 60), shape);
        var p = o.ComputeParams(QuantScheme.Int8Symmetric);
        var direct = QuantParams.FromData(w, shape, QuantScheme.Int8Symmetric.PerAxis(0));
        Assert.Equal(direct.Scale, p.Scale);
        Assert.Equal(direct.ZeroPoint, p.ZeroPoint);
        Assert.Equal([4], p.ParamShape);
        var o1 = new PerChannelObserver(() => new PercentileObserver(100), 1);
        o1.Observe(w, shape);
        var p1 = o1.ComputeParams(QuantScheme.UInt8Asymmetric);
        var d1 = QuantParams.FromData(w, shape, QuantScheme.UInt8Asymmetric.PerAxis(1));
        for (int c = 0; c < 3; c++) Assert.Equal(d1.Scale[c], p1.Scale[c], 1e-6f);
        Assert.Throws<QuantSharpException>(() => o.Observe(new float[30], [2, 3, 5]));
    }
}
