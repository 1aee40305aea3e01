using QuantSharp.Quantization.Math;

namespace QuantSharp.Quantization.Observers;

/// <summary>
/// TensorRT's entropy calibration: choose the |x| threshold whose clipped-and-quantized distribution loses the
/// least information (smallest KL divergence) relative to the observed one. On the folded |x| histogram of
/// H = binCount / 2 bins (2048 by default) and L = (qmax − qmin + 1) / 2 quantized levels (128 for 8 bits), for
/// every candidate i = L … H:
/// <list type="number">
/// <item>P = |x| counts of bins [0, i), with all counts of bins ≥ i (outliers) added to bin i − 1;</item>
/// <item>Q: bins [0, i) (without the outliers) merged into L groups of ⌊i / L⌋ bins (the last group also takes the
///   remainder), each group's total spread evenly over the group's bins that are non-zero in the histogram
///   (empty bins stay empty);</item>
/// <item>P and Q (as counts) are smoothed: every zero entry gets ε = 0.0001 and every non-zero entry gives back
///   ε · zeros / non-zeros (a candidate where an entry would drop to ≤ 0 is skipped);</item>
/// <item>both are normalised to sum 1 and KL(P‖Q) = Σ p · ln(p / q).</item>
/// </list>
/// (For an asymmetric scheme and non-negative data L is the full qmax − qmin + 1, e.g. 256 for uint8 after a ReLU.)
/// <para>
/// Exact zeros are left out of the searched histogram (bin 0 keeps only the values in (0, w]). Every candidate
/// represents 0 exactly (the quantizer makes 0 a code), so exact zeros lose nothing whatever the threshold and must
/// not weigh on the choice. Left in, they break the search on ReLU/ReLU6 outputs, where often more than half the
/// values are exactly 0: Q spreads the first group's total evenly over that group's non-empty bins, so a group
/// that merges the zero spike in bin 0 with its neighbours gives P ≫ Q in bin 0 and a KL of about
/// p₀ · ln(non-empty bins of the group), which only the smallest candidate (i = L, one bin per group) avoids —
/// the threshold then collapses to L / H of the range (ReLU6 outputs clipped at about 1 instead of 6).
/// </para>
/// The threshold is t = i* · w (the upper edge of the last kept bin) for the i* with the smallest KL (the
/// smallest such i on ties). If L ≥ H there is nothing to choose and t = max |x|. The range is then
/// [max(min, −t), min(max, t)].
/// </summary>
public sealed class EntropyObserver : HistogramObserver
{
    public const double SmoothingEpsilon = 0.0001;

    public EntropyObserver(int binCount = 4096) : base(binCount) { }

    public override (double Min, double Max) ComputeRange(QuantScheme scheme)
    {
        if (Histogram.Count == 0) return (0, 0);
        // Non-negative data under an asymmetric scheme spends all codes on [0, t].
        int levels = !scheme.Symmetric && scheme.Code == QuantCode.Uniform && Histogram.Min >= 0
            ? scheme.QMax - scheme.QMin + 1
            : Levels(scheme);
        return SymmetricClip(FindThreshold(levels).Threshold);
    }

    /// <summary>Quantized levels on one side of zero: (qmax − qmin + 1) / 2, at least 1.</summary>
    public static int Levels(QuantScheme scheme) => System.Math.Max(1, (scheme.QMax - scheme.QMin + 1) / 2);

    /// <summary>The chosen number of kept |x| bins, its threshold and its divergence (bins 0 and KL 0 when no search was possible).</summary>
    public (int Bins, double Threshold, double Divergence) FindThreshold(int levels)
    {
        var abs = SearchCounts();
        int h = abs.Length;
        if (levels >= h || Histogram.Range == 0) return (0, Histogram.MaxAbs, 0);
        int best = 0;
        double bestKl = double.PositiveInfinity;
        var p = new double[h];
        var q = new double[h];
        for (int i = levels; i <= h; i++)
        {
            double kl = Divergence(abs, i, levels, p, q);
            if (kl < bestKl)
            {
                bestKl = kl;
                best = i;
            }
        }
        if (best == 0) return (0, Histogram.MaxAbs, 0);
        return (best, System.Math.Min(best * Histogram.BinWidth, Histogram.MaxAbs), bestKl);
    }

    /// <summary>The |x| counts the search runs on: <see cref="StreamingHistogram.AbsCounts"/> without the exact zeros (see the class).</summary>
    public double[] SearchCounts()
    {
        var abs = Histogram.AbsCounts();
        abs[0] = System.Math.Max(0, abs[0] - Histogram.ZeroCount);
        return abs;
    }

    /// <summary>KL(P‖Q) of candidate <paramref name="bins"/> as described on the class; +∞ when the candidate is skipped.</summary>
    public static double Divergence(ReadOnlySpan<double> absCounts, int bins, int levels) =>
        Divergence(absCounts, bins, levels, new double[bins], new double[bins]);

