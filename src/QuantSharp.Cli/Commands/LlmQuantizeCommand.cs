using System.Diagnostics;
using System.Text;
using System.Text.Json;
using QuantSharp.Llm;
using QuantSharp.Llm.Gguf;
using QuantSharp.Llm.Gpt2;
using QuantSharp.Llm.Quantization;

namespace QuantSharp.Cli.Commands;

/// <summary>
/// `quantsharp llm quantize MODEL -o OUT.gguf --type T --method rtn|gptq|awq|imatrix [--calib FILE] [--keep PATTERN=TYPE …]`:
/// quantizes a Llama (llama2.c, GGUF, Hugging Face) or GPT-2 (Hugging Face, GGUF) model's matrices and writes GGUF (ggml type ids where llama.cpp has the type, QuantSharp's
/// documented private ids otherwise; see QuantSharpTypes).
/// </summary>
internal static class LlmQuantizeCommand
{
    public static readonly string[] Methods = ["rtn", "gptq", "awq", "imatrix"];

    public static IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("--output", "-o", true, false, "quantize: output GGUF file", "FILE"),
        new("--method", null, true, false, "quantize: rtn (default), gptq, awq or imatrix", "M"),
        new("--calib", null, true, false, "quantize: UTF-8 calibration text (gptq, awq, imatrix)", "FILE"),
        new("--calib-ctx", null, true, false, "quantize: calibration window in tokens (default: min(seq_len, 512))", "N"),
        new("--calib-windows", null, true, false, "quantize: at most N calibration windows (default 64)", "N"),
        new("--keep", null, true, true, "quantize: per-tensor type override, repeatable (e.g. 'token_embd*=f32', 'output=q8_0')", "PATTERN=TYPE"),
        new("--no-default-keep", null, false, false, "quantize: also quantize token_embd/output to --type unless a --keep names them"),
    ];

    private static string ReadCalibration(string calibPath)
    {
        if (!File.Exists(calibPath)) throw new QuantSharpException($"{calibPath}: calibration text not found");
        try
        {
            return File.ReadAllText(calibPath, new UTF8Encoding(false, true));
        }
        catch (DecoderFallbackException)
        {
            throw new QuantSharpException($"{calibPath}: calibration text is not valid UTF-8");
        }
    }

    public static int Run(string model, CliArguments args, CliContext ctx)
    {
        string output = args.Value("--output") ?? throw new UsageException("'llm quantize' needs -o OUT.gguf");
        string type = args.Value("--type") ?? throw new UsageException($"'llm quantize' needs --type ({string.Join("|", MatrixQuantizers.Types.Skip(1))})");
        if (!MatrixQuantizers.Types.Contains(type)) throw new UsageException($"option --type: unknown type '{type}' (known: {string.Join(", ", MatrixQuantizers.Types)})");
        string methodName = args.Value("--method") ?? "rtn";
        if (!Methods.Contains(methodName)) throw new UsageException($"option --method: unknown method '{methodName}' (rtn, gptq, awq, imatrix)");
        var method = Enum.Parse<QuantMethod>(methodName, ignoreCase: true);
        string? calibPath = args.Value("--calib");
        if (method != QuantMethod.Rtn && calibPath is null) throw new UsageException($"--method {methodName} needs --calib FILE (any UTF-8 text)");
        var keep = args.Values("--keep").Select(KeepRule.Parse).ToList();
        int threads = args.Int("--threads", 0, 0, 1024);

        using var file = LlmCommand.Open(model, args, "f32");
        var tok = LlmCommand.Tokenizer(model, file);
        var sw = Stopwatch.StartNew();
        var options = new LlmQuantizeOptions { Type = type, Method = method, Keep = keep, DefaultKeep = !args.Flag("--no-default-keep"), Threads = threads };
        CalibrationData? calib = null;
        ICausalLmWeights quantized;
        IReadOnlyList<QuantizedTensor> report;
        IReadOnlyList<AwqSite> awqSites = [];
        switch (file.Weights)
        {
            case LlamaWeights w:
                if (calibPath is not null)
                {
                    string text = ReadCalibration(calibPath);
                    int cctx = args.Int("--calib-ctx", Math.Min(w.Config.SeqLen, 512), 16, w.Config.SeqLen);
                    var windows = Calibrator.Windows(text, tok, cctx, args.Int("--calib-windows", 64, 1, int.MaxValue));
                    calib = Calibrator.Collect(w, windows, threads);
                    if (ctx.Verbose) ctx.Error.WriteLine($"quantsharp: calibration: {calib.Tokens:N0} tokens in {calib.Windows} windows, {sw.Elapsed.TotalSeconds:F1} s");
                }
                var result = LlmQuantizer.Quantize(w, options, calib);
                (quantized, report, awqSites) = (result.Weights, result.Tensors, result.AwqSites);
                break;
            case Gpt2Weights g when method == QuantMethod.Rtn:
                (var gq, report) = Gpt2Quantizer.Quantize(g, options);
                quantized = gq;
                break;
            case Gpt2Weights g:
                {
                    string text = ReadCalibration(calibPath!);
                    int cctx = args.Int("--calib-ctx", Math.Min(g.Config.SeqLen, 512), 16, g.Config.SeqLen);
                    var windows = Calibrator.Windows(text, tok, cctx, args.Int("--calib-windows", 64, 1, int.MaxValue));
                    calib = Calibrator.Collect(g, windows, threads);
                    if (ctx.Verbose) ctx.Error.WriteLine($"quantsharp: calibration: {calib.Tokens:N0} tokens in {calib.Windows} windows, {sw.Elapsed.TotalSeconds:F1} s");
                    var gr = LlmQuantizer.Quantize(g, options, calib);
                    (quantized, report, awqSites) = (gr.Weights, gr.Tensors, gr.AwqSites);
                    break;
                }
            default:
                throw new QuantSharpException($"{model}: 'llm quantize' handles Llama and GPT-2 models, not {file.Weights.Architecture}");
        }
        var stored = QuantizedGguf.Write(quantized, tok, output, type, methodName);
        double secs = sw.Elapsed.TotalSeconds;
        long tensorBytes = stored.Sum(s => s.Bytes), pars = stored.Sum(s => s.Elements);
        long fileBytes = new FileInfo(output).Length;
        double bpw = tensorBytes * 8.0 / pars;

        if (args.Flag("--json"))
        {
            var ms = new MemoryStream();
            using (var jw = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
            {
                jw.WriteStartObject();
                jw.WriteString("model", model);
                jw.WriteString("output", output);
                jw.WriteString("type", type);
                jw.WriteString("method", methodName);
                if (calib is not null) jw.WriteNumber("calibration_tokens", calib.Tokens);
                jw.WriteStartArray("tensors");
                foreach (var s in stored)
                {
                    jw.WriteStartObject();
                    jw.WriteString("name", s.Name);
                    jw.WriteString("format", s.Format);
                    jw.WriteNumber("ggml_type", (uint)s.Type);
                    jw.WriteNumber("bytes", s.Bytes);
                    var rep = report.FirstOrDefault(t => t.Name + ".weight" == s.Name);
                    if (rep?.RelativeOutputError is double e) jw.WriteNumber("relative_output_error", e);
                    jw.WriteEndObject();
                }
                jw.WriteEndArray();
                jw.WriteStartArray("awq");
                foreach (var a in awqSites)
                {
                    jw.WriteStartObject();
                    jw.WriteString("input", a.Name);
                    jw.WriteNumber("alpha", a.Alpha);
                    jw.WriteNumber("error", a.Error);
                    jw.WriteNumber("rtn_error", a.RtnError);
                    jw.WriteEndObject();
                }
                jw.WriteEndArray();
                jw.WriteNumber("parameters", pars);
                jw.WriteNumber("tensor_bytes", tensorBytes);
                jw.WriteNumber("file_bytes", fileBytes);
                jw.WriteNumber("bits_per_weight", bpw);
                jw.WriteNumber("seconds", secs);
                jw.WriteEndObject();
            }
            ctx.Out.WriteLine(Encoding.UTF8.GetString(ms.ToArray()));
            return Program.ExitOk;
        }
        int nameW = Math.Max(4, stored.Max(s => s.Name.Length));
        ctx.Out.WriteLine($"{"name".PadRight(nameW)}  {"format",-12} {"ggml",5} {"bytes",10} {"bits/w",7}  rel. output error");
        foreach (var s in stored)
        {
            var rep = report.FirstOrDefault(t => t.Name + ".weight" == s.Name);
            string err = rep?.RelativeOutputError is double e ? e.ToString("G3", System.Globalization.CultureInfo.InvariantCulture) : "";
            ctx.Out.WriteLine($"{s.Name.PadRight(nameW)}  {s.Format,-12} {(uint)s.Type,5} {s.Bytes,10:N0} {s.Bytes * 8.0 / s.Elements,7:F3}  {err}");
        }
        foreach (var a in awqSites)
            ctx.Out.WriteLine($"awq {a.Name}: alpha {a.Alpha:F2}, calibration output error {a.Error:G4} (round to nearest: {a.RtnError:G4})");
        ctx.Out.WriteLine($"{output}: {type} by {methodName}, {pars:N0} parameters in {tensorBytes:N0} tensor bytes ({bpw:F3} bits per parameter, norms and partial blocks included), file {fileBytes:N0} bytes, {secs:F1} s");
        return Program.ExitOk;
    }
}
