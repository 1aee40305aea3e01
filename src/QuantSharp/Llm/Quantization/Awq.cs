using QuantSharp.Llm.Gpt2;

namespace QuantSharp.Llm.Quantization;

/// <summary>AWQ settings.</summary>
public sealed record AwqOptions
{
    /// <summary>α is searched on the grid 0, 1/Grid, …, (Grid − 1)/Grid, i.e. [0, 1) as in the paper's search.</summary>
    public int Grid { get; init; } = 20;

    /// <summary>
    /// AWQ's weight clipping, done after the scale search as in the paper: each group's range is chosen among shrunk
    /// ranges (no clipping included) to minimise the matrix's output error on the calibration inputs
    /// (<see cref="Awq.QuantizeClipped"/>). The α search itself uses plain min/max rounding. Off: plain rounding.
    /// </summary>
    public bool ClipSearch { get; init; } = true;
}

/// <summary>The α chosen for one scaled input and the calibration output error it gives (Σ over the site's matrices).</summary>
public sealed record AwqSite(string Name, double Alpha, double Error, double RtnError);

/// <summary>
/// AWQ (Lin et al., 2023): activation-aware per-input-channel scaling. For a matrix W whose input channel c has mean
/// magnitude a_c = mean|x_c| on calibration tokens, W·x = (W·diag(s))·(x/s); quantizing W·diag(s) with s_c = a_c^α
/// protects the weights of salient channels. α ∈ [0, 1) is chosen per input on a grid to minimise the output error of
/// all matrices reading that input on the calibration inputs, Σ_matrices Σ_rows Δ·(Σ x·xᵀ)·Δᵀ with
/// Δ = Q(W·diag(s))·diag(1/s) − W, Q plain round to nearest (α = 0 gives s = 1, plain round to nearest itself, so the
/// chosen α never does worse on that objective). s is normalised by √(max·min). Then each matrix is rounded with AWQ's
/// clipping (<see cref="QuantizeClipped"/>), which minimises the same output error and can only lower it. The 1/s is
/// folded into the op that produces x, so the FP32 model is unchanged; which folds are exact:
/// <list type="bullet">
/// <item>Wq, Wk, Wv (input RMSNorm(x)): 1/s folds into the attention RMSNorm weight — exact (RMSNorm is g ⊙ x/rms(x)).</item>
/// <item>W1, W3 (input RMSNorm(x)): 1/s folds into the FFN RMSNorm weight — exact.</item>
/// <item>Wo (input: attention output, Σ_t a_t·v_t per head): 1/s folds into the rows of Wv — exact, because the attention
/// weights a_t do not depend on v. With grouped-query attention the query heads sharing a KV head read the same v
/// rows, so their Wo columns share one scale (mean|x| pooled over them).</item>
/// <item>W2 (input SiLU(W1·x) ⊙ (W3·x)): 1/s folds into the rows of W3 — exact, the product is linear in W3·x. Folding
/// into W1 would not be (SiLU is not linear), so W1 is never used.</item>
/// <item>A separate classifier: 1/s folds into the final RMSNorm weight — exact. A classifier shared with the token
/// embedding is not scaled (the embedding would change).</item>
/// </list>
/// </summary>
public static class Awq
{
    /// <summary>
    /// The scaled FP32 model and the per-site choices. <paramref name="typeOf"/> gives the type each matrix will be
    /// quantized to (the search scores that type; "f32" matrices contribute no error).
    /// </summary>
    public static (LlamaWeights Weights, IReadOnlyList<AwqSite> Sites) Apply(LlamaWeights w, CalibrationData calib, Func<WeightMatrix, string> typeOf, AwqOptions? options = null)
    {
        var (weights, sites, _) = ApplyWithScales(w, calib, typeOf, options);
        return (weights, sites);
    }

