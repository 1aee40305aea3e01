using System.Numerics.Tensors;

namespace QuantSharp.Llm.Quantization;

/// <summary>
/// Statistics of the inputs x a matrix saw on calibration tokens: Σ x·xᵀ (the GPTQ Hessian up to the factor 2/N),
/// Σ|x| per column (AWQ's activation magnitude) and the token count. Σx² per column (the importance matrix) is the
/// diagonal of Σ x·xᵀ. Matrices that read the same input (Wq/Wk/Wv, W1/W3) share one instance.
/// </summary>
public sealed class InputStats
{
    public InputStats(int cols)
    {
        Cols = cols;
        XtX = new double[(long)cols * cols];
        SumAbs = new double[cols];
    }

    public int Cols { get; }
    /// <summary>Σ_t x_t·x_tᵀ, row-major [Cols, Cols].</summary>
    public double[] XtX { get; }
    public double[] SumAbs { get; }
    public long Count { get; private set; }

    public void Add(ReadOnlySpan<float> x)
    {
        var buf = x.Length <= 1024 ? stackalloc double[x.Length] : new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            buf[i] = x[i];
            SumAbs[i] += Math.Abs(x[i]);
        }
        for (int i = 0; i < Cols; i++)
        {
            var row = XtX.AsSpan(i * Cols, Cols);
            TensorPrimitives.MultiplyAdd(buf, buf[i], row, row);
        }
        Count++;
    }

    public void Merge(InputStats other)
    {
        TensorPrimitives.Add(XtX, other.XtX, XtX);
        TensorPrimitives.Add(SumAbs, other.SumAbs, SumAbs);
        Count += other.Count;
    }

    /// <summary>mean |x_c| over the tokens.</summary>
    public double MeanAbs(int c) => Count == 0 ? 0 : SumAbs[c] / Count;

    /// <summary>Σ_t x_t,c² per column, as floats (the importance matrix of imatrix rounding).</summary>
    public float[] Importance()
    {
        var v = new float[Cols];
        for (int c = 0; c < Cols; c++) v[c] = (float)XtX[(long)c * Cols + c];
        return v;
    }

    /// <summary>GPTQ's H = 2·Σ x·xᵀ / N.</summary>
    public double[] Hessian()
    {
        var h = (double[])XtX.Clone();
        TensorPrimitives.Multiply(h, 2.0 / Math.Max(1, Count), h);
        return h;
    }
}

/// <summary>The input statistics of every matrix of a model (a matrix's input is the same object for matrices that share it).</summary>
public sealed class CalibrationData
{
    private readonly Dictionary<WeightMatrix, InputStats> _stats;

    internal CalibrationData(Dictionary<WeightMatrix, InputStats> stats, long tokens, int windows)
    {
        _stats = stats;
        Tokens = tokens;
        Windows = windows;
    }

    public long Tokens { get; }
    public int Windows { get; }

    /// <summary>The statistics of <paramref name="m"/>'s input, or null for a matrix no product used (an embedding table).</summary>
    public InputStats? For(WeightMatrix m) => _stats.TryGetValue(m, out var s) ? s : null;
}

/// <summary>Runs calibration text through the FP32 model and records each matrix's inputs.</summary>
public static class Calibrator
{
    /// <summary>
    /// Calibration windows from any UTF-8 text: [BOS] + BPE(text), cut into non-overlapping chunks of
    /// <paramref name="ctx"/> tokens, each chunk's first token replaced by BOS (llama.cpp's layout), at most
    /// <paramref name="maxWindows"/> chunks, plus the remainder if at least 16 tokens long and still under the limit.
    /// </summary>
    public static List<int[]> Windows(string text, ITextTokenizer tok, int ctx, int maxWindows)
    {
        if (ctx < 2) throw new QuantSharpException($"calibration window must be at least 2 tokens, got {ctx}");
        var all = tok.Encode(text, bos: true);
        var list = new List<int[]>();
        for (int s = 0; s < all.Length && list.Count < maxWindows; s += ctx)
        {
            int n = Math.Min(ctx, all.Length - s);
            if (n < 16 && list.Count > 0) break;
            var w = all.AsSpan(s, n).ToArray();
            w[0] = tok.BosId;
            list.Add(w);
        }
        if (list.Count == 0 || list.Sum(w => w.Length) < 16) throw new QuantSharpException("calibration text is too short (needs at least 16 tokens)");
        return list;
    }

