using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics;
using System.Text.Json;
using QuantSharp.Llm;
using QuantSharp.Llm.Formats;
using QuantSharp.Llm.Kernels;
using QuantSharp.Llm.Synthetic;

namespace QuantSharp.Cli.Commands;

/// <summary>`llm bench` and `llm generate --synthetic`: decode and prompt-processing speed.</summary>
internal static class LlmBench
{
    /// <summary>`llm bench …` and `llm generate|bench --synthetic NAME` with a Llama-family synthetic model.</summary>
    public static bool Handles(string sub, CliArguments args) =>
        sub == "bench" || (sub == "generate" && args.Value("--synthetic") is { } name && SyntheticModels.LlamaNames.Contains(name));

    public static int Execute(string sub, CliArguments args, CliContext ctx)
    {
        bool synthetic = args.Has("--synthetic");
        if (args.Positionals.Count != (synthetic ? 1 : 2))
            throw new UsageException(synthetic ? $"'llm {sub} --synthetic NAME' takes no MODEL argument" : $"'llm {sub}' takes one MODEL argument, got {args.Positionals.Count - 1}");
        return (sub, synthetic) switch
        {
            ("bench", _) => Run(synthetic ? null : args.Positionals[1], args, ctx),
            ("generate", true) => GenerateSynthetic(args, ctx),
            _ => throw new UsageException($"'llm {sub}' needs a MODEL"),
        };
    }

    private static LlamaWeights SyntheticWeights(CliArguments args, out string name)
    {
        name = args.Value("--synthetic")!;
        if (!SyntheticModels.LlamaNames.Contains(name))
            throw new UsageException($"option --synthetic: unknown model '{name}' (known: {string.Join(", ", SyntheticModels.LlamaNames)})");
        return SyntheticModels.CreateLlama(name, LlmCommand.TypeOf(args));
    }

