using System.Text.Json;
using QuantSharp.Data;
using QuantSharp.Onnx;
using QuantSharp.Quantization.Calibration;
using QuantSharp.Quantization.Quantizers;
using QuantSharp.Tensors;

namespace QuantSharp.Cli.Commands;

/// <summary>`quantsharp quantize MODEL -o OUT`: post-training quantization (static QDQ, dynamic or weight-only).</summary>
public sealed class QuantizeCommand : Command
{
    public override string Name => "quantize";
    public override string Summary => "quantize a float ONNX model (static QDQ with calibration, dynamic, or weight-only)";
    public override string Usage =>
        "quantize MODEL -o OUT [--mode static|dynamic|weight-only] [--calib SPEC] [--samples N]\n" +
        "                  [--calibrator minmax|ema|percentile:99.99|entropy|mse] [--weights int8|uint8|int4|uint4]\n" +
        "                  [--activations uint8|int8|int16] [--per-channel|--per-tensor] [--block 32] [--exclude PATTERN]\n" +
        "                  [--scale S] [--mean M] [--std S] [--json]";
    public override string Details =>
        "Static mode needs --calib SPEC (the dataset specs of 'eval') and the model's preprocessing flags; it folds\n" +
        "BatchNormalization into Conv, calibrates activations on the first --samples samples (default 512) and writes\n" +
        "QuantizeLinear/DequantizeLinear pairs as ONNX Runtime expects (uint8 activations, int8 per-channel weights,\n" +
        "int32 biases). Dynamic mode quantizes MatMul/Gemm weights and the activations at run time (MatMulInteger).\n" +
        "Weight-only mode stores Conv/Gemm/MatMul weights as int8/int4 (blocks of --block along the reduction axis,\n" +
        "0 for per-channel) with DequantizeLinear, or --format matmulnbits for com.microsoft MatMulNBits; 4-bit\n" +
        "weights keep float16 scales (a Cast to float follows the DequantizeLinear) unless --scale-type float.\n" +
        "Values and nodes the quantizer adds get short names (--names descriptive for readable ones).\n" +
        "Patterns for --exclude/--include match node names with * and ?, or re:REGEX.";