    // Fixed number of accumulation chunks: the sums are merged in chunk order, so the statistics do not depend on the thread count.
    private const int Chunks = 8;

    public static CalibrationData Collect(LlamaWeights w, IReadOnlyList<int[]> windows, int threads = 0)
    {
        foreach (var win in windows)
            if (win.Length > w.Config.SeqLen) throw new QuantSharpException($"calibration window of {win.Length} tokens exceeds the model's seq_len {w.Config.SeqLen}");
        // Matrices reading the same vector: the first records, the others point at its statistics.
        var groups = new List<WeightMatrix[]>();
        foreach (var l in w.Layers) groups.AddRange([[l.Wq, l.Wk, l.Wv], [l.Wo], [l.W1, l.W3], [l.W2]]);
        groups.Add([w.Classifier]);
        return Collect(groups, windows, threads, observer =>
        {
            var dec = new LlamaDecoder(w, 1) { InputObserver = observer };
            return toks =>
            {
                var st = dec.NewState();
                for (int pos = 0; pos < toks.Length; pos++) dec.Forward(st, toks[pos], pos);
            };
        });
    }

    /// <summary>GPT-2: the inputs of c_attn (q, k, v in one matrix), attn c_proj, mlp c_fc, mlp c_proj and the head.</summary>
    public static CalibrationData Collect(Gpt2.Gpt2Weights w, IReadOnlyList<int[]> windows, int threads = 0)
    {
        foreach (var win in windows)
            if (win.Length > w.Config.SeqLen) throw new QuantSharpException($"calibration window of {win.Length} tokens exceeds the model's n_positions {w.Config.SeqLen}");
        var groups = new List<WeightMatrix[]>();
        foreach (var l in w.Layers) groups.AddRange([[l.Wqkv], [l.Wo], [l.Wfc], [l.Wproj]]);
        groups.Add([w.Head]);
        return Collect(groups, windows, threads, observer =>
        {
            var dec = new Gpt2.Gpt2Decoder(w, 1) { InputObserver = observer };
            return toks =>
            {
                var session = dec.NewSession();
                for (int pos = 0; pos < toks.Length; pos++) session.Forward(toks[pos], pos);
            };
        });
    }

    /// <summary>
    /// Runs every window through a decoder made by <paramref name="decoder"/> (given the observer to install; returns the
    /// function that runs one window) and accumulates each group's input statistics.
    /// </summary>
    private static CalibrationData Collect(List<WeightMatrix[]> groups, IReadOnlyList<int[]> windows, int threads, Func<MatrixInputObserver, Action<int[]>> decoder)
    {
        // WeightMatrix keeps reference equality, so the dictionaries key on the matrix objects themselves.
        Dictionary<WeightMatrix, InputStats> NewSet() => groups.ToDictionary(g => g[0], g => new InputStats(g[0].Cols));
        var parts = new Dictionary<WeightMatrix, InputStats>[Chunks];
        Parallel.For(0, Chunks, new ParallelOptions { MaxDegreeOfParallelism = threads > 0 ? threads : Environment.ProcessorCount }, p =>
        {
            var set = NewSet();
            var run = decoder((m, x) => { if (set.TryGetValue(m, out var st)) st.Add(x); });
            int w0 = windows.Count * p / Chunks, w1 = windows.Count * (p + 1) / Chunks;
            for (int wi = w0; wi < w1; wi++) run(windows[wi]);
            parts[p] = set;
        });
        var merged = parts[0];
        for (int p = 1; p < Chunks; p++)
            foreach (var (m, st) in parts[p]) merged[m].Merge(st);
        long tokens = windows.Sum(x => (long)x.Length);
        foreach (var g in groups)
            if (merged[g[0]].Count != tokens)
                throw new InvalidOperationException($"calibration saw {merged[g[0]].Count} inputs of {g[0].Name} for {tokens} tokens: every product path of the decoder must call InputObserver");
        var all = new Dictionary<WeightMatrix, InputStats>();
        foreach (var g in groups)
            foreach (var m in g) all[m] = merged[g[0]];
        return new CalibrationData(all, tokens, windows.Count);
    }
}