    /// <summary>As <see cref="Apply"/>, plus the column scale s of every scaled matrix (keyed by the original matrix).</summary>
    public static (LlamaWeights Weights, IReadOnlyList<AwqSite> Sites, IReadOnlyDictionary<WeightMatrix, float[]> Scales) ApplyWithScales(
        LlamaWeights w, CalibrationData calib, Func<WeightMatrix, string> typeOf, AwqOptions? options = null)
    {
        options ??= new AwqOptions();
        var c = w.Config;
        var sites = new List<AwqSite>();
        var scales = new Dictionary<WeightMatrix, float[]>();
        var layers = new LlamaLayer[c.Layers];
        for (int li = 0; li < c.Layers; li++)
        {
            var l = w.Layers[li];
            var q = MatrixQuantizers.Values(l.Wq); var k = MatrixQuantizers.Values(l.Wk); var v = MatrixQuantizers.Values(l.Wv);
            var o = MatrixQuantizers.Values(l.Wo);
            var w1 = MatrixQuantizers.Values(l.W1); var w2 = MatrixQuantizers.Values(l.W2); var w3 = MatrixQuantizers.Values(l.W3);
            var rmsAtt = (float[])l.RmsAtt.Clone();
            var rmsFfn = (float[])l.RmsFfn.Clone();

            // Attention input: Wq, Wk, Wv ← attention RMSNorm.
            var sA = Search($"blk.{li}.attn_qkv", [(q, l.Wq), (k, l.Wk), (v, l.Wv)], Need(calib, l.Wq), typeOf, null, options, sites);
            ScaleColumns(q, l.Wq.Cols, sA); ScaleColumns(k, l.Wk.Cols, sA); ScaleColumns(v, l.Wv.Cols, sA);
            scales[l.Wq] = scales[l.Wk] = scales[l.Wv] = sA;
            for (int i = 0; i < rmsAtt.Length; i++) rmsAtt[i] /= sA[i];

            // Attention output: Wo ← rows of Wv, one scale per KV channel.
            int hs = c.HeadSize, kvMul = c.KvMul;
            int[] tie = Enumerable.Range(0, c.Dim).Select(col => (col / hs / kvMul) * hs + col % hs).ToArray();
            var sO = Search($"blk.{li}.attn_output", [(o, l.Wo)], Need(calib, l.Wo), typeOf, tie, options, sites);
            ScaleColumns(o, l.Wo.Cols, sO);
            scales[l.Wo] = sO;
            for (int col = 0; col < c.Dim; col++)
                if (col % (hs * kvMul) < hs) ScaleRow(v, l.Wv.Cols, tie[col], 1f / sO[col]);

            // FFN input: W1, W3 ← FFN RMSNorm.
            var sF = Search($"blk.{li}.ffn_gate_up", [(w1, l.W1), (w3, l.W3)], Need(calib, l.W1), typeOf, null, options, sites);
            ScaleColumns(w1, l.W1.Cols, sF); ScaleColumns(w3, l.W3.Cols, sF);
            scales[l.W1] = scales[l.W3] = sF;
            for (int i = 0; i < rmsFfn.Length; i++) rmsFfn[i] /= sF[i];

            // FFN down: W2 ← rows of W3.
            var sD = Search($"blk.{li}.ffn_down", [(w2, l.W2)], Need(calib, l.W2), typeOf, null, options, sites);
            ScaleColumns(w2, l.W2.Cols, sD);
            scales[l.W2] = sD;
            for (int r = 0; r < l.W3.Rows; r++) ScaleRow(w3, l.W3.Cols, r, 1f / sD[r]);

            layers[li] = new LlamaLayer(rmsAtt, F(l.Wq, q), F(l.Wk, k), F(l.Wv, v), F(l.Wo, o), rmsFfn, F(l.W1, w1), F(l.W2, w2), F(l.W3, w3));
        }
        var rmsFinal = (float[])w.RmsFinal.Clone();
        var cls = w.Classifier;
        if (!ReferenceEquals(w.Classifier, w.TokenEmbedding))
        {
            var cv = MatrixQuantizers.Values(cls);
            var sC = Search("output", [(cv, cls)], Need(calib, cls), typeOf, null, options, sites);
            ScaleColumns(cv, cls.Cols, sC);
            scales[cls] = sC;
            for (int i = 0; i < rmsFinal.Length; i++) rmsFinal[i] /= sC[i];
            cls = F(cls, cv);
        }
        return (w with { Layers = layers, RmsFinal = rmsFinal, Classifier = cls }, sites, scales);
    }

