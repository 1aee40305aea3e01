using QuantSharp.Quantization.Math;

namespace QuantSharp.Quantization.Observers;

/// <summary>
/// Watches the values of one tensor over calibration batches and derives quantization parameters from them.
/// Observers never change the data. Non-finite values (NaN, ±∞) are ignored; an observer that saw no finite
/// value reports the range [0, 0], which <see cref="QuantParams.Compute"/> turns into scale 1 with the zero
/// point of 0 (so everything quantizes to the code of 0).
/// </summary>
public interface IObserver
{
    void Observe(ReadOnlySpan<float> x);

    /// <summary>The clipping range [Min, Max] the observer recommends for the scheme (before widening to include 0).</summary>
    (double Min, double Max) ComputeRange(QuantScheme scheme);

    /// <summary>Per-tensor parameters: <see cref="QuantParams.FromRange"/> of <see cref="ComputeRange"/>.</summary>
    QuantParams ComputeParams(QuantScheme scheme);

    /// <summary>Folds another observer of the same kind and settings into this one (parallel calibration).</summary>
    void Merge(IObserver other);

    /// <summary>Finite values observed so far.</summary>
    long Count { get; }
}

/// <summary>Shared plumbing: per-tensor parameters from the range, scheme checks, merge type checks.</summary>
public abstract class Observer : IObserver
{
    public abstract void Observe(ReadOnlySpan<float> x);
    public abstract (double Min, double Max) ComputeRange(QuantScheme scheme);
    public abstract void Merge(IObserver other);
    public abstract long Count { get; }

    public QuantParams ComputeParams(QuantScheme scheme)
    {
        scheme.Validate();
        if (scheme.Granularity != QuantGranularity.PerTensor)
            throw new QuantSharpException($"{GetType().Name} gives per-tensor parameters; use PerChannelObserver for {scheme.Granularity} granularity");
        var (min, max) = ComputeRange(scheme);
        return QuantParams.FromRange(min, max, scheme);
    }

    protected T Same<T>(IObserver other) where T : Observer =>
        other as T ?? throw new QuantSharpException($"cannot merge a {other.GetType().Name} into a {GetType().Name}");

    /// <summary>Finite min and max of a batch; (+∞, −∞) when it has none.</summary>
    protected static (double Min, double Max, long Finite) FiniteRange(ReadOnlySpan<float> x)
    {
        double min = double.PositiveInfinity, max = double.NegativeInfinity;
        long n = 0;
        foreach (float v in x)
        {
            if (!float.IsFinite(v)) continue;
            n++;
            if (v < min) min = v;
            if (v > max) max = v;
        }
        return (min, max, n);
    }
}

/// <summary>Running minimum and maximum of all finite values (ONNX Runtime's and PyTorch's MinMax).</summary>
public sealed class MinMaxObserver : Observer
{
    private long _count;
    public double Min { get; private set; } = double.PositiveInfinity;
    public double Max { get; private set; } = double.NegativeInfinity;
    public override long Count => _count;

    public override void Observe(ReadOnlySpan<float> x)
    {
        var (min, max, n) = FiniteRange(x);
        if (n == 0) return;
        _count += n;
        Min = System.Math.Min(Min, min);
        Max = System.Math.Max(Max, max);
    }

    public override (double Min, double Max) ComputeRange(QuantScheme scheme) => _count == 0 ? (0, 0) : (Min, Max);

    public override void Merge(IObserver other)
    {
        var o = Same<MinMaxObserver>(other);
        if (o._count == 0) return;
        _count += o._count;
        Min = System.Math.Min(Min, o.Min);
        Max = System.Math.Max(Max, o.Max);
    }
}

/// <summary>
/// Exponential moving average of the per-batch min and max (PyTorch's MovingAverageMinMaxObserver):
/// the first batch sets min = batch_min, max = batch_max; each later batch updates
/// min ← min + c · (batch_min − min) and max ← max + c · (batch_max − max) with c = <see cref="AveragingConstant"/>
/// (default 0.01). Batches without a finite value are skipped. Merging two observers averages their states
/// weighted by their numbers of batches (an approximation: an EMA depends on batch order).
/// </summary>
public sealed class MovingAverageMinMaxObserver : Observer
{
    private long _count;

