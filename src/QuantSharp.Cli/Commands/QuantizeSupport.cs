using System.Diagnostics;
using QuantSharp.Data;
using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Cli.Commands;

/// <summary>Preprocessing, evaluation and example lookup shared by `quantize` and `demo`.</summary>
internal static class QuantizeSupport
{
    public static readonly OptionSpec[] PreprocessingOptions =
    [
        new("--scale", null, true, false, "multiply pixel values first (e.g. 1/255; default 1)", "S"),
        new("--mean", null, true, false, "subtract after scaling: one value or one per channel", "M[,M..]"),
        new("--std", null, true, false, "divide after the mean: one value or one per channel", "S[,S..]"),
        new("--layout", null, true, false, "model image layout: nchw (default) or nhwc", "nchw|nhwc"),
        new("--order", null, true, false, "model channel order: rgb (default) or bgr", "rgb|bgr"),
    ];

    /// <summary>The preprocessing flags as eval reads them, resolved against the model's first input.</summary>
    public static ImagePreprocessing Preprocessing(CliArguments args, Model model, IDataset dataset)
    {
        var (pre, layout) = ParsePreprocessingFlags(args);
        return Resolve(pre, model, dataset, layout);
    }

    /// <summary>
    /// --scale, --mean, --std and --order as an unresolved preprocessing record, and --layout (null when not given);
    /// shared by every command that takes the preprocessing flags.
    /// </summary>
    public static (ImagePreprocessing Pre, ImageLayout? Layout) ParsePreprocessingFlags(CliArguments args)
    {
        float scale = args.Value("--scale") is string s ? CliArguments.ParseNumber("--scale", s) : 1f;
        float[]? mean = args.Numbers("--mean");
        float[]? std = args.Numbers("--std");
        if (std is not null && std.Any(v => v == 0)) throw new UsageException("option --std must not contain 0");
        ImageLayout? layout = args.Value("--layout")?.ToLowerInvariant() switch
        {
            null => null,
            "nchw" => ImageLayout.NCHW,
            "nhwc" => ImageLayout.NHWC,
            var other => throw new UsageException($"option --layout must be nchw or nhwc, got '{other}'"),
        };
        var order = args.Value("--order")?.ToLowerInvariant() switch
        {
            null or "rgb" => ChannelOrder.RGB,
            "bgr" => ChannelOrder.BGR,
            var other => throw new UsageException($"option --order must be rgb or bgr, got '{other}'"),
        };
        return (new ImagePreprocessing { Scale = scale, Mean = mean, Std = std, ChannelOrder = order }, layout);
    }

    public static ImagePreprocessing Resolve(ImagePreprocessing pre, Model model, IDataset dataset, ImageLayout? layout = null)
    {
        var input = model.Graph.RuntimeInputs.FirstOrDefault() ?? throw new QuantSharpException("model has no inputs to feed");
        var dims = input.Type?.Shape;
        if (dataset.Kind == SampleKind.Image)
        {
            var shape = dims?.Select(d => d.Value is long v && v <= int.MaxValue ? (int)v : -1).ToArray()
                ?? throw new QuantSharpException($"model input '{input.Name}' has no declared shape, so the image size is unknown");
            bool nhwc = shape.Length == 4 && shape[1] is not (1 or 3 or 4) && shape[3] is 1 or 3 or 4;
            pre = pre.ForInputShape(shape, layout ?? (nhwc ? ImageLayout.NHWC : ImageLayout.NCHW));
        }
        if (input.Type is { } t && DataTypes.IsFloatingPoint(t.ElementType) && t.ElementType != DataType.BFloat16)
            pre = pre with { OutputType = t.ElementType };
        pre.Validate();
        return pre;
    }

    /// <summary>Top-1 accuracy over the first <paramref name="limit"/> samples and the median latency per batch (ms).</summary>
    public static (double Accuracy, int Samples, double MedianMs) Evaluate(Model model, IDataset dataset, ImagePreprocessing pre, int batch, int limit, Action<int>? progress = null)
    {
        using var session = new InferenceSession(model);
        string inName = session.Inputs[0].Name, outName = session.Outputs[0].Name;
        int correct = 0, labelled = 0, samples = 0;
        var times = new List<double>();
        bool warm = false;
        foreach (var b in Batcher.Batches(dataset, batch, pre, limit))
        {
            var feeds = new Dictionary<string, Tensor> { [inName] = b.Input };
            if (!warm) session.Run(feeds);
            warm = true;
            long t0 = Stopwatch.GetTimestamp();
            var y = session.Run(feeds)[outName];
            if (b.Size == batch) times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            int per = y.Length / b.Size;
            for (int i = 0; i < b.Size; i++)
            {
                if (b.Labels[i] is not int label) continue;
                int best = 0;
                double bv = double.NegativeInfinity;
                for (int j = 0; j < per; j++)
                {
                    double v = y.GetDouble(i * per + j);
                    if (v > bv) { bv = v; best = j; }
                }
                labelled++;
                if (best == label) correct++;
            }
            samples += b.Size;
            progress?.Invoke(samples);
        }
        times.Sort();
        double median = times.Count == 0 ? 0 : times[times.Count / 2];
        return (labelled == 0 ? double.NaN : (double)correct / labelled, samples, median);
    }

    /// <summary>
    /// The repository's examples folder: found by walking up from the current directory, then from the
    /// executable's folder, to the directory holding QuantSharp.slnx.
    /// </summary>
    public static string FindExamples()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "QuantSharp.slnx")))
                {
                    var ex = Path.Combine(d.FullName, "examples");
                    if (Directory.Exists(Path.Combine(ex, "models"))) return ex;
                }
            }
        }
        throw new QuantSharpException(
            $"examples folder not found: run from inside the QuantSharp repository (no QuantSharp.slnx with examples/models above '{Directory.GetCurrentDirectory()}' or '{AppContext.BaseDirectory}')");
    }
}
