using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using QuantSharp.Data;
using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Cli.Commands;

/// <summary>
/// `quantsharp eval MODEL --data SPEC`: runs a model over a dataset in batches; reports top-1 accuracy (for
/// labelled data), latency per batch and throughput.
/// </summary>
public sealed class EvalCommand : Command
{
    public override string Name => "eval";
    public override string Summary => "measure top-1 accuracy, latency and throughput of a model on a dataset";
    public override string Usage =>
        "eval MODEL --data SPEC [--scale S] [--mean M[,M..]] [--std S[,S..]] [--layout nchw|nhwc] [--order rgb|bgr]\n" +
        "                  [--limit N] [--batch B] [--threads T] [--json]";
    public override string Details =>
        "Dataset specs (SCHEME:ARGUMENT): mnist:DIR[:train], fashion-mnist:test|train, idx:IMAGES[,LABELS],\n" +
        "npz:FILE[:INPUT[,LABEL]], pb:DIR, cifar10:FILE|DIR[:train], images:DIR|FILE.png.\n" +
        "Images (0..255) become y = (x*scale - mean[c]) / std[c] in the model's channel order, resized to the model's\n" +
        "input size; --scale takes fractions such as 1/255. Accuracy compares the argmax of the first output with the\n" +
        "label. A model whose batch dimension is fixed at 1 runs batch 1 whatever --batch says. Latency is per batch of\n" +
        "model execution only (after one warm-up batch); throughput is samples per second of model execution.";