    public MovingAverageMinMaxObserver(double averagingConstant = 0.01)
    {
        if (!(averagingConstant > 0 && averagingConstant <= 1))
            throw new QuantSharpException($"averaging constant {averagingConstant} is outside (0, 1]");
        AveragingConstant = averagingConstant;
    }

    public double AveragingConstant { get; }
    public double Min { get; private set; }
    public double Max { get; private set; }
    public long Batches { get; private set; }
    public override long Count => _count;

    public override void Observe(ReadOnlySpan<float> x)
    {
        var (min, max, n) = FiniteRange(x);
        if (n == 0) return;
        _count += n;
        if (Batches == 0)
        {
            Min = min;
            Max = max;
        }
        else
        {
            Min += AveragingConstant * (min - Min);
            Max += AveragingConstant * (max - Max);
        }
        Batches++;
    }

    public override (double Min, double Max) ComputeRange(QuantScheme scheme) => Batches == 0 ? (0, 0) : (Min, Max);

    public override void Merge(IObserver other)
    {
        var o = Same<MovingAverageMinMaxObserver>(other);
        if (o.Batches == 0) return;
        long total = Batches + o.Batches;
        Min = (Min * Batches + o.Min * o.Batches) / total;
        Max = (Max * Batches + o.Max * o.Batches) / total;
        Batches = total;
        _count += o._count;
    }
}

/// <summary>Base of the observers that keep a <see cref="StreamingHistogram"/> (bounded memory, mergeable).</summary>
public abstract class HistogramObserver : Observer
{
    protected HistogramObserver(int binCount) => Histogram = new StreamingHistogram(binCount);

    public StreamingHistogram Histogram { get; }
    public override long Count => Histogram.Count;
    public override void Observe(ReadOnlySpan<float> x) => Histogram.Add(x);

    public override void Merge(IObserver other)
    {
        if (other.GetType() != GetType()) throw new QuantSharpException($"cannot merge a {other.GetType().Name} into a {GetType().Name}");
        Histogram.Merge(((HistogramObserver)other).Histogram);
    }

    /// <summary>Range [−t, t] clipped to the observed values: [max(min, −t), min(max, t)].</summary>
    protected (double Min, double Max) SymmetricClip(double t) => Histogram.Count == 0
        ? (0, 0)
        : (System.Math.Max(Histogram.Min, -t), System.Math.Min(Histogram.Max, t));
}

/// <summary>
/// Percentile clipping from a streamed histogram. Symmetric (and binary/ternary) schemes clip at the
/// <see cref="Percentile"/>-th percentile t of |x|, range [max(min, −t), min(max, t)]; asymmetric schemes clip
/// both tails separately, range [(100 − p)-th percentile of x, p-th percentile of x]. Percentiles are
/// interpolated linearly inside the histogram bin where they fall, so they are within one bin width of the exact
/// sorted-sample percentile.
/// </summary>
public sealed class PercentileObserver : HistogramObserver
{
    public PercentileObserver(double percentile = 99.99, int binCount = 4096) : base(binCount)
    {
        if (!(percentile > 50 && percentile <= 100)) throw new QuantSharpException($"percentile {percentile} is outside (50, 100]");
        Percentile = percentile;
    }

    public double Percentile { get; }

    public override (double Min, double Max) ComputeRange(QuantScheme scheme)
    {
        if (Histogram.Count == 0) return (0, 0);
        double p = Percentile / 100;
        if (scheme.Symmetric || scheme.Code != QuantCode.Uniform) return SymmetricClip(Histogram.AbsQuantile(p));
        return (Histogram.Quantile(1 - p), Histogram.Quantile(p));
    }

    public override void Merge(IObserver other)
    {
        if (other is PercentileObserver o && o.Percentile != Percentile)
            throw new QuantSharpException($"cannot merge percentile observers of {Percentile} and {o.Percentile}");
        base.Merge(other);
    }
}
