using System.Diagnostics;
using System.Globalization;
using QuantSharp.Data;
using QuantSharp.Graph;
using QuantSharp.Quantization.Math;
using QuantSharp.Quantization.Observers;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Quantization.Calibration;

/// <summary>How activation ranges are derived from the calibration data.</summary>
public enum CalibratorKind
{
    /// <summary>Running min and max (ONNX Runtime's default).</summary>
    MinMax,
    /// <summary>Exponential moving average of per-batch min and max.</summary>
    Ema,
    /// <summary>Clip at a percentile of the streamed histogram.</summary>
    Percentile,
    /// <summary>KL-divergence threshold (TensorRT's entropy calibration).</summary>
    Entropy,
    /// <summary>Range minimising the expected squared quantization error.</summary>
    Mse,
}

/// <summary>Calibrator choice and its parameter, e.g. "percentile:99.99".</summary>
public sealed record CalibratorSpec(CalibratorKind Kind, double Percentile = 99.99, double AveragingConstant = 0.01)
{
    public static CalibratorSpec MinMax { get; } = new(CalibratorKind.MinMax);

    /// <summary>Parses minmax | ema[:C] | percentile[:P] | entropy | mse.</summary>
    public static CalibratorSpec Parse(string text)
    {
        var parts = text.Trim().ToLowerInvariant().Split(':', 2);
        double? arg = null;
        if (parts.Length == 2)
        {
            if (!double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double a))
                throw new QuantSharpException($"calibrator '{text}': '{parts[1]}' is not a number");
            arg = a;
        }
        var spec = parts[0] switch
        {
            "minmax" => new CalibratorSpec(CalibratorKind.MinMax),
            "ema" => new CalibratorSpec(CalibratorKind.Ema, AveragingConstant: arg ?? 0.01),
            "percentile" => new CalibratorSpec(CalibratorKind.Percentile, Percentile: arg ?? 99.99),
            "entropy" => new CalibratorSpec(CalibratorKind.Entropy),
            "mse" => new CalibratorSpec(CalibratorKind.Mse),
            _ => throw new QuantSharpException($"unknown calibrator '{text}' (expected minmax, ema[:C], percentile[:P], entropy or mse)"),
        };
        if (arg is not null && spec.Kind is CalibratorKind.MinMax or CalibratorKind.Entropy or CalibratorKind.Mse)
            throw new QuantSharpException($"calibrator '{parts[0]}' takes no parameter");
        // Validate the parameter now (the observer constructors check their ranges).
        spec.CreateObserver();
        return spec;
    }

    /// <summary>A fresh observer of this kind.</summary>
    public IObserver CreateObserver() => Kind switch
    {
        CalibratorKind.MinMax => new MinMaxObserver(),
        CalibratorKind.Ema => new MovingAverageMinMaxObserver(AveragingConstant),
        CalibratorKind.Percentile => new PercentileObserver(Percentile),
        CalibratorKind.Entropy => new EntropyObserver(),
        _ => new MseObserver(),
    };

    public override string ToString() => Kind switch
    {
        CalibratorKind.Percentile => "percentile:" + Percentile.ToString(CultureInfo.InvariantCulture),
        CalibratorKind.Ema => "ema:" + AveragingConstant.ToString(CultureInfo.InvariantCulture),
        _ => Kind.ToString().ToLowerInvariant(),
    };
}

/// <summary>Progress of a calibration run: samples done out of the total.</summary>
public readonly record struct CalibrationProgress(int SamplesDone, int SamplesTotal);

/// <summary>Options of a calibration run.</summary>
public sealed record CalibrationOptions
{
    public CalibratorSpec Calibrator { get; init; } = CalibratorSpec.MinMax;
    /// <summary>Calibration samples taken from the start of the data set (ONNX Runtime users typically take a few hundred).</summary>
    public int Samples { get; init; } = 512;
    public int BatchSize { get; init; } = 32;
    public int IntraOpThreads { get; init; } = Environment.ProcessorCount;
    /// <summary>Called after every batch.</summary>
    public Action<CalibrationProgress>? Progress { get; init; }

    public void Validate()
    {
        if (Samples < 1) throw new QuantSharpException($"calibration needs at least one sample, got {Samples}");
        if (BatchSize < 1) throw new QuantSharpException($"calibration batch size must be positive, got {BatchSize}");
    }
}