    public override IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("--data", "-d", true, false, "dataset spec, e.g. mnist:../shared/data/mnist", "SPEC"),
        new("--scale", null, true, false, "multiply pixel values first (e.g. 1/255; default 1)", "S"),
        new("--mean", null, true, false, "subtract after scaling: one value or one per channel", "M[,M..]"),
        new("--std", null, true, false, "divide after the mean: one value or one per channel", "S[,S..]"),
        new("--layout", null, true, false, "model image layout: nchw (default) or nhwc", "nchw|nhwc"),
        new("--order", null, true, false, "model channel order: rgb (default) or bgr", "rgb|bgr"),
        new("--limit", "-n", true, false, "evaluate only the first N samples", "N"),
        new("--batch", "-b", true, false, "samples per batch (default 1)", "B"),
        new("--threads", "-t", true, false, "threads per operator (default: all cores)", "T"),
        new("--json", null, false, false, "print one JSON object with the results"),
        new("--no-progress", null, false, false, "never draw the progress bar"),
    ];

    public override int Execute(CliArguments args, CliContext ctx)
    {
        string modelPath = args.SinglePositional("MODEL file");
        string spec = args.Value("--data") ?? throw new UsageException("'eval' needs --data SPEC (see 'quantsharp eval --help')");
        int limit = args.Int("--limit", int.MaxValue, 1, int.MaxValue);
        int batch = args.Int("--batch", 1, 1, 1 << 20);
        int threads = args.Int("--threads", Environment.ProcessorCount, 1, 1024);
        var (pre, layout) = QuantizeSupport.ParsePreprocessingFlags(args);
        bool json = args.Flag("--json");

        var model = ModelFiles.Load(modelPath);
        var dataset = DatasetSpec.Open(spec);
        if (dataset.Count == 0) throw new QuantSharpException($"dataset '{spec}' has no samples");
        using var session = new InferenceSession(model, new SessionOptions { IntraOpThreads = threads });
        var notes = new List<string>();

        var inputs = session.Inputs;
        if (inputs.Count == 0) throw new QuantSharpException($"model '{modelPath}' has no inputs to feed");
        if (inputs.Count > 1 && dataset is not IMultiInputDataset)
            throw new QuantSharpException($"model has {inputs.Count} inputs ({string.Join(", ", inputs.Select(v => v.Name))}); dataset '{spec}' gives one");
        var input = inputs[0];
        var dims = input.Type?.Shape;
        if (dims is { Length: > 0 } && dims[0].Value is long fixedBatch && fixedBatch > 0 && fixedBatch != batch && dataset.Kind != SampleKind.Batched)
        {
            notes.Add($"the model's batch dimension is fixed at {fixedBatch}, so batch {fixedBatch} is used (not {batch})");
            batch = (int)fixedBatch;
        }
        if (dataset.Kind == SampleKind.Batched && batch != 1)
        {
            notes.Add("the dataset's samples already carry the batch dimension, so each is run on its own");
            batch = 1;
        }

        if (dataset.Kind == SampleKind.Image)
        {
            var shape = dims?.Select(d => d.Value is long v && v <= int.MaxValue ? (int)v : -1).ToArray()
                ?? throw new QuantSharpException($"model input '{input.Name}' has no declared shape, so the image size is unknown");
            pre = pre.ForInputShape(shape, layout ?? GuessLayout(shape));
        }
        else if (layout is not null) notes.Add($"--layout applies to image datasets only; '{spec}' holds tensors");
        if (input.Type is { } t && DataTypes.IsFloatingPoint(t.ElementType) && t.ElementType != DataType.BFloat16)
            pre = pre with { OutputType = t.ElementType };
        pre.Validate();
        bool transform = dataset.Kind == SampleKind.Image || !pre.IsIdentityTransform ||
            (input.Type is { } it && DataTypes.IsFloatingPoint(it.ElementType));

        foreach (var n in notes) ctx.Error.WriteLine($"quantsharp: note: {n}");

        int total = Math.Min(dataset.Count, limit);
        var stats = Evaluate(session, dataset, pre, transform, batch, total, ctx, showProgress: ctx.ErrorIsTerminal && !args.Flag("--no-progress"));
        var result = new EvalResult(modelPath, spec, stats, batch, threads, notes);
        if (json) result.WriteJson(ctx.Out);
        else result.WriteText(ctx.Out);
        return Program.ExitOk;
    }

    /// <summary>NHWC when the last dimension looks like channels and the second does not; else NCHW (ONNX's convention).</summary>
    private static ImageLayout GuessLayout(int[] shape) =>
        shape.Length == 4 && shape[1] is not (1 or 3 or 4) && shape[3] is 1 or 3 or 4 ? ImageLayout.NHWC : ImageLayout.NCHW;

    private static EvalStats Evaluate(InferenceSession session, IDataset dataset, ImagePreprocessing pre, bool transform,
        int batch, int total, CliContext ctx, bool showProgress)
    {
        var stats = new EvalStats();
        var outputName = session.Outputs[0].Name;
        var inputNames = session.Inputs.Select(v => v.Name).ToList();
        using var progress = showProgress ? new ProgressBar(ctx.Error, total) : null;
        var wall = Stopwatch.StartNew();
        bool warmedUp = false;
        foreach (var b in Batcher.Batches(dataset, batch, transform ? pre : null, total))
        {
            var feeds = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            if (b.InputNames is { } names)
                for (int k = 0; k < names.Count; k++) feeds[names[k]] = b.Inputs[k];
            else feeds[inputNames[0]] = ToModelType(b.Input, session.Inputs[0]);

            // One untimed run first: it pays for JIT compilation and the pool's first allocations.
            if (!warmedUp && total > batch) session.Run(feeds);
            warmedUp = true;
            long t0 = Stopwatch.GetTimestamp();
            var outputs = session.Run(feeds);
            stats.BatchSeconds.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
            stats.Samples += b.Size;
            Score(outputs[outputName], b, outputName, stats);
            progress?.Report(stats.Samples);
        }
        stats.WallSeconds = wall.Elapsed.TotalSeconds;
        return stats;
    }

    /// <summary>
    /// Integer tensor data (e.g. uint8 pixels in an .npz) for a floating-point input is converted value by value;
    /// everything else is passed as it is and checked by the session.
    /// </summary>
    private static Tensor ToModelType(Tensor t, Value input)
    {
        if (input.Type is not { } type || !DataTypes.IsInteger(t.DataType)) return t;
        switch (type.ElementType)
        {
            case DataType.Float:
            {
                var f = new float[t.Length];
                for (int i = 0; i < f.Length; i++) f[i] = (float)t.GetDouble(i);
                return new Tensor<float>(f, t.Shape);
            }
            case DataType.Float16:
            {
                var h = new Half[t.Length];
                for (int i = 0; i < h.Length; i++) h[i] = (Half)t.GetDouble(i);
                return new Tensor<Half>(h, t.Shape);
            }
            case DataType.Double:
            {
                var d = new double[t.Length];
                for (int i = 0; i < d.Length; i++) d[i] = t.GetDouble(i);
                return new Tensor<double>(d, t.Shape);
            }
            default:
                return t;
        }
    }

    /// <summary>Top-1: the argmax of each sample's row of the first output (shape [B, …]) against its label.</summary>
    private static void Score(Tensor output, Batch b, string outputName, EvalStats stats)
    {
        bool labelled = b.Labels.Any(l => l is not null);
        if (!labelled && stats.Predictions.Count >= EvalStats.MaxPredictions) return;
        if (output.Length == 0 || output.Length % b.Size != 0 || (output.Rank > 0 && output.Shape[0] != b.Size && b.Size > 1))
            throw new QuantSharpException($"output '{outputName}' {output} does not have one row per sample of a batch of {b.Size}");
        int per = output.Length / b.Size;
        for (int i = 0; i < b.Size; i++)
        {
            int best = 0;
            double bestV = double.NegativeInfinity;
            for (int j = 0; j < per; j++)
            {
                double v = output.GetDouble(i * per + j);
                if (v > bestV) { bestV = v; best = j; }
            }
            if (stats.Predictions.Count < EvalStats.MaxPredictions) stats.Predictions.Add((best, bestV));
            if (b.Labels[i] is not int label) continue;
            stats.Labelled++;
            if (best == label) stats.Correct++;
        }
    }
}