    public override IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("--output", "-o", true, false, "where to write the quantized model", "OUT"),
        new("--mode", "-m", true, false, "static (default), dynamic or weight-only", "MODE"),
        new("--calib", null, true, false, "calibration dataset spec (static mode)", "SPEC"),
        new("--samples", null, true, false, "calibration samples (default 512)", "N"),
        new("--calibrator", null, true, false, "minmax (default), ema[:C], percentile[:P], entropy or mse", "KIND"),
        new("--weights", null, true, false, "weight type: int8 (default), uint8, int4, uint4", "TYPE"),
        new("--activations", null, true, false, "activation type: uint8 (default), int8, int16", "TYPE"),
        new("--symmetric-activations", null, false, false, "symmetric activation ranges"),
        new("--asymmetric-weights", null, false, false, "asymmetric weight ranges"),
        new("--per-channel", null, false, false, "per-channel weight scales (default)"),
        new("--per-tensor", null, false, false, "one scale per weight tensor"),
        new("--block", null, true, false, "weight-only block size along the reduction axis (default 32; 0 = per channel)", "B"),
        new("--format", null, true, false, "weight-only output: dq (default) or matmulnbits", "FORMAT"),
        new("--scale-type", null, true, false, "weight-only scale type: float16 (default for int4/uint4, then a Cast follows) or float", "TYPE"),
        new("--names", null, true, false, "short (default: short names for what the quantizer adds), descriptive, or minimal (every internal value renamed)", "STYLE"),
        new("--op-types", null, true, false, "comma-separated op types to quantize", "OPS"),
        new("--exclude", null, true, true, "leave nodes whose name matches float (repeatable)", "PATTERN"),
        new("--include", null, true, true, "quantize only nodes whose name matches (repeatable)", "PATTERN"),
        new("--no-fold-bn", null, false, false, "do not fold BatchNormalization into Conv"),
        .. QuantizeSupport.PreprocessingOptions,
        new("--batch", "-b", true, false, "calibration batch size (default 32)", "B"),
        new("--threads", "-t", true, false, "threads per operator (default: all cores)", "T"),
        new("--json", null, false, false, "print one JSON object with the summary"),
        new("--no-progress", null, false, false, "never draw the progress bar"),
    ];

    public override int Execute(CliArguments args, CliContext ctx)
    {
        string modelPath = args.SinglePositional("a MODEL file");
        string output = args.Value("--output") ?? throw new UsageException("'quantize' needs -o OUT (see 'quantsharp quantize --help')");
        var mode = (args.Value("--mode") ?? "static").ToLowerInvariant() switch
        {
            "static" => QuantizationMode.Static,
            "dynamic" => QuantizationMode.Dynamic,
            "weight-only" or "weightonly" or "weight_only" => QuantizationMode.WeightOnly,
            var o => throw new UsageException($"option --mode must be static, dynamic or weight-only, got '{o}'"),
        };
        if (args.Flag("--per-channel") && args.Flag("--per-tensor")) throw new UsageException("give --per-channel or --per-tensor, not both");
        var weights = ParseType("--weights", args.Value("--weights") ?? (mode == QuantizationMode.WeightOnly ? "int4" : "int8"),
            DataType.Int8, DataType.UInt8, DataType.Int4, DataType.UInt4);
        var activations = ParseType("--activations", args.Value("--activations") ?? "uint8", DataType.UInt8, DataType.Int8, DataType.Int16);
        int samples = args.Int("--samples", 512, 1, int.MaxValue);
        int batch = args.Int("--batch", 32, 1, 1 << 16);
        int threads = args.Int("--threads", Environment.ProcessorCount, 1, 1024);
        int block = args.Int("--block", 32, 0, 1 << 16);
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
        var format = (args.Value("--format") ?? "dq").ToLowerInvariant() switch
        {
            "dq" or "dequantizelinear" => WeightOnlyFormat.DequantizeLinear,
            "matmulnbits" => WeightOnlyFormat.MatMulNBits,
            var o => throw new UsageException($"option --format must be dq or matmulnbits, got '{o}'"),
        };
        DataType? scaleType = args.Value("--scale-type")?.ToLowerInvariant() switch
        {
            null => null,
            "float" or "float32" => DataType.Float,
            "float16" or "fp16" => DataType.Float16,
            var o => throw new UsageException($"option --scale-type must be float or float16, got '{o}'"),
        };
        var names = (args.Value("--names") ?? "short").ToLowerInvariant() switch
        {
            "short" => QuantizedNames.Short,
            "descriptive" => QuantizedNames.Descriptive,
            "minimal" => QuantizedNames.Minimal,
            var o => throw new UsageException($"option --names must be short, descriptive or minimal, got '{o}'"),
        };
        IReadOnlyCollection<string>? opTypes = args.Value("--op-types")?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

        var model = ModelFiles.Load(modelPath);
        QuantizationResult result;
        switch (mode)
        {
            case QuantizationMode.Static:
            {
                string spec = args.Value("--calib") ?? throw new UsageException("static quantization needs --calib SPEC (calibration data)");
                var dataset = DatasetSpec.Open(spec);
                var pre = QuantizeSupport.Preprocessing(args, model, dataset);
                int total = Math.Min(samples, dataset.Count);
                // A model whose batch dimension is fixed is calibrated at that batch size.
                if (model.Graph.RuntimeInputs.FirstOrDefault()?.Type?.Shape is { Length: > 0 } dims && dims[0].Value is long fixedBatch && fixedBatch > 0)
                    batch = (int)fixedBatch;
                using var progress = ctx.ErrorIsTerminal && !args.Flag("--no-progress") && !json ? new ProgressBar(ctx.Error, total) : null;
                var options = new StaticQuantizerOptions
                {
                    OpTypes = opTypes,
                    IncludeNodes = args.Values("--include"),
                    ExcludeNodes = args.Values("--exclude"),
                    WeightType = weights,
                    WeightSymmetric = !args.Flag("--asymmetric-weights"),
                    PerChannel = !args.Flag("--per-tensor"),
                    ActivationType = activations,
                    ActivationSymmetric = args.Flag("--symmetric-activations"),
                    FoldBatchNorm = !args.Flag("--no-fold-bn"),
                    Names = names,
                    Calibration = new CalibrationOptions
                    {
                        Calibrator = calibrator, Samples = samples, BatchSize = batch, IntraOpThreads = threads,
                        Progress = progress is null ? null : p => progress.Report(p.SamplesDone),
                    },
                };
                result = Quantizer.QuantizeStatic(model, dataset, pre, options);
                break;
            }
            case QuantizationMode.Dynamic:
                result = Quantizer.QuantizeDynamic(model, new DynamicQuantizerOptions
                {
                    OpTypes = opTypes, IncludeNodes = args.Values("--include"), ExcludeNodes = args.Values("--exclude"),
                    WeightType = weights, WeightSymmetric = !args.Flag("--asymmetric-weights"), PerChannel = !args.Flag("--per-tensor"),
                    Names = names,
                });
                break;
            default:
                result = Quantizer.QuantizeWeightOnly(model, new WeightOnlyQuantizerOptions
                {
                    OpTypes = opTypes, IncludeNodes = args.Values("--include"), ExcludeNodes = args.Values("--exclude"),
                    WeightType = weights, WeightSymmetric = !args.Flag("--asymmetric-weights"), PerChannel = !args.Flag("--per-tensor"),
                    BlockSize = block, Format = format, ScaleType = scaleType, Names = names,
                });
                break;
        }
        OnnxModelIO.Save(result.Model, output);
        var s = result.Summary;
        s.InputBytes = new FileInfo(modelPath).Length;
        s.OutputBytes = new FileInfo(output).Length;
        if (json)
        {
            using var ms = new MemoryStream();
            using (var j = new Utf8JsonWriter(ms))
            {
                j.WriteStartObject();
                j.WriteString("model", modelPath);
                j.WriteString("output", output);
                s.WriteJson(j);
                j.WriteEndObject();
            }
            ctx.Out.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
        }
        else
        {
            ctx.Out.WriteLine($"model:       {modelPath} → {output}");
            s.WriteText(ctx.Out);
        }
        return Program.ExitOk;
    }

    private static DataType ParseType(string option, string text, params DataType[] allowed)
    {
        var t = text.ToLowerInvariant() switch
        {
            "int8" => DataType.Int8,
            "uint8" => DataType.UInt8,
            "int4" => DataType.Int4,
            "uint4" => DataType.UInt4,
            "int16" => DataType.Int16,
            _ => DataType.Undefined,
        };
        if (!allowed.Contains(t))
            throw new UsageException($"option {option} must be one of {string.Join(", ", allowed.Select(DataTypes.Name))}, got '{text}'");
        return t;
    }
}