/// <summary>The observers of one calibration run, by tensor name.</summary>
public sealed class CalibrationResult
{
    internal CalibrationResult(Dictionary<string, IObserver> observers, int samples, int batches, double seconds)
    {
        Observers = observers;
        Samples = samples;
        Batches = batches;
        Seconds = seconds;
    }

    public IReadOnlyDictionary<string, IObserver> Observers { get; }
    public int Samples { get; }
    public int Batches { get; }
    public double Seconds { get; }

    /// <summary>The recommended clipping range of a tensor for a scheme.</summary>
    public (double Min, double Max) Range(string tensor, QuantScheme scheme) =>
        Observers.TryGetValue(tensor, out var o) ? o.ComputeRange(scheme)
            : throw new QuantSharpException($"tensor '{tensor}' was not calibrated");

    public bool Has(string tensor) => Observers.ContainsKey(tensor);
}

/// <summary>
/// Runs an FP32 model on calibration batches and feeds every requested tensor to its observer through
/// <see cref="SessionOptions.ValueObserver"/>, so the graph is not rewritten to expose outputs. Memory is bounded:
/// each observer keeps a running min/max or a fixed-size histogram, whatever the number of samples.
/// </summary>
public static class Calibrator
{
    /// <summary>Calibrates <paramref name="tensors"/> (float tensors of the model by name) on the given input batches.</summary>
    public static CalibrationResult Calibrate(Model model, IEnumerable<IReadOnlyDictionary<string, Tensor>> batches,
        IReadOnlyCollection<string> tensors, CalibrationOptions options, int samplesTotal)
    {
        options.Validate();
        var wanted = new HashSet<string>(tensors, StringComparer.Ordinal);
        foreach (var t in wanted)
            if (model.Graph.FindValue(t) is null) throw new QuantSharpException($"tensor '{t}' to calibrate is not in the model");
        var observers = new Dictionary<string, IObserver>(StringComparer.Ordinal);
        foreach (var t in wanted) observers[t] = options.Calibrator.CreateObserver();
        var sw = Stopwatch.StartNew();
        var sessionOptions = new SessionOptions
        {
            IntraOpThreads = options.IntraOpThreads,
            ValueObserver = (v, t) =>
            {
                if (!observers.TryGetValue(v.Name, out var o)) return;
                if (t is not Tensor<float> f)
                    throw new QuantSharpException($"tensor '{v.Name}' to calibrate is {DataTypes.Name(t.DataType)}, not float");
                o.Observe(f.Data);
            },
        };
        using var session = new InferenceSession(model, sessionOptions);
        int done = 0, count = 0;
        foreach (var feeds in batches)
        {
            session.Run(feeds);
            int n = feeds.Values.First() is { Rank: > 0 } first ? first.Shape[0] : 1;
            done += n;
            count++;
            options.Progress?.Invoke(new CalibrationProgress(System.Math.Min(done, samplesTotal), samplesTotal));
        }
        if (count == 0) throw new QuantSharpException("calibration data gave no batches");
        return new CalibrationResult(observers, done, count, sw.Elapsed.TotalSeconds);
    }

    /// <summary>Calibrates on the first <see cref="CalibrationOptions.Samples"/> samples of a data set, batched and preprocessed.</summary>
    public static CalibrationResult Calibrate(Model model, IDataset dataset, ImagePreprocessing? preprocessing,
        IReadOnlyCollection<string> tensors, CalibrationOptions options)
    {
        options.Validate();
        if (dataset.Count == 0) throw new QuantSharpException($"calibration data set '{dataset.Name}' has no samples");
        int total = System.Math.Min(options.Samples, dataset.Count);
        var inputs = model.Graph.RuntimeInputs.ToList();
        var feeds = Batcher.Batches(dataset, options.BatchSize, preprocessing, total).Select(b =>
        {
            var d = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            if (b.InputNames is { } names)
                for (int k = 0; k < names.Count; k++) d[names[k]] = b.Inputs[k];
            else
            {
                if (inputs.Count != 1)
                    throw new QuantSharpException($"model has {inputs.Count} inputs but calibration data set '{dataset.Name}' gives one");
                d[inputs[0].Name] = b.Input;
            }
            return (IReadOnlyDictionary<string, Tensor>)d;
        });
        return Calibrate(model, feeds, tensors, options, total);
    }
}
