using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using QuantSharp.Llm;
using QuantSharp.Llm.Formats;

namespace QuantSharp.Cli.Commands;

/// <summary>`quantsharp llm inspect|generate|perplexity MODEL …`: Llama and GPT-2 language models (llama2.c, GGUF, Hugging Face, synthetic).</summary>
public sealed class LlmCommand : Command
{
    public override string Name => "llm";
    public override string Summary => "language models (llama2.c, GGUF, Hugging Face Llama/GPT-2): inspect, generate text, measure perplexity";
    public override string Usage =>
        "llm inspect MODEL|--synthetic NAME [--type T] [--json]\n" +
        "       quantsharp llm generate --synthetic NAME [--type T] [-n N] [--prompt-ids IDS] [--threads N]\n" +
        "       quantsharp llm bench (MODEL | --synthetic NAME) [--type T] [--threads N] [--prompt-tokens P] [-n N] [--reps R] [--json]\n" +
        "       quantsharp llm generate MODEL [--tokenizer FILE] --prompt TEXT [-n N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--type T]\n" +
        "       quantsharp llm perplexity MODEL [--tokenizer FILE] --text FILE [--ctx N] [--type T] [--windows N] [--reference FP32MODEL] [--json]\n" +
        "       quantsharp llm quantize MODEL -o OUT.gguf --type T [--method rtn|gptq|awq|imatrix] [--calib FILE] [--keep PATTERN=TYPE ...]";
    public override string Details =>
        "MODEL is a llama2.c checkpoint (legacy or version-1 layout), a .gguf file (llama), or a Hugging Face directory\n" +
        "(config.json + *.safetensors, Llama or GPT-2), read through memory maps. --synthetic gpt2-124m instead builds random\n" +
        "weights of that model's exact shapes directly in --type (for footprint and speed measurements).\n" +
        "--tokenizer defaults to tokenizer.bin beside a llama2.c model, the GGUF's own vocabulary, or the directory's\n" +
        "tokenizer.json (or vocab.json + merges.txt). --type converts every weight matrix (embedding and\n" +
        $"classifier included; RMSNorm stays fp32) by round to nearest: {string.Join(", ", WeightFormats.Names)}.\n" +
        "perplexity without --ctx uses the stories260K reference protocol (paragraphs split on blank lines, each\n" +
        "[BOS]+BPE, concatenated, non-overlapping seq_len windows, tokens 1.. of each window scored); with --ctx N,\n" +
        "llama.cpp's protocol (whole text, N-token chunks starting with BOS, the second half scored). With a --type other\n" +
        "than f32 it also reports the FP32 perplexity, KL(fp32‖quantized) per token and the same-top-token rate.";