    private static int[] PromptIds(CliArguments args, LlamaConfig c, int[] fallback)
    {
        var text = args.Value("--prompt-ids");
        if (text is null) return fallback;
        var ids = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int id) || id < 0 || id >= c.VocabSize)
                throw new UsageException($"option --prompt-ids: '{part}' is not a token id in [0, {c.VocabSize})");
            ids.Add(id);
        }
        if (ids.Count == 0) throw new UsageException("option --prompt-ids: no token ids");
        return ids.ToArray();
    }

    /// <summary>Greedy generation on a synthetic model: prints the token ids as they come, then tokens/s.</summary>
    public static int GenerateSynthetic(CliArguments args, CliContext ctx)
    {
        int n = args.Int("-n", 64, 1, 1 << 20);
        int threads = args.Int("--threads", 0, 0, 1024);
        var sw = Stopwatch.StartNew();
        var w = SyntheticWeights(args, out string name);
        double load = sw.Elapsed.TotalSeconds;
        var dec = new LlamaDecoder(w, threads);
        var prompt = PromptIds(args, w.Config, [1]);
        var s = dec.NewState();
        sw.Restart();
        var logits = prompt.Length > 1 ? dec.ForwardBatch(s, prompt, 0) : dec.Forward(s, prompt[0], 0);
        double pp = sw.Elapsed.TotalSeconds;
        ctx.Out.Write(string.Join(" ", prompt));
        sw.Restart();
        int made = 0;
        for (int pos = prompt.Length; made < n && pos < w.Config.SeqLen; pos++, made++)
        {
            int next = Argmax(logits);
            ctx.Out.Write(" " + next);
            ctx.Out.Flush();
            logits = dec.Forward(s, next, pos);
        }
        double secs = sw.Elapsed.TotalSeconds;
        ctx.Out.WriteLine();
        ctx.Out.WriteLine($"{name} {LlmCommand.TypeOf(args)}: {made} tokens in {secs:F2} s = {made / secs:F2} tokens/s decode, " +
            $"prompt {prompt.Length} tokens in {pp:F2} s, {dec.Threads} threads, kernels {KernelLabel(dec)}, weights generated in {load:F1} s");
        return Program.ExitOk;
    }

    /// <summary>The managed path, plus the generated kernel that Q8_0 products use when it is on.</summary>
    private static string KernelLabel(LlamaDecoder dec) => dec.UseGeneratedKernels ? $"{QKernels.Selected} + Jit (Q8_0)" : QKernels.Selected.ToString();

    private static int Argmax(float[] v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    /// <summary>Bytes of weights one decode step reads: every matrix except the embedding, of which one row.</summary>
    public static long DecodeBytes(LlamaWeights w)
    {
        long bytes = w.Matrices.Where(m => !ReferenceEquals(m, w.TokenEmbedding)).Sum(m => m.Bytes);
        if (ReferenceEquals(w.Classifier, w.TokenEmbedding)) bytes += w.TokenEmbedding.Bytes;
        else bytes += w.TokenEmbedding.Bytes / w.TokenEmbedding.Rows;
        return bytes;
    }

    public static int Run(string? model, CliArguments args, CliContext ctx)
    {
        int threads = args.Int("--threads", 0, 0, 1024);
        int promptTokens = args.Int("--prompt-tokens", 256, 1, 1 << 20);
        int n = args.Int("-n", 64, 1, 1 << 20);
        int reps = args.Int("--reps", 3, 1, 100);
        string type = LlmCommand.TypeOf(args);
        var sw = Stopwatch.StartNew();
        LlamaWeights w;
        string source;
        Llama2cCheckpoint? ck = null;
        if (model is null)
        {
            w = SyntheticWeights(args, out string name);
            source = "synthetic " + name;
        }
        else
        {
            ck = Llama2cCheckpoint.Open(model);
            w = type == "f32" ? ck.Weights : WeightFormats.QuantizeModel(ck.Weights, type);
            source = model;
        }
        try
        {
            double load = sw.Elapsed.TotalSeconds;
            var c = w.Config;
            if (promptTokens > c.SeqLen || n > c.SeqLen) throw new UsageException($"--prompt-tokens and -n must be at most seq_len {c.SeqLen}");
            var dec = new LlamaDecoder(w, threads);
            var rng = new Random(1234);
            var prompt = PromptIds(args, c, Enumerable.Range(0, promptTokens).Select(_ => rng.Next(3, c.VocabSize)).ToArray());

            double membw = args.Flag("--no-membw") ? 0 : MemoryReadBandwidth(dec.Threads);
            double bestPp = double.MaxValue, bestTg = double.MaxValue, cpuPp = double.MaxValue, cpuTg = double.MaxValue;
            var proc = System.Diagnostics.Process.GetCurrentProcess();
            double Cpu()
            {
                proc.Refresh();
                return proc.TotalProcessorTime.TotalSeconds;
            }
            for (int r = 0; r < reps; r++)
            {
                var s = dec.NewState();
                double c0 = Cpu();
                sw.Restart();
                dec.ForwardBatch(s, prompt, 0);
                bestPp = Math.Min(bestPp, sw.Elapsed.TotalSeconds);
                cpuPp = Math.Min(cpuPp, Cpu() - c0);

                s = dec.NewState();
                var logits = dec.Forward(s, 1, 0);
                c0 = Cpu();
                sw.Restart();
                for (int pos = 1; pos <= n; pos++) logits = dec.Forward(s, Argmax(logits), pos);
                bestTg = Math.Min(bestTg, sw.Elapsed.TotalSeconds);
                cpuTg = Math.Min(cpuTg, Cpu() - c0);
            }
            double ppRate = prompt.Length / bestPp, tgRate = n / bestTg;
            long bytes = DecodeBytes(w);
            double gbs = bytes * tgRate / 1e9;
            if (args.Flag("--json"))
            {
                var ms = new MemoryStream();
                using (var jw = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
                {
                    jw.WriteStartObject();
                    jw.WriteString("model", source);
                    jw.WriteString("type", type);
                    jw.WriteNumber("threads", dec.Threads);
                    jw.WriteString("kernels", QKernels.Selected.ToString());
                    jw.WriteBoolean("generated_q8_0_kernels", dec.UseGeneratedKernels);
                    jw.WriteNumber("prompt_tokens", prompt.Length);
                    jw.WriteNumber("prompt_tokens_per_s", ppRate);
                    jw.WriteNumber("decode_tokens", n);
                    jw.WriteNumber("decode_tokens_per_s", tgRate);
                    jw.WriteNumber("weight_bytes_per_token", bytes);
                    jw.WriteNumber("decode_gb_per_s", gbs);
                    if (membw > 0) jw.WriteNumber("dram_read_gb_per_s", membw);
                    jw.WriteNumber("prompt_cpu_seconds", cpuPp);
                    jw.WriteNumber("decode_cpu_seconds", cpuTg);
                    jw.WriteNumber("reps", reps);
                    jw.WriteNumber("load_seconds", load);
                    jw.WriteEndObject();
                }
                ctx.Out.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
                return Program.ExitOk;
            }
            ctx.Out.WriteLine($"{source} {type}, {dec.Threads} threads, kernels {KernelLabel(dec)} (best of {reps}; weights ready in {load:F1} s)");
            ctx.Out.WriteLine($"prompt processing: {prompt.Length} tokens in {bestPp:F3} s = {ppRate:F1} tokens/s");
            ctx.Out.WriteLine($"decode:            {n} tokens in {bestTg:F3} s = {tgRate:F2} tokens/s, {bytes / 1e9:F3} GB of weights per token = {gbs:F1} GB/s");
            ctx.Out.WriteLine($"process CPU time: prompt {cpuPp:F2} s, decode {cpuTg:F2} s (wall × {dec.Threads} threads would be {bestPp * dec.Threads:F2} s and {bestTg * dec.Threads:F2} s: " +
                "a lower CPU time means the cores were shared with other processes)");
            if (membw > 0) ctx.Out.WriteLine($"DRAM read bandwidth ({dec.Threads} threads): {membw:F1} GB/s; decode streams weights at {100 * gbs / membw:F0}% of it");
            return Program.ExitOk;
        }
        finally
        {
            ck?.Dispose();
        }
    }

    /// <summary>
    /// Read bandwidth of main memory: <paramref name="threads"/> threads sum disjoint halves of a 1 GiB buffer (far
    /// beyond the caches) with 64-byte vector loads; best of 3 passes, in GB/s (10^9 bytes).
    /// </summary>
    public static unsafe double MemoryReadBandwidth(int threads)
    {
        const long bytes = 1L << 30;
        var buf = GC.AllocateUninitializedArray<byte>((int)bytes, pinned: true);
        Parallel.For(0, threads, t => buf.AsSpan((int)(bytes * t / threads), (int)(bytes / threads)).Fill((byte)t));
        double best = 0;
        long sink = 0;
        fixed (byte* p0 = buf)
        {
            byte* p = p0;
            for (int rep = 0; rep < 3; rep++)
            {
                var sw = Stopwatch.StartNew();
                var sums = new long[threads];
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                {
                    long s0 = bytes * t / threads, s1 = bytes * (t + 1) / threads;
                    var acc0 = Vector512<ulong>.Zero;
                    var acc1 = Vector512<ulong>.Zero;
                    for (long i = s0; i + 128 <= s1; i += 128)
                    {
                        acc0 += Vector512.Load((ulong*)(p + i));
                        acc1 += Vector512.Load((ulong*)(p + i + 64));
                    }
                    sums[t] = (long)Vector512.Sum(acc0 + acc1);
                });
                best = Math.Max(best, bytes / sw.Elapsed.TotalSeconds / 1e9);
                sink += sums.Sum();
            }
        }
        GC.KeepAlive(sink);
        return best;
    }
}
