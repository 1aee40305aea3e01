namespace QuantSharp.Quantization.Observers;

/// <summary>
/// A fixed-size histogram of finite values over a range symmetric about zero, [−R, R], built from a stream of
/// batches in bounded memory. There are <see cref="BinCount"/> bins (even), <see cref="HalfBins"/> on each side,
/// of width w = R / HalfBins; with m = ⌈|x| / w⌉ − 1 (m = 0 for x = 0), x ≥ 0 falls in bin HalfBins + m (covering
/// (m·w, (m + 1)·w]) and x &lt; 0 in HalfBins − 1 − m, so folding bin HalfBins + j with bin HalfBins − 1 − j gives
/// exactly the histogram of |x| over [0, R] (TensorRT's 2048-bin |x| histogram is the fold of a 4096-bin one).
/// <para>
/// Range: R is the first batch's max |x|. When a later batch holds a larger |x|, R is doubled as often as needed
/// (R' = R · 2^k) and every 2^k adjacent old bins are added into one new bin; as both grids are anchored at 0 the
/// old bins nest exactly in the new ones, so growth loses resolution but never moves a count to the wrong bin.
/// Merging two histograms re-bins the one with the smaller range into the other's grid, splitting each old bin's
/// count over the new bins it overlaps in proportion to the overlap (values assumed uniform within a bin); this is
/// exact when the ranges differ by a power of two. Exact zeros, the finite min/max and the count of finite and of
/// ignored non-finite values (NaN, ±∞) are tracked besides. Memory: BinCount doubles, whatever the sample count.
/// </para>
/// </summary>
public sealed class StreamingHistogram
{
    private double[] _counts;
    private long _pendingZeros;

    public StreamingHistogram(int binCount = 4096)
    {
        if (binCount < 2 || binCount % 2 != 0) throw new QuantSharpException($"histogram bin count {binCount} must be even and ≥ 2");
        _counts = new double[binCount];
    }

    public int BinCount => _counts.Length;
    public int HalfBins => _counts.Length / 2;
    /// <summary>Half-range R; 0 while only zeros (or nothing) have been seen.</summary>
    public double Range { get; private set; }
    public double BinWidth => Range / HalfBins;
    /// <summary>Finite values observed.</summary>
    public long Count { get; private set; }
    /// <summary>NaN and ±∞ values skipped.</summary>
    public long NonFiniteCount { get; private set; }
    /// <summary>Values exactly 0 (all in bin HalfBins).</summary>
    public long ZeroCount { get; private set; }
    /// <summary>Smallest finite value (+∞ when none).</summary>
    public double Min { get; private set; } = double.PositiveInfinity;
    /// <summary>Largest finite value (−∞ when none).</summary>
    public double Max { get; private set; } = double.NegativeInfinity;
    public double MaxAbs => Count == 0 ? 0 : System.Math.Max(-Min, Max);

    /// <summary>Signed counts, bin b covering −R + b·w … −R + (b + 1)·w. A copy.</summary>
    public double[] Counts()
    {
        var c = (double[])_counts.Clone();
        c[HalfBins] += _pendingZeros;
        return c;
    }

    /// <summary>Counts of |x|: bin j covers (j·w, (j + 1)·w] (bin 0 also holds the zeros), j &lt; HalfBins.</summary>
    public double[] AbsCounts()
    {
        int h = HalfBins;
        var a = new double[h];
        for (int j = 0; j < h; j++) a[j] = _counts[h + j] + _counts[h - 1 - j];
        a[0] += _pendingZeros;
        return a;
    }

    public void Add(ReadOnlySpan<float> x)
    {
        double bmin = double.PositiveInfinity, bmax = double.NegativeInfinity;
        long finite = 0;
        foreach (float v in x)
        {
            if (!float.IsFinite(v)) continue;
            finite++;
            if (v < bmin) bmin = v;
            if (v > bmax) bmax = v;
        }
        NonFiniteCount += x.Length - finite;
        if (finite == 0) return;
        Min = System.Math.Min(Min, bmin);
        Max = System.Math.Max(Max, bmax);
        Count += finite;
        double maxAbs = System.Math.Max(-bmin, bmax);
        EnsureRange(maxAbs);
        if (Range == 0)
        {
            _pendingZeros += finite;
            ZeroCount += finite;
            return;
        }
        int h = HalfBins;
        double inv = h / Range;
        foreach (float v in x)
        {
            if (!float.IsFinite(v)) continue;
            if (v == 0) ZeroCount++;
            _counts[BinOf(v, inv, h)]++;
        }
    }