/// <summary>Counts and timings gathered during an evaluation.</summary>
internal sealed class EvalStats
{
    public int Samples, Labelled, Correct;
    public List<double> BatchSeconds { get; } = [];

    /// <summary>Top-1 class and score of the first samples (shown for unlabelled data).</summary>
    public List<(int Class, double Score)> Predictions { get; } = [];
    public const int MaxPredictions = 20;
    public double WallSeconds;

    public double? Accuracy => Labelled == 0 ? null : (double)Correct / Labelled;

    /// <summary>Percentile by linear interpolation between closest ranks (NumPy's default), in milliseconds.</summary>
    public double PercentileMs(double p)
    {
        if (BatchSeconds.Count == 0) return 0;
        var s = BatchSeconds.Order().ToArray();
        double rank = p / 100 * (s.Length - 1);
        int lo = (int)Math.Floor(rank), hi = (int)Math.Ceiling(rank);
        return 1000 * (s[lo] + (s[hi] - s[lo]) * (rank - lo));
    }

    public double ThroughputPerSecond => BatchSeconds.Sum() is double t && t > 0 ? Samples / t : 0;
}

internal sealed record EvalResult(string Model, string Data, EvalStats Stats, int Batch, int Threads, IReadOnlyList<string> Notes)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public void WriteText(TextWriter w)
    {
        w.WriteLine($"model:       {Model}");
        w.WriteLine($"data:        {Data} ({Stats.Samples} samples)");
        w.WriteLine($"batch:       {Batch}, threads {Threads}");
        if (Stats.Accuracy is double a)
            w.WriteLine($"accuracy:    {(a * 100).ToString("0.00", Inv)} % top-1 ({Stats.Correct}/{Stats.Labelled})");
        else
        {
            w.WriteLine("accuracy:    (no labels)");
            for (int i = 0; i < Stats.Predictions.Count; i++)
                w.WriteLine($"  sample {i}: class {Stats.Predictions[i].Class} (score {Stats.Predictions[i].Score.ToString("G4", Inv)})");
            if (Stats.Samples > Stats.Predictions.Count) w.WriteLine($"  … top-1 of the first {Stats.Predictions.Count} samples shown");
        }
        w.WriteLine($"latency:     p50 {Stats.PercentileMs(50).ToString("0.000", Inv)} ms, p90 {Stats.PercentileMs(90).ToString("0.000", Inv)} ms per batch");
        w.WriteLine($"throughput:  {Stats.ThroughputPerSecond.ToString("0.0", Inv)} samples/s ({Stats.WallSeconds.ToString("0.00", Inv)} s in all)");
    }

    public void WriteJson(TextWriter w)
    {
        using var ms = new MemoryStream();
        using (var j = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = false }))
        {
            j.WriteStartObject();
            j.WriteString("model", Model);
            j.WriteString("data", Data);
            j.WriteNumber("samples", Stats.Samples);
            j.WriteNumber("labelled", Stats.Labelled);
            j.WriteNumber("correct", Stats.Correct);
            if (Stats.Accuracy is double a)
            {
                j.WriteNumber("accuracy", a);
                j.WriteNumber("accuracy_percent", Math.Round(a * 100, 4));
            }
            else
            {
                j.WriteNull("accuracy");
                j.WriteNull("accuracy_percent");
            }
            j.WriteNumber("latency_ms_p50", Math.Round(Stats.PercentileMs(50), 4));
            j.WriteNumber("latency_ms_p90", Math.Round(Stats.PercentileMs(90), 4));
            j.WriteNumber("throughput_per_s", Math.Round(Stats.ThroughputPerSecond, 2));
            j.WriteNumber("batch", Batch);
            j.WriteNumber("batches", Stats.BatchSeconds.Count);
            j.WriteNumber("threads", Threads);
            j.WriteNumber("wall_s", Math.Round(Stats.WallSeconds, 3));
            j.WriteStartArray("top1_first");
            foreach (var (c, _) in Stats.Predictions) j.WriteNumberValue(c);
            j.WriteEndArray();
            j.WriteStartArray("notes");
            foreach (var n in Notes) j.WriteStringValue(n);
            j.WriteEndArray();
            j.WriteEndObject();
        }
        w.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
    }
}
