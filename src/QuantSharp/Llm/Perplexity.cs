using QuantSharp.Runtime;

namespace QuantSharp.Llm;

/// <summary>A token window to score: logits at position i−1 predict <c>Tokens[i]</c> for i in [FirstScored, Tokens.Length).</summary>
public sealed record EvalWindow(int[] Tokens, int FirstScored)
{
    public int ScoredCount => Tokens.Length - FirstScored;
}

/// <summary>Perplexity (and, against a reference model, KL divergence and top-token agreement) over scored windows.</summary>
public sealed record EvalResult(int Windows, long ScoredTokens, double MeanNll, double? MeanKl = null, double? SameTopRate = null, double? ReferenceMeanNll = null)
{
    public double Perplexity => Math.Exp(MeanNll);
    public double? ReferencePerplexity => ReferenceMeanNll is double r ? Math.Exp(r) : null;
}

/// <summary>How a text file is cut into windows.</summary>
public static class EvalProtocols
{
    /// <summary>
    /// The stories260K reference protocol (reference_ppl_tinystories_valid_head.json): split on blank lines ("\n\n"),
    /// strip, skip empty; each paragraph → [BOS] + BPE(paragraph); concatenate; non-overlapping windows of
    /// <paramref name="window"/> tokens (remainder dropped); score tokens 1..window−1 of each window.
    /// </summary>
    public static List<EvalWindow> Paragraphs(string text, ITextTokenizer tok, int window = 512)
    {
        var all = new List<int>();
        foreach (var para in text.Replace("\r\n", "\n").Split("\n\n"))
        {
            // Python's str.strip(): leading and trailing whitespace.
            var p = para.Trim();
            if (p.Length == 0) continue;
            all.AddRange(tok.Encode(p, bos: true));
        }
        var windows = new List<EvalWindow>();
        for (int s = 0; s + window <= all.Count; s += window) windows.Add(new EvalWindow(all.GetRange(s, window).ToArray(), 1));
        return windows;
    }

    /// <summary>
    /// llama.cpp's perplexity protocol: the whole text → [BOS] + BPE(text); non-overlapping chunks of <paramref name="ctx"/>
    /// tokens whose first token is replaced by BOS; only the second half is scored (tokens ctx/2+1 .. ctx−1), so every
    /// scored token sees at least ctx/2 tokens of context.
    /// </summary>
    public static List<EvalWindow> LlamaCpp(string text, ITextTokenizer tok, int ctx)
    {
        if (ctx < 4) throw new QuantSharpException($"--ctx must be at least 4, got {ctx}");
        var all = tok.Encode(text, bos: true);
        var windows = new List<EvalWindow>();
        for (int s = 0; s + ctx <= all.Length; s += ctx)
        {
            var w = all.AsSpan(s, ctx).ToArray();
            w[0] = tok.BosId;
            windows.Add(new EvalWindow(w, ctx / 2 + 1));
        }
        return windows;
    }
}

public static class Evaluator
{
    /// <summary>Tokens per batch of a window (logits buffer: Chunk × vocabulary floats per model).</summary>
    private const int Chunk = 64;

    /// <summary>
    /// Mean negative log-likelihood over all scored tokens. Windows are independent, so they are spread over
    /// <paramref name="threads"/> workers, each with its own state; per-window sums are added in window order, so the
    /// result does not depend on the thread count.
    /// </summary>
    public static EvalResult Perplexity(ICausalLmWeights weights, IReadOnlyList<EvalWindow> windows, int threads = 0, Action<int>? progress = null)
        => Run(weights, null, windows, threads, progress);

    /// <summary>
    /// Evaluates <paramref name="model"/> and, at each scored position, compares its next-token distribution Q with the
    /// <paramref name="reference"/>'s P: KL(P‖Q) = Σ p·(log p − log q) averaged over positions, and the rate at which both
    /// argmaxes agree. <see cref="EvalResult.ReferenceMeanNll"/> is the reference's own NLL on the same tokens.
    /// </summary>
    public static EvalResult Compare(ICausalLmWeights reference, ICausalLmWeights model, IReadOnlyList<EvalWindow> windows, int threads = 0, Action<int>? progress = null)
        => Run(model, reference, windows, threads, progress);

