using System.Globalization;
using System.Text.Json;
using QuantSharp.Data;
using QuantSharp.Onnx;
using QuantSharp.Quantization.Calibration;
using QuantSharp.Quantization.Quantizers;

namespace QuantSharp.Cli.Commands;

/// <summary>
/// `quantsharp demo`: static INT8 quantization of the example Fashion-MNIST models, calibrated on the first
/// 512 images of examples/data/fmnist_calib_1000.npz, with FP32 vs INT8 accuracy, size and latency.
/// </summary>
public sealed class DemoCommand : Command
{
    private static readonly string[] Models = ["fmnist_cnn", "fmnist_mobilenet", "fmnist_vit"];

    public override string Name => "demo";
    public override string Summary => "quantize the example models (static INT8) and compare FP32 vs INT8 accuracy, size and latency";
    public override string Usage => "demo [--full] [--samples N] [--calibrator KIND] [--limit N] [--out DIR] [--models a,b] [--json]";
    public override string Details =>
        "Evaluates on examples/data/fmnist_eval_2000.npz, or with --full on the 10,000-image Fashion-MNIST test set\n" +
        "(needs /usr/share/datasets/fashion-mnist). Inputs are normalised as (p/255 - 0.2860)/0.3530. Latency is the\n" +
        "median time of one batch of 64 in QuantSharp's runtime (INT8 models are lowered to integer operators; see 'quantsharp bench').";