    /// <summary>
    /// AWQ for GPT-2, with the same search per scaled input. Folds (exact in FP32): c_attn (q, k, v in one matrix) → the
    /// first LayerNorm's gain and bias (its output g⊙n + b divided by s is (g/s)⊙n + b/s); attn c_proj → the v rows of
    /// c_attn and their biases (the attention output Σ_t a_t·v_t is linear in v); mlp c_fc → the second LayerNorm's gain
    /// and bias; a separate head → the final LayerNorm's gain and bias (a head tied to wte is not scaled). mlp c_proj
    /// reads GELU(c_fc·x + b), which no exact fold can divide by s (GELU is not linear), so it is not scaled; its clip
    /// search still runs.
    /// </summary>
    public static (Gpt2Weights Weights, IReadOnlyList<AwqSite> Sites, IReadOnlyDictionary<WeightMatrix, float[]> Scales) ApplyWithScales(
        Gpt2Weights w, CalibrationData calib, Func<WeightMatrix, string> typeOf, AwqOptions? options = null)
    {
        options ??= new AwqOptions();
        int dim = w.Config.Dim;
        var sites = new List<AwqSite>();
        var scales = new Dictionary<WeightMatrix, float[]>();
        var layers = new Gpt2Layer[w.Layers.Count];
        static float[] Div(float[] v, float[] s) => v.Select((x, i) => x / s[i]).ToArray();
        for (int li = 0; li < layers.Length; li++)
        {
            var l = w.Layers[li];
            var qkv = MatrixQuantizers.Values(l.Wqkv);
            var o = MatrixQuantizers.Values(l.Wo);
            var fc = MatrixQuantizers.Values(l.Wfc);
            var bqkv = (float[])l.Bqkv.Clone();

            var sA = Search($"blk.{li}.attn_qkv", [(qkv, l.Wqkv)], Need(calib, l.Wqkv), typeOf, null, options, sites);
            ScaleColumns(qkv, dim, sA);
            scales[l.Wqkv] = sA;

            // c_proj ← v rows (2·dim + c) of c_attn and their biases.
            var sO = Search($"blk.{li}.attn_output", [(o, l.Wo)], Need(calib, l.Wo), typeOf, null, options, sites);
            ScaleColumns(o, dim, sO);
            scales[l.Wo] = sO;
            for (int c = 0; c < dim; c++)
            {
                ScaleRow(qkv, dim, 2 * dim + c, 1f / sO[c]);
                bqkv[2 * dim + c] /= sO[c];
            }

            var sF = Search($"blk.{li}.ffn_up", [(fc, l.Wfc)], Need(calib, l.Wfc), typeOf, null, options, sites);
            ScaleColumns(fc, dim, sF);
            scales[l.Wfc] = sF;

            layers[li] = l with
            {
                Ln1Gain = Div(l.Ln1Gain, sA), Ln1Bias = Div(l.Ln1Bias, sA), Wqkv = F(l.Wqkv, qkv), Bqkv = bqkv, Wo = F(l.Wo, o),
                Ln2Gain = Div(l.Ln2Gain, sF), Ln2Bias = Div(l.Ln2Bias, sF), Wfc = F(l.Wfc, fc),
            };
        }
        var result = w with { Layers = layers };
        if (!w.TiedHead)
        {
            var hv = MatrixQuantizers.Values(w.Head);
            var sH = Search("output", [(hv, w.Head)], Need(calib, w.Head), typeOf, null, options, sites);
            ScaleColumns(hv, dim, sH);
            scales[w.Head] = sH;
            result = result with { Head = F(w.Head, hv), LnFGain = Div(w.LnFGain, sH), LnFBias = Div(w.LnFBias, sH) };
        }
        return (result, sites, scales);
    }