    private static EvalResult Run(ICausalLmWeights model, ICausalLmWeights? reference, IReadOnlyList<EvalWindow> windows, int threads, Action<int>? progress)
    {
        if (windows.Count == 0) throw new QuantSharpException("no evaluation window: the text is shorter than one window");
        foreach (var w in windows)
            if (w.Tokens.Length > model.SeqLen) throw new QuantSharpException($"window of {w.Tokens.Length} tokens exceeds the model's seq_len {model.SeqLen} (use a smaller --ctx)");
        threads = threads > 0 ? threads : Environment.ProcessorCount;
        var nll = new double[windows.Count];
        var refNll = new double[windows.Count];
        var kl = new double[windows.Count];
        var same = new long[windows.Count];
        int done = 0;
        Parallelism.For(threads, windows.Count, 1, (w0, w1) =>
        {
            // Inner products single-threaded: the parallelism is across windows.
            var dm = model.CreateDecoder(1);
            var dr = reference?.CreateDecoder(1);
            // One session per worker: position p overwrites cache row p and attention reads rows 0..p only, so a
            // window starting again at position 0 never sees the previous window's cache.
            var sm = dm.NewSession();
            var sr = dr?.NewSession();
            int vocab = model.VocabSize;
            var lpm = new double[vocab];
            var lpr = new double[vocab];
            var bm = new float[Chunk * vocab];
            var br = reference is null ? null : new float[Chunk * vocab];
            for (int wi = w0; wi < w1; wi++)
            {
                var win = windows[wi];
                double a = 0, ar = 0, k = 0;
                long agree = 0;
                // Positions 0 .. len−1 are run (the last token is only a target). Logits are needed from position
                // FirstScored − 1 on; the positions before it only fill the cache, as a batch (ICausalLmSession.Prefill).
                int len = win.Tokens.Length - 1, first = Math.Clamp(win.FirstScored - 1, 0, len);
                for (int p0 = 0; p0 < first; p0 += Chunk)
                {
                    var toks = win.Tokens.AsSpan(p0, Math.Min(Chunk, first - p0));
                    sm.Prefill(toks, p0);
                    sr?.Prefill(toks, p0);
                }
                for (int p0 = first; p0 < len; p0 += Chunk)
                {
                    int cn = Math.Min(Chunk, len - p0);
                    var toks = win.Tokens.AsSpan(p0, cn);
                    sm.ForwardAll(toks, p0, bm);
                    if (sr is not null) sr.ForwardAll(toks, p0, br!);
                    for (int i = 0; i < cn; i++)
                    {
                        int target = win.Tokens[p0 + i + 1];
                        var lm = bm.AsSpan(i * vocab, vocab);
                        LogSoftmax(lm, lpm);
                        a -= lpm[target];
                        if (br is not null)
                        {
                            var lr = br.AsSpan(i * vocab, vocab);
                            LogSoftmax(lr, lpr);
                            ar -= lpr[target];
                            double sum = 0;
                            for (int j = 0; j < lpr.Length; j++) sum += Math.Exp(lpr[j]) * (lpr[j] - lpm[j]);
                            k += sum;
                            if (Sampler.ArgMax(lm) == Sampler.ArgMax(lr)) agree++;
                        }
                    }
                }
                nll[wi] = a;
                refNll[wi] = ar;
                kl[wi] = k;
                same[wi] = agree;
                if (progress is not null) progress(Interlocked.Increment(ref done));
            }
        });
        long n = windows.Sum(w => (long)w.ScoredCount);
        double total = 0, totalRef = 0, totalKl = 0;
        long totalSame = 0;
        for (int i = 0; i < windows.Count; i++)
        {
            total += nll[i];
            totalRef += refNll[i];
            totalKl += kl[i];
            totalSame += same[i];
        }
        return reference is null
            ? new EvalResult(windows.Count, n, total / n)
            : new EvalResult(windows.Count, n, total / n, totalKl / n, (double)totalSame / n, totalRef / n);
    }

    /// <summary>log softmax in double: l_i − max − log Σ exp(l_j − max).</summary>
    public static void LogSoftmax(ReadOnlySpan<float> logits, Span<double> dst)
    {
        float max = float.NegativeInfinity;
        foreach (float v in logits) max = Math.Max(max, v);
        double sum = 0;
        for (int i = 0; i < logits.Length; i++) sum += Math.Exp(logits[i] - (double)max);
        double lse = max + Math.Log(sum);
        for (int i = 0; i < logits.Length; i++) dst[i] = logits[i] - lse;
    }
}