    /// <summary>Bins are closed towards ±R: m = ⌈|x| / w⌉ − 1 (0 for x = 0), so |x| = R lands in the outermost bin without clamping and still nests after growth.</summary>
    private static int BinOf(double v, double invWidth, int h)
    {
        int m = System.Math.Clamp((int)System.Math.Ceiling(System.Math.Abs(v) * invWidth) - 1, 0, h - 1);
        return v >= 0 ? h + m : h - 1 - m;
    }

    /// <summary>Grows R by powers of two until it covers <paramref name="maxAbs"/> (sets R on the first non-zero value).</summary>
    private void EnsureRange(double maxAbs)
    {
        if (maxAbs <= Range) return;
        if (Range == 0)
        {
            Range = maxAbs;
            _counts[HalfBins] += _pendingZeros;
            _pendingZeros = 0;
            return;
        }
        double r = Range;
        while (r < maxAbs) r *= 2;
        RebinTo(r);
    }

    /// <summary>Re-bins the counts onto [−newRange, newRange] (newRange ≥ Range) by proportional overlap.</summary>
    private void RebinTo(double newRange)
    {
        if (newRange == Range) return;
        _counts = Rebin(_counts, Range, newRange);
        Range = newRange;
    }

    private static double[] Rebin(double[] counts, double range, double newRange)
    {
        int n = counts.Length, h = n / 2;
        var result = new double[n];
        double ratio = newRange / range;
        int k = (int)System.Math.Round(System.Math.Log2(ratio));
        if (k >= 0 && k < 31 && ratio == System.Math.Pow(2, k))
        {
            // Power-of-two growth: old bin h + m nests in new bin h + ⌊m / 2^k⌋.
            for (int b = 0; b < n; b++) result[h + ((b - h) >> k)] += counts[b];
            return result;
        }
        double w = range / h, nw = newRange / h;
        for (int b = 0; b < n; b++)
        {
            double c = counts[b];
            if (c == 0) continue;
            // Old bin edges in units of new bins, measured from −newRange.
            double lo = ((b - h) * w + newRange) / nw, hi = ((b + 1 - h) * w + newRange) / nw;
            int first = System.Math.Clamp((int)System.Math.Floor(lo), 0, n - 1);
            int last = System.Math.Clamp((int)System.Math.Ceiling(hi) - 1, first, n - 1);
            if (first == last) { result[first] += c; continue; }
            double span = hi - lo;
            for (int j = first; j <= last; j++)
            {
                double overlap = System.Math.Min(hi, j + 1) - System.Math.Max(lo, j);
                if (overlap > 0) result[j] += c * overlap / span;
            }
        }
        return result;
    }

    /// <summary>Adds another histogram's counts (same bin count) into this one.</summary>
    public void Merge(StreamingHistogram other)
    {
        if (other.BinCount != BinCount)
            throw new QuantSharpException($"cannot merge histograms of {BinCount} and {other.BinCount} bins");
        NonFiniteCount += other.NonFiniteCount;
        if (other.Count == 0) return;
        Count += other.Count;
        ZeroCount += other.ZeroCount;
        Min = System.Math.Min(Min, other.Min);
        Max = System.Math.Max(Max, other.Max);
        double target = System.Math.Max(Range, other.Range);
        if (target == 0)
        {
            _pendingZeros += other._pendingZeros;
            return;
        }
        if (Range == 0)
        {
            Range = target;
            _counts[HalfBins] += _pendingZeros;
            _pendingZeros = 0;
        }
        else RebinTo(target);
        var theirs = other.Range == 0 ? new double[BinCount] : Rebin(other._counts, other.Range, target);
        theirs[HalfBins] += other._pendingZeros;
        for (int b = 0; b < BinCount; b++) _counts[b] += theirs[b];
    }

    /// <summary>
    /// The value below which a fraction <paramref name="q"/> (0..1) of the counts lie, interpolated linearly
    /// inside the bin where the cumulative count crosses q · total; clamped to [Min, Max].
    /// </summary>
    public double Quantile(double q) => Count == 0 ? 0 : System.Math.Clamp(QuantileOf(Counts(), -Range, BinWidth, q), Min, Max);

    /// <summary>Quantile of |x| (same interpolation), clamped to max |x|.</summary>
    public double AbsQuantile(double q) => System.Math.Min(QuantileOf(AbsCounts(), 0, BinWidth, q), MaxAbs);

    private static double QuantileOf(double[] counts, double origin, double width, double q)
    {
        double total = 0;
        foreach (double c in counts) total += c;
        if (total == 0) return 0;
        double target = System.Math.Clamp(q, 0, 1) * total, cum = 0;
        for (int b = 0; b < counts.Length; b++)
        {
            if (counts[b] > 0 && cum + counts[b] >= target)
                return origin + (b + (target - cum) / counts[b]) * width;
            cum += counts[b];
        }
        return origin + counts.Length * width;
    }
}