    private static InputStats Need(CalibrationData calib, WeightMatrix m) => calib.For(m) ?? throw new QuantSharpException($"{m.Name}: no calibration statistics");

    private static F32Matrix F(WeightMatrix like, float[] values) => F32Matrix.FromArray(like.Name, like.Rows, like.Cols, values);

    private static void ScaleColumns(float[] values, int cols, float[] s)
    {
        for (int i = 0; i < values.Length; i++) values[i] *= s[i % cols];
    }

    private static void ScaleRow(float[] values, int cols, int row, float f)
    {
        for (int c = 0; c < cols; c++) values[row * cols + c] *= f;
    }

    /// <summary>s_c = a_c^α normalised by √(max·min); with <paramref name="tie"/>, a is pooled over columns sharing tie[c].</summary>
    public static float[] Scales(InputStats st, double alpha, int[]? tie)
    {
        int n = st.Cols;
        var a = new double[n];
        for (int c = 0; c < n; c++) a[c] = st.MeanAbs(c);
        if (tie is not null)
        {
            var sum = new Dictionary<int, (double S, int N)>();
            for (int c = 0; c < n; c++) sum[tie[c]] = sum.TryGetValue(tie[c], out var p) ? (p.S + a[c], p.N + 1) : (a[c], 1);
            for (int c = 0; c < n; c++) a[c] = sum[tie[c]].S / sum[tie[c]].N;
        }
        var s = new double[n];
        double max = 0, min = double.PositiveInfinity;
        for (int c = 0; c < n; c++)
        {
            s[c] = Math.Pow(Math.Max(a[c], 1e-8), alpha);
            max = Math.Max(max, s[c]);
            min = Math.Min(min, s[c]);
        }
        double norm = Math.Sqrt(max * min);
        return s.Select(x => (float)(x / norm)).ToArray();
    }

    private static float[] Search(string name, (float[] Values, WeightMatrix M)[] mats, InputStats st, Func<WeightMatrix, string> typeOf, int[]? tie, AwqOptions o, List<AwqSite> sites)
    {
        double best = double.PositiveInfinity, bestAlpha = 0, rtn = 0;
        float[] bestS = Scales(st, 0, tie);
        for (int gi = 0; gi < Math.Max(1, o.Grid); gi++)
        {
            double alpha = (double)gi / Math.Max(1, o.Grid);
            var s = Scales(st, alpha, tie);
            double err = 0;
            foreach (var (values, m) in mats) err += ScaledError(values, m, typeOf(m), s, st);
            if (gi == 0) rtn = err;
            if (err < best)
            {
                best = err;
                bestAlpha = alpha;
                bestS = s;
            }
        }
        sites.Add(new AwqSite(name, bestAlpha, best, rtn));
        return bestS;
    }

    /// <summary>Σ_rows Δ·XtX·Δᵀ for Δ = Q(W·diag(s))·diag(1/s) − W, Q plain round to nearest (the α search's objective).</summary>
    public static double ScaledError(float[] values, WeightMatrix m, string type, float[] s, InputStats st)
    {
        if (type == "f32") return 0;
        int rows = m.Rows, cols = m.Cols;
        var scaled = new float[values.Length];
        for (int i = 0; i < values.Length; i++) scaled[i] = values[i] * s[i % cols];
        var qm = MatrixQuantizers.RoundToNearest(m.Name, rows, cols, scaled, type);
        var row = new float[cols];
        var delta = new double[cols];
        double e = 0;
        for (int r = 0; r < rows; r++)
        {
            qm.DequantizeRow(r, row);
            for (int c = 0; c < cols; c++) delta[c] = row[c] / s[c] - values[r * cols + c];
            e += QuadraticForm(delta, st.XtX, cols);
        }
        return e;
    }