    public override IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("--full", null, false, false, "evaluate on the full Fashion-MNIST test set"),
        new("--samples", null, true, false, "calibration images (default 512)", "N"),
        new("--calibrator", null, true, false, "minmax (default), ema, percentile[:P], entropy or mse", "KIND"),
        new("--limit", "-n", true, false, "evaluate only the first N images", "N"),
        new("--out", null, true, false, "also write the quantized models to DIR", "DIR"),
        new("--models", null, true, false, "comma-separated subset of fmnist_cnn,fmnist_mobilenet,fmnist_vit", "LIST"),
        new("--threads", "-t", true, false, "threads per operator (default: all cores)", "T"),
        new("--json", null, false, false, "print one JSON object with the results"),
    ];

    public override int Execute(CliArguments args, CliContext ctx)
    {
        if (args.Positionals.Count > 0) throw new UsageException($"'demo' takes no arguments, got '{args.Positionals[0]}'");
        string examples = QuantizeSupport.FindExamples();
        int samples = args.Int("--samples", 512, 1, 1000);
        int limit = args.Int("--limit", int.MaxValue, 1, int.MaxValue);
        bool json = args.Flag("--json");
        CalibratorSpec calibrator;
        try
        {
            calibrator = CalibratorSpec.Parse(args.Value("--calibrator") ?? "minmax");
        }
        catch (QuantSharpException e)
        {
            throw new UsageException($"option --calibrator: {e.Message}");
        }
        var models = args.Value("--models")?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) ?? Models;
        foreach (var m in models)
            if (!Models.Contains(m)) throw new UsageException($"option --models: unknown model '{m}' (known: {string.Join(", ", Models)})");
        string evalSpec;
        if (args.Flag("--full"))
        {
            if (!Directory.Exists(TestSetDirectory))
                throw new QuantSharpException($"--full needs the Fashion-MNIST test set in {TestSetDirectory} (Debian package dataset-fashion-mnist)");
            evalSpec = "fashion-mnist:test";
        }
        else evalSpec = "npz:" + Path.Combine(examples, "data", "fmnist_eval_2000.npz");
        var calib = DatasetSpec.Open("npz:" + Path.Combine(examples, "data", "fmnist_calib_1000.npz"));
        var eval = DatasetSpec.Open(evalSpec);
        string? outDir = args.Value("--out");
        if (outDir is not null) Directory.CreateDirectory(outDir);
        var basePre = new ImagePreprocessing { Scale = 1f / 255, Mean = [0.2860f], Std = [0.3530f] };
        int total = Math.Min(limit, eval.Count);

        var rows = new List<Row>();
        foreach (var name in models)
        {
            string path = Path.Combine(examples, "models", name + ".onnx");
            var model = ModelFiles.Load(path);
            var pre = QuantizeSupport.Resolve(basePre, model, eval);
            if (!json) ctx.Error.WriteLine($"quantsharp: {name}: calibrating on {samples} images, evaluating on {total} …");
            var r = Quantizer.QuantizeStatic(model, calib, QuantizeSupport.Resolve(basePre, model, calib), new StaticQuantizerOptions
            {
                Calibration = new CalibrationOptions { Calibrator = calibrator, Samples = samples, BatchSize = 64 },
            });
            long qBytes = OnnxModelIO.ToBytes(r.Model).LongLength;
            if (outDir is not null) OnnxModelIO.Save(r.Model, Path.Combine(outDir, name + "_int8.onnx"));
            var fp = QuantizeSupport.Evaluate(model, eval, pre, 64, total);
            var q = QuantizeSupport.Evaluate(r.Model, eval, pre, 64, total);
            rows.Add(new Row(name, fp.Accuracy, q.Accuracy, new FileInfo(path).Length, qBytes, fp.MedianMs, q.MedianMs,
                r.Summary.QuantizedNodes, r.Summary.FloatNodes, r.Summary.Seconds));
        }

        var inv = CultureInfo.InvariantCulture;
        if (json)
        {
            using var ms = new MemoryStream();
            using (var j = new Utf8JsonWriter(ms))
            {
                j.WriteStartObject();
                j.WriteString("eval", evalSpec);
                j.WriteNumber("eval_samples", total);
                j.WriteNumber("calibration_samples", samples);
                j.WriteString("calibrator", calibrator.ToString());
                j.WriteStartArray("models");
                foreach (var r in rows)
                {
                    j.WriteStartObject();
                    j.WriteString("model", r.Name);
                    j.WriteNumber("fp32_accuracy", r.Fp32Acc);
                    j.WriteNumber("int8_accuracy", r.Int8Acc);
                    j.WriteNumber("fp32_bytes", r.Fp32Bytes);
                    j.WriteNumber("int8_bytes", r.Int8Bytes);
                    j.WriteNumber("fp32_ms_batch64", Math.Round(r.Fp32Ms, 3));
                    j.WriteNumber("int8_ms_batch64", Math.Round(r.Int8Ms, 3));
                    j.WriteNumber("quantized_nodes", r.Quantized);
                    j.WriteNumber("float_nodes", r.Float);
                    j.WriteNumber("quantize_s", Math.Round(r.Seconds, 3));
                    j.WriteEndObject();
                }
                j.WriteEndArray();
                j.WriteEndObject();
            }
            ctx.Out.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
            return Program.ExitOk;
        }
        var w = ctx.Out;
        w.WriteLine($"Static INT8 (uint8 activations, int8 per-channel weights, {calibrator} calibration on {samples} images); top-1 on {evalSpec} ({total} images)");
        w.WriteLine();
        w.WriteLine($"{"model",-18} {"FP32 acc",9} {"INT8 acc",9} {"Δ pts",7} {"FP32 bytes",11} {"INT8 bytes",11} {"size",6} {"FP32 ms",8} {"INT8 ms",8}");
        foreach (var r in rows)
            w.WriteLine(string.Format(inv, "{0,-18} {1,8:0.00}% {2,8:0.00}% {3,7:+0.00;-0.00;0.00} {4,11} {5,11} {6,5:0.0}% {7,8:0.0} {8,8:0.0}",
                r.Name, r.Fp32Acc * 100, r.Int8Acc * 100, (r.Int8Acc - r.Fp32Acc) * 100, r.Fp32Bytes, r.Int8Bytes,
                100.0 * r.Int8Bytes / r.Fp32Bytes, r.Fp32Ms, r.Int8Ms));
        w.WriteLine();
        w.WriteLine("Latency: median per batch of 64 in QuantSharp's runtime. PyTorch figures: examples/models/pytorch_results.json.");
        return Program.ExitOk;
    }

    private const string TestSetDirectory = "/usr/share/datasets/fashion-mnist";

    private sealed record Row(string Name, double Fp32Acc, double Int8Acc, long Fp32Bytes, long Int8Bytes, double Fp32Ms, double Int8Ms,
        int Quantized, int Float, double Seconds);
}