    private static double Divergence(ReadOnlySpan<double> abs, int i, int levels, double[] p, double[] q)
    {
        double outliers = 0;
        for (int j = i; j < abs.Length; j++) outliers += abs[j];
        for (int j = 0; j < i; j++) p[j] = abs[j];
        p[i - 1] += outliers;
        int merged = i / levels;
        for (int g = 0; g < levels; g++)
        {
            int start = g * merged, end = g == levels - 1 ? i : start + merged;
            double sum = 0;
            int nonZero = 0;
            for (int j = start; j < end; j++)
            {
                sum += abs[j];
                if (abs[j] != 0) nonZero++;
            }
            double each = nonZero == 0 ? 0 : sum / nonZero;
            for (int j = start; j < end; j++) q[j] = abs[j] != 0 ? each : 0;
        }
        if (!NormaliseAndSmooth(p.AsSpan(0, i)) || !NormaliseAndSmooth(q.AsSpan(0, i))) return double.PositiveInfinity;
        double kl = 0;
        for (int j = 0; j < i; j++) kl += p[j] * System.Math.Log(p[j] / q[j]);
        return kl;
    }

    private static bool NormaliseAndSmooth(Span<double> d)
    {
        int zeros = 0;
        foreach (double v in d)
            if (v == 0) zeros++;
        int nonZero = d.Length - zeros;
        if (nonZero == 0) return false;
        double give = SmoothingEpsilon * zeros / nonZero, sum = 0;
        for (int j = 0; j < d.Length; j++)
        {
            d[j] = d[j] == 0 ? SmoothingEpsilon : d[j] - give;
            if (d[j] <= 0) return false;
            sum += d[j];
        }
        for (int j = 0; j < d.Length; j++) d[j] /= sum;
        return true;
    }
}

/// <summary>
/// Clipping range minimising the expected squared quantization error over the streamed histogram. Candidates
/// shrink the observed range [min(min, 0), max(max, 0)] by α = k / K, k = 1 … K (K = bins per side, so the
/// candidate step is about one bin). For each candidate the scheme's scale s and zero point give the
/// representable interval [(qmin − zp)·s, (qmax − zp)·s]; every histogram bin, represented by its centre c and
/// count n, contributes n · (c − clamp(c))² when c lies outside (clipping error) and n · s² / 12 when inside
/// (rounding error of a value uniform within a step). Exact zeros are counted apart and contribute nothing (zero
/// is representable exactly). For binary and ternary codes each bin contributes n · (c − fakequant(c))².
/// The candidate with the least error wins (the smallest α on ties).
/// </summary>
public sealed class MseObserver : HistogramObserver
{
    public MseObserver(int binCount = 4096) : base(binCount) { }

    public override (double Min, double Max) ComputeRange(QuantScheme scheme)
    {
        if (Histogram.Count == 0 || Histogram.Range == 0) return (0, 0);
        return FindRange(scheme).Range;
    }

    /// <summary>The selected range and its expected squared error (summed over all values).</summary>
    public ((double Min, double Max) Range, double Error) FindRange(QuantScheme scheme)
    {
        scheme.Validate();
        var counts = Histogram.Counts();
        int n = counts.Length, h = n / 2;
        counts[h] = System.Math.Max(0, counts[h] - Histogram.ZeroCount);
        double w = Histogram.BinWidth, r = Histogram.Range;
        var centres = new double[n];
        for (int b = 0; b < n; b++) centres[b] = -r + (b + 0.5) * w;
        double lo0 = System.Math.Min(Histogram.Min, 0), hi0 = System.Math.Max(Histogram.Max, 0);
        int steps = h;
        (double, double) best = (lo0, hi0);
        double bestErr = double.PositiveInfinity;
        for (int k = 1; k <= steps; k++)
        {
            double a = (double)k / steps;
            double lo = lo0 * a, hi = hi0 * a;
            double err = ExpectedError(counts, centres, lo, hi, scheme);
            if (err < bestErr)
            {
                bestErr = err;
                best = (lo, hi);
            }
        }
        return (best, bestErr);
    }

    /// <summary>Expected squared error of quantizing the histogram with the parameters of range [lo, hi] (model above).</summary>
    public static double ExpectedError(ReadOnlySpan<double> counts, ReadOnlySpan<double> centres, double lo, double hi, QuantScheme scheme)
    {
        var (s, zp) = QuantParams.Compute(lo, hi, scheme);
        double err = 0;
        if (scheme.Code == QuantCode.Uniform)
        {
            double rl = (double)(scheme.QMin - zp) * s, rh = (double)(scheme.QMax - zp) * s, round = (double)s * s / 12;
            for (int b = 0; b < counts.Length; b++)
            {
                double c = counts[b];
                if (c == 0) continue;
                double x = centres[b];
                err += c * (x < rl ? (x - rl) * (x - rl) : x > rh ? (x - rh) * (x - rh) : round);
            }
            return err;
        }
        for (int b = 0; b < counts.Length; b++)
        {
            if (counts[b] == 0) continue;
            double x = centres[b];
            double d = x - QuantOps.DequantizeValue(QuantOps.QuantizeValue((float)x, s, zp, scheme), s, zp);
            err += counts[b] * d * d;
        }
        return err;
    }
}