    public override IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("--tokenizer", null, true, false, "tokenizer.bin (llama2.c), tokenizer.json or vocab.json (Hugging Face)", "FILE"),
        new("--synthetic", null, true, false, "random weights of a known model's shapes instead of MODEL: " + string.Join("|", CausalLmLoader.SyntheticNames), "NAME"),
        new("--prompt", "-p", true, false, "generate: prompt text", "TEXT"),
        new("-n", null, true, false, "generate: tokens to generate (default 256)", "N"),
        new("--temperature", "-t", true, false, "generate: sampling temperature, 0 = greedy (default 0.8)", "T"),
        new("--top-k", null, true, false, "generate: keep the K most likely tokens (0 = all)", "K"),
        new("--top-p", null, true, false, "generate: nucleus probability mass (default 0.9)", "P"),
        new("--seed", null, true, false, "generate: random seed (default 42)", "S"),
        new("--text", null, true, false, "perplexity: UTF-8 text file", "FILE"),
        new("--ctx", null, true, false, "perplexity: llama.cpp protocol with N-token windows", "N"),
        new("--windows", null, true, false, "perplexity: score only the first N windows", "N"),
        new("--type", null, true, false, "weight format: " + string.Join("|", WeightFormats.Names), "TYPE"),
        new("--threads", null, true, false, "worker threads (default: all cores)", "N"),
        new("--prompt-ids", null, true, false, "generate/bench: prompt as comma-separated token ids (synthetic models have no tokenizer)", "IDS"),
        new("--prompt-tokens", null, true, false, "bench: prompt length for prompt processing (default 256)", "P"),
        new("--reps", null, true, false, "bench: repetitions, the best is reported (default 3)", "R"),
        new("--no-membw", null, false, false, "bench: skip the DRAM read-bandwidth measurement"),
        new("--no-kl", null, false, false, "perplexity: skip the FP32 comparison of a quantized model (half the work)"),
        new("--json", null, false, false, "print one JSON object (inspect, perplexity, quantize)"),
        new("--reference", null, true, false, "perplexity: FP32 model to compare against (KL divergence, same top token)", "FILE"),
        .. LlmQuantizeCommand.Options,
    ];

    public override int Execute(CliArguments args, CliContext ctx)
    {
        if (args.Positionals.Count == 0) throw new UsageException("'llm' needs a subcommand: inspect, generate or perplexity (see 'quantsharp llm --help')");
        string sub = args.Positionals[0];
        if (LlmBench.Handles(sub, args)) return LlmBench.Execute(sub, args, ctx);
        bool synthetic = args.Has("--synthetic");
        if (args.Positionals.Count != (synthetic ? 1 : 2))
            throw new UsageException(synthetic ? $"'llm {sub} --synthetic NAME' takes no MODEL argument" : $"'llm {sub}' takes one MODEL argument, got {args.Positionals.Count - 1}");
        string model = synthetic ? "synthetic:" + args.Value("--synthetic") : args.Positionals[1];
        return sub switch
        {
            "inspect" => Inspect(model, args, ctx),
            "generate" => Generate(model, args, ctx),
            "perplexity" => Perplexity(model, args, ctx),
            "quantize" => LlmQuantizeCommand.Run(model, args, ctx),
            _ => throw new UsageException($"unknown llm subcommand '{sub}' (inspect, generate, perplexity)"),
        };
    }

    internal static string TypeOf(CliArguments args)
    {
        string t = args.Value("--type") ?? "f32";
        if (!WeightFormats.Names.Contains(t)) throw new UsageException($"option --type: unknown type '{t}' (known: {string.Join(", ", WeightFormats.Names)})");
        return t;
    }

    private static ICausalLmWeights Convert(ICausalLmWeights w, string type) => type == "f32" ? w : w.MapMatrices(m => WeightFormats.Quantize(m, type));

    /// <summary>The model of MODEL or --synthetic (a synthetic model is built directly in <paramref name="type"/>).</summary>
    internal static LoadedCausalLm Open(string model, CliArguments args, string type)
    {
        if (args.Value("--synthetic") is { } name)
        {
            if (!CausalLmLoader.SyntheticNames.Contains(name))
                throw new UsageException($"option --synthetic: unknown model '{name}' (known: {string.Join(", ", CausalLmLoader.SyntheticNames)})");
            return CausalLmLoader.Synthetic(name, type);
        }
        if (args.Value("--tokenizer") is { } tp && !File.Exists(tp)) throw new QuantSharpException($"{tp}: tokenizer file not found");
        return CausalLmLoader.Open(model, args.Value("--tokenizer"));
    }

    /// <summary>The weights in <paramref name="type"/> (synthetic models already are).</summary>
    private static ICausalLmWeights Converted(LoadedCausalLm m, CliArguments args, string type) => args.Has("--synthetic") ? m.Weights : Convert(m.Weights, type);

    internal static ITextTokenizer Tokenizer(string model, LoadedCausalLm m) =>
        m.Tokenizer ?? throw new UsageException($"no --tokenizer given and none found with {model} (tokenizer.bin beside a llama2.c model, tokenizer.json in a Hugging Face directory)");

    private static float Number(CliArguments args, string name, float fallback, float min, float max)
    {
        var v = args.Value(name);
        if (v is null) return fallback;
        float f = CliArguments.ParseNumber(name, v);
        if (f < min || f > max) throw new UsageException($"option {name} must be in [{min}, {max}], got '{v}'");
        return f;
    }

    private static int Inspect(string model, CliArguments args, CliContext ctx)
    {
        string type = TypeOf(args);
        using var m = Open(model, args, type);
        var w = Converted(m, args, type);
        var table = w.TensorTable();
        long total = table.Sum(t => t.Bytes), pars = w.ParameterCount();
        if (args.Flag("--json"))
        {
            var ms = new MemoryStream();
            using (var jw = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
            {
                jw.WriteStartObject();
                jw.WriteString("path", model);
                jw.WriteString("format", m.Format);
                jw.WriteString("architecture", w.Architecture);
                if (m.Source is Llama2cCheckpoint ck) jw.WriteString("layout", ck.Layout.ToString());
                jw.WriteNumber("file_bytes", m.FileBytes);
                jw.WriteStartObject("config");
                foreach (var (key, value) in w.Hyperparameters)
                {
                    if (long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out long iv)) jw.WriteNumber(key, iv);
                    else if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double dv)) jw.WriteNumber(key, dv);
                    else jw.WriteString(key, value);
                }
                if (w is LlamaWeights lw) jw.WriteBoolean("shared_classifier", lw.Config.SharedClassifier);
                jw.WriteEndObject();
                jw.WriteString("type", type);
                jw.WriteStartArray("tensors");
                foreach (var t in table)
                {
                    jw.WriteStartObject();
                    jw.WriteString("name", t.Name);
                    jw.WriteStartArray("shape");
                    foreach (int d in t.Shape) jw.WriteNumberValue(d);
                    jw.WriteEndArray();
                    jw.WriteString("type", t.Type);
                    jw.WriteNumber("bytes", t.Bytes);
                    jw.WriteEndObject();
                }
                jw.WriteEndArray();
                jw.WriteNumber("parameters", pars);
                jw.WriteNumber("bytes", total);
                jw.WriteNumber("bits_per_weight", total * 8.0 / pars);
                jw.WriteEndObject();
            }
            ctx.Out.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
            return Program.ExitOk;
        }
        ctx.Out.WriteLine(m.FileBytes > 0 ? $"{model}: {m.Format}, {m.FileBytes:N0} bytes" : $"{model}: {m.Format}");
        ctx.Out.WriteLine($"{w.Architecture}: " + string.Join(" ", w.Hyperparameters.Select(h => $"{h.Key}={h.Value}")));
        ctx.Out.WriteLine();
        int nameW = Math.Max(4, table.Max(t => t.Name.Length));
        ctx.Out.WriteLine($"{"name".PadRight(nameW)}  {"shape",-12} {"type",-12} {"bytes",14}");
        foreach (var t in table)
            ctx.Out.WriteLine($"{t.Name.PadRight(nameW)}  {"[" + string.Join(",", t.Shape) + "]",-12} {t.Type,-12} {t.Bytes,14:N0}");
        ctx.Out.WriteLine();
        ctx.Out.WriteLine($"total: {table.Count} tensors, {pars:N0} parameters, {total:N0} bytes ({total / 1e6:F2} MB, {total / 1048576.0:F2} MiB), {total * 8.0 / pars:F3} bits per parameter");
        return Program.ExitOk;
    }

    private static int Generate(string model, CliArguments args, CliContext ctx)
    {
        string prompt = args.Value("--prompt") ?? "";
        int n = args.Int("-n", 256, 0, 1 << 20);
        float temperature = Number(args, "--temperature", 0.8f, 0f, 100f);
        int topK = args.Int("--top-k", 0, 0, int.MaxValue);
        float topP = Number(args, "--top-p", 0.9f, 1e-6f, 1f);
        var seedText = args.Value("--seed");
        ulong seed = 42;
        if (seedText is not null && !ulong.TryParse(seedText, NumberStyles.Integer, CultureInfo.InvariantCulture, out seed))
            throw new UsageException($"option --seed must be a non-negative integer, got '{seedText}'");
        string type = TypeOf(args);
        using var m = Open(model, args, type);
        var tok = Tokenizer(model, m);
        var dec = Converted(m, args, type).CreateDecoder(args.Int("--threads", 0, 0, 1024));
        var sw = Stopwatch.StartNew();
        int pieces = 0;
        foreach (var piece in Generator.GenerateText(dec, tok, prompt, n, new Sampler(temperature, topK, topP, seed)))
        {
            ctx.Out.Write(piece);
            ctx.Out.Flush();
            pieces++;
        }
        ctx.Out.WriteLine();
        if (ctx.Verbose) ctx.Error.WriteLine($"quantsharp: {pieces} text pieces in {sw.Elapsed.TotalSeconds:F2} s");
        return Program.ExitOk;
    }

    private static int Perplexity(string model, CliArguments args, CliContext ctx)
    {
        string text = args.Value("--text") ?? throw new UsageException("'llm perplexity' needs --text FILE");
        if (!File.Exists(text)) throw new QuantSharpException($"{text}: text file not found");
        string type = TypeOf(args);
        int threads = args.Int("--threads", 0, 0, 1024);
        using var m = Open(model, args, type);
        var tok = Tokenizer(model, m);
        int seqLen = m.Weights.SeqLen;
        string content = File.ReadAllText(text);
        bool llamaCpp = args.Has("--ctx");
        int window = llamaCpp ? args.Int("--ctx", 0, 4, seqLen) : seqLen;
        var windows = llamaCpp ? EvalProtocols.LlamaCpp(content, tok, window) : EvalProtocols.Paragraphs(content, tok, window);
        if (args.Has("--windows")) windows = windows.Take(args.Int("--windows", 0, 1, int.MaxValue)).ToList();
        var w = Converted(m, args, type);
        var sw = Stopwatch.StartNew();
        // --reference: compare against another model file (e.g. the FP32 checkpoint a quantized GGUF came from).
        using var refModel = args.Value("--reference") is string refPath ? CausalLmLoader.Open(refPath) : null;
        if (refModel is not null && (refModel.Weights.Architecture != w.Architecture || refModel.Weights.VocabSize != w.VocabSize))
            throw new QuantSharpException($"{refModel.Weights.Architecture} reference with {refModel.Weights.VocabSize} tokens does not match {model} ({w.Architecture}, {w.VocabSize} tokens)");
        var reference = refModel?.Weights ?? (type == "f32" || args.Flag("--no-kl") || args.Has("--synthetic") ? null : m.Weights);
        var res = reference is null ? Evaluator.Perplexity(w, windows, threads) : Evaluator.Compare(reference, w, windows, threads);
        double secs = sw.Elapsed.TotalSeconds;
        long bytes = w.TotalBytes();
        double bpw = bytes * 8.0 / w.ParameterCount();
        string protocol = llamaCpp ? $"llama.cpp ctx={window}" : $"paragraphs window={window}";
        if (args.Flag("--json"))
        {
            var ms = new MemoryStream();
            using (var jw = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
            {
                jw.WriteStartObject();
                jw.WriteString("model", model);
                jw.WriteString("text", text);
                jw.WriteString("type", type);
                jw.WriteString("protocol", protocol);
                jw.WriteNumber("ppl", res.Perplexity);
                jw.WriteNumber("mean_nll", res.MeanNll);
                jw.WriteNumber("tokens", res.ScoredTokens);
                jw.WriteNumber("windows", res.Windows);
                jw.WriteNumber("bytes", bytes);
                jw.WriteNumber("bits_per_weight", bpw);
                if (res.MeanKl is double kl)
                {
                    jw.WriteNumber("fp32_ppl", res.ReferencePerplexity!.Value);
                    jw.WriteNumber("kl", kl);
                    jw.WriteNumber("same_top", res.SameTopRate!.Value);
                }
                jw.WriteNumber("seconds", secs);
                jw.WriteEndObject();
            }
            ctx.Out.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
            return Program.ExitOk;
        }
        ctx.Out.WriteLine($"{type}: perplexity {res.Perplexity:F4} (mean NLL {res.MeanNll:F5}) over {res.ScoredTokens:N0} tokens in {res.Windows} windows ({protocol}), {secs:F1} s");
        ctx.Out.WriteLine($"weights: {bytes:N0} bytes, {bpw:F3} bits per parameter");
        if (res.MeanKl is double k)
            ctx.Out.WriteLine($"vs fp32: perplexity {res.ReferencePerplexity:F4}, KL {k:G4} nats/token, same top token {res.SameTopRate:P2}");
        return Program.ExitOk;
    }
}