    /// <summary>Σ_rows Δ·XtX·Δᵀ with Δ = Q·diag(1/s) − W for a quantized scaled matrix Q and the scaled FP32 values W·diag(s).</summary>
    public static double UnscaledError(WeightMatrix quantized, float[] scaledValues, float[] s, InputStats st)
    {
        int cols = quantized.Cols;
        var row = new float[cols];
        var delta = new double[cols];
        double e = 0;
        for (int r = 0; r < quantized.Rows; r++)
        {
            quantized.DequantizeRow(r, row);
            for (int c = 0; c < cols; c++) delta[c] = (row[c] - scaledValues[r * cols + c]) / s[c];
            e += QuadraticForm(delta, st.XtX, cols);
        }
        return e;
    }

    /// <summary>
    /// AWQ's clipping of one scaled matrix Ws = W·diag(s) (row-major <paramref name="scaledValues"/>) whose input is x/s:
    /// each group's grid is chosen among the ranges [lo·min, hi·max] (lo, hi ∈ <see cref="MatrixQuantizer.ClipGrid"/>;
    /// (1, 1) is no clipping) to minimise the matrix's output error on the calibration inputs,
    /// E = Σ_rows δ·A·δᵀ with δ = Q(Ws) − Ws and A = diag(1/s)·(Σ x·xᵀ / N)·diag(1/s), the second moment of x/s —
    /// the same quantity as the α search's objective, not a per-weight proxy. The groups of a row interact through the
    /// off-diagonal blocks of A, so the search is exact coordinate descent: with the row's other groups held at their
    /// current grids, a candidate changing group g's error by d = δ_g' − δ_g changes E by 2·dᵀ·(A·δ)_g + dᵀ·A_gg·d, and it
    /// is taken only if that is negative. Starting from plain rounding (every group unclipped), E never increases, so the
    /// result is never worse than no clipping on the calibration objective. <paramref name="sweeps"/> passes over the groups.
    /// With s = null the matrix is unscaled (s = 1). Rows are independent and run in parallel.
    /// </summary>
    public static WeightMatrix QuantizeClipped(string name, int rows, int cols, float[] scaledValues, string type, float[]? s, InputStats st, int sweeps = 2, int threads = 0)
    {
        if (type == "f32") return F32Matrix.FromArray(name, rows, cols, scaledValues);
        if (st.Cols != cols) throw new ArgumentException($"{name}: statistics of {st.Cols} columns for a matrix of {cols}");
        double invN = 1.0 / Math.Max(1, st.Count);
        var a = new double[(long)cols * cols];
        for (int i = 0; i < cols; i++)
            for (int j = 0; j < cols; j++)
                a[(long)i * cols + j] = st.XtX[(long)i * cols + j] * invN / ((s?[i] ?? 1f) * (double)(s?[j] ?? 1f));
        var q = MatrixQuantizers.Create(type, name, rows, cols);
        q.PrepareTensor(scaledValues);
        int g = q.GroupSize, groups = (cols + g - 1) / g;
        var grid = MatrixQuantizer.ClipGrid;
        Parallel.For(0, rows, new ParallelOptions { MaxDegreeOfParallelism = threads > 0 ? threads : Environment.ProcessorCount }, r =>
        {
            var w = scaledValues.AsSpan(r * cols, cols);
            var delta = new double[cols];
            var y = new double[cols]; // A·δ
            var d = new double[g];
            var cand = new double[g];
            var cur = new (float Lo, float Hi)[groups];
            for (int gi = 0; gi < groups; gi++)
            {
                int c0 = gi * g, n = Math.Min(g, cols - c0);
                q.InitGroupClipped(r, gi, w.Slice(c0, n), 1f, 1f);
                cur[gi] = (1f, 1f);
                for (int c = c0; c < c0 + n; c++) delta[c] = q.Quantize(r, c, w[c]) - (double)w[c];
            }
            if (!q.HasGroupParameters) return;
            for (int i = 0; i < cols; i++) y[i] = System.Numerics.Tensors.TensorPrimitives.Dot(a.AsSpan(i * cols, cols), delta);
            for (int sweep = 0; sweep < sweeps; sweep++)
                for (int gi = 0; gi < groups; gi++)
                {
                    int c0 = gi * g, n = Math.Min(g, cols - c0);
                    var vals = w.Slice(c0, n);
                    double bestGain = 0;
                    var best = cur[gi];
                    foreach (float lo in grid)
                        foreach (float hi in grid)
                        {
                            if ((lo, hi) == cur[gi]) continue;
                            q.InitGroupClipped(r, gi, vals, lo, hi);
                            for (int k = 0; k < n; k++) d[k] = q.Quantize(r, c0 + k, vals[k]) - (double)vals[k] - delta[c0 + k];
                            double change = ChangeOfError(d.AsSpan(0, n), y.AsSpan(c0, n), a, cols, c0);
                            if (change < bestGain)
                            {
                                bestGain = change;
                                best = (lo, hi);
                            }
                        }
                    // Leave the group on the chosen grid (the candidates overwrote it) and update δ and y = A·δ.
                    q.InitGroupClipped(r, gi, vals, best.Lo, best.Hi);
                    for (int k = 0; k < n; k++)
                    {
                        double nd = q.Quantize(r, c0 + k, vals[k]) - (double)vals[k];
                        cand[k] = nd - delta[c0 + k];
                        delta[c0 + k] = nd;
                    }
                    if (best == cur[gi]) continue;
                    cur[gi] = best;
                    for (int i = 0; i < cols; i++) y[i] += System.Numerics.Tensors.TensorPrimitives.Dot(a.AsSpan(i * cols + c0, n), cand.AsSpan(0, n));
                }
        });
        return q.Build();
    }

    /// <summary>2·dᵀ·y_g + dᵀ·A_gg·d: the change of δ·A·δᵀ when the group at columns c0.. changes its error by d (y = A·δ before).</summary>
    private static double ChangeOfError(ReadOnlySpan<double> d, ReadOnlySpan<double> yg, double[] a, int cols, int c0)
    {
        double e = 2 * System.Numerics.Tensors.TensorPrimitives.Dot(d, yg);
        for (int k = 0; k < d.Length; k++)
        {
            if (d[k] == 0) continue;
            e += d[k] * System.Numerics.Tensors.TensorPrimitives.Dot(a.AsSpan((c0 + k) * cols + c0, d.Length), d);
        }
        return e;
    }

    /// <summary>δᵀ·A·δ for a row-major n×n A.</summary>
    public static double QuadraticForm(ReadOnlySpan<double> d, double[] a, int n)
    {
        double e = 0;
        for (int i = 0; i < n; i++)
        {
            if (d[i] == 0) continue;
            e += d[i] * System.Numerics.Tensors.TensorPrimitives.Dot(a.AsSpan(i * n, n), d);
        }
        return e;
    }

    /// <summary>Σ_rows (Q − W)·XtX·(Q − W)ᵀ / N: the mean squared output error per calibration token of a quantized matrix.</summary>
    public static double OutputError(WeightMatrix reference, WeightMatrix quantized, InputStats st)
    {
        int cols = reference.Cols;
        var a = new float[cols];
        var b = new float[cols];
        var d = new double[cols];
        double e = 0;
        for (int r = 0; r < reference.Rows; r++)
        {
            reference.DequantizeRow(r, a);
            quantized.DequantizeRow(r, b);
            for (int c = 0; c < cols; c++) d[c] = b[c] - a[c];
            e += QuadraticForm(d, st.XtX, cols);
        }
        return e / Math.Max(1, st.Count);
    }
}
