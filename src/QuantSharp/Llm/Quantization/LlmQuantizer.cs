using System.Text.RegularExpressions;
using QuantSharp.Llm.Gpt2;

namespace QuantSharp.Llm.Quantization;

public enum QuantMethod
{
    /// <summary>Round to nearest with the format's min/max rule.</summary>
    Rtn,
    /// <summary>GPTQ with the Hessian of each matrix's calibration inputs.</summary>
    Gptq,
    /// <summary>AWQ scaling (folded into the previous op), then round to nearest.</summary>
    Awq,
    /// <summary>Round to nearest with each group's range searched under the importance Σx² of its input columns.</summary>
    Imatrix,
}

/// <summary>A per-tensor override: tensors whose name matches <see cref="Pattern"/> (glob: * and ?) get <see cref="Type"/>.</summary>
public sealed record KeepRule(string Pattern, string Type)
{
    /// <summary>Parses "PATTERN=TYPE".</summary>
    public static KeepRule Parse(string text)
    {
        int eq = text.LastIndexOf('=');
        if (eq <= 0 || eq == text.Length - 1) throw new QuantSharpException($"--keep '{text}': expected PATTERN=TYPE (e.g. token_embd*=f32)");
        var rule = new KeepRule(text[..eq], text[(eq + 1)..]);
        if (!MatrixQuantizers.Types.Contains(rule.Type)) throw new QuantSharpException($"--keep '{text}': unknown type '{rule.Type}' (known: {string.Join(", ", MatrixQuantizers.Types)})");
        return rule;
    }

    /// <summary>Whether the GGUF tensor name (with or without ".weight") matches.</summary>
    public bool Matches(string tensor)
    {
        var re = new Regex("^" + Regex.Escape(Pattern).Replace("\\*", ".*").Replace("\\?", ".") + "$");
        return re.IsMatch(tensor) || re.IsMatch(tensor + ".weight");
    }
}

public sealed record LlmQuantizeOptions
{
    /// <summary>The type of every matrix no rule names.</summary>
    public required string Type { get; init; }
    public QuantMethod Method { get; init; } = QuantMethod.Rtn;
    /// <summary>Overrides, first match wins; checked before <see cref="LlmQuantizer.DefaultKeep"/>.</summary>
    public IReadOnlyList<KeepRule> Keep { get; init; } = [];
    /// <summary>Whether the default rules (embedding and output head in q8_0) apply after <see cref="Keep"/>.</summary>
    public bool DefaultKeep { get; init; } = true;
    public GptqOptions Gptq { get; init; } = new();
    public AwqOptions Awq { get; init; } = new();
    public int Threads { get; init; }
}

/// <summary>One quantized tensor: its GGUF name, type, size and (with calibration data) its output error.</summary>
public sealed record QuantizedTensor(string Name, int Rows, int Cols, string Type, long Bytes, double? RelativeOutputError)
{
    public double BitsPerWeight => Bytes * 8.0 / ((long)Rows * Cols);
}

public sealed record LlmQuantizeResult(LlamaWeights Weights, IReadOnlyList<QuantizedTensor> Tensors, IReadOnlyList<AwqSite> AwqSites);

public sealed record Gpt2QuantizeResult(Gpt2Weights Weights, IReadOnlyList<QuantizedTensor> Tensors, IReadOnlyList<AwqSite> AwqSites);

/// <summary>Quantizes every matrix of a Llama model with one method, resolving per-tensor types from the keep rules.</summary>
public static class LlmQuantizer
{
    /// <summary>
    /// Applied after the user's rules: the token embedding and the output head stay at 8 bits (q8_0): they are a large
    /// share of a small model's weights, the embedding is a lookup (no calibration Hessian), and errors in the head hit
    /// every logit. GPT-2's position embedding is a lookup too. Override with e.g. --keep token_embd=int4-g32.
    /// </summary>
    public static IReadOnlyList<KeepRule> DefaultKeep { get; } = [new("token_embd", "q8_0"), new("position_embd", "q8_0"), new("output", "q8_0")];

    /// <summary>llama.cpp's tensor names of the model's matrices, in file order (output only when separate).</summary>
    public static IReadOnlyList<(string Name, WeightMatrix Matrix)> Names(LlamaWeights w)
    {
        var list = new List<(string, WeightMatrix)> { ("token_embd", w.TokenEmbedding) };
        for (int i = 0; i < w.Layers.Count; i++)
        {
            var l = w.Layers[i];
            list.AddRange([($"blk.{i}.attn_q", l.Wq), ($"blk.{i}.attn_k", l.Wk), ($"blk.{i}.attn_v", l.Wv), ($"blk.{i}.attn_output", l.Wo),
                ($"blk.{i}.ffn_gate", l.W1), ($"blk.{i}.ffn_down", l.W2), ($"blk.{i}.ffn_up", l.W3)]);
        }
        if (!ReferenceEquals(w.Classifier, w.TokenEmbedding)) list.Add(("output", w.Classifier));
        return list;
    }

    public static string TypeFor(string tensor, LlmQuantizeOptions o)
    {
        foreach (var r in o.Keep)
            if (r.Matches(tensor)) return r.Type;
        if (o.DefaultKeep)
            foreach (var r in DefaultKeep)
                if (r.Matches(tensor)) return r.Type;
        return o.Type;
    }

    /// <summary>
    /// Quantizes <paramref name="fp32"/>. GPTQ, AWQ and imatrix need <paramref name="calib"/> (statistics of the FP32
    /// model, <see cref="Calibrator.Collect(LlamaWeights, IReadOnlyList{int[]}, int)"/>); a matrix without statistics
    /// (the token embedding when the classifier is separate) falls back to round to nearest. RMSNorm vectors stay FP32
    /// (AWQ rescales them).
    /// </summary>
    public static LlmQuantizeResult Quantize(LlamaWeights fp32, LlmQuantizeOptions o, CalibrationData? calib)
    {
        Check(o, calib);
        var names = Names(fp32);
        var typeOf = names.ToDictionary(n => n.Matrix, n => TypeFor(n.Name, o));
        var source = fp32;
        IReadOnlyList<AwqSite> sites = [];
        IReadOnlyDictionary<WeightMatrix, float[]> awqScales = new Dictionary<WeightMatrix, float[]>();
        if (o.Method == QuantMethod.Awq) (source, sites, awqScales) = Awq.ApplyWithScales(fp32, calib!, m => typeOf[m], o.Awq);
        var (result, report) = QuantizeAll(names, Names(source), typeOf, awqScales, o, calib);
        var layers = source.Layers.Select(l => l with
        {
            Wq = result[l.Wq], Wk = result[l.Wk], Wv = result[l.Wv], Wo = result[l.Wo], W1 = result[l.W1], W2 = result[l.W2], W3 = result[l.W3],
        }).ToArray();
        var emb = result[source.TokenEmbedding];
        var cls = ReferenceEquals(source.Classifier, source.TokenEmbedding) ? emb : result[source.Classifier];
        return new LlmQuantizeResult(source with { TokenEmbedding = emb, Layers = layers, Classifier = cls }, report, sites);
    }

    /// <summary>llama.cpp's GPT-2 tensor names of the model's matrices (output only when the head is not tied to wte).</summary>
    public static IReadOnlyList<(string Name, WeightMatrix Matrix)> Names(Gpt2Weights w)
    {
        var list = new List<(string, WeightMatrix)> { ("token_embd", w.TokenEmbedding), ("position_embd", w.PositionEmbedding) };
        for (int i = 0; i < w.Layers.Count; i++)
        {
            var l = w.Layers[i];
            list.AddRange([($"blk.{i}.attn_qkv", l.Wqkv), ($"blk.{i}.attn_output", l.Wo), ($"blk.{i}.ffn_up", l.Wfc), ($"blk.{i}.ffn_down", l.Wproj)]);
        }
        if (!w.TiedHead) list.Add(("output", w.Head));
        return list;
    }

    /// <summary>
    /// Quantizes a GPT-2 model with the same methods and rules (<see cref="Calibrator.Collect(Gpt2Weights, IReadOnlyList{int[]}, int)"/>
    /// for calibration; AWQ's folds: <see cref="Awq.ApplyWithScales(Gpt2Weights, CalibrationData, Func{WeightMatrix, string}, AwqOptions?)"/>).
    /// LayerNorm vectors and biases stay FP32.
    /// </summary>
    public static Gpt2QuantizeResult Quantize(Gpt2Weights fp32, LlmQuantizeOptions o, CalibrationData? calib)
    {
        Check(o, calib);
        var names = Names(fp32);
        var typeOf = names.ToDictionary(n => n.Matrix, n => TypeFor(n.Name, o));
        var source = fp32;
        IReadOnlyList<AwqSite> sites = [];
        IReadOnlyDictionary<WeightMatrix, float[]> awqScales = new Dictionary<WeightMatrix, float[]>();
        if (o.Method == QuantMethod.Awq) (source, sites, awqScales) = Awq.ApplyWithScales(fp32, calib!, m => typeOf[m], o.Awq);
        var (result, report) = QuantizeAll(names, Names(source), typeOf, awqScales, o, calib);
        var layers = source.Layers.Select(l => l with { Wqkv = result[l.Wqkv], Wo = result[l.Wo], Wfc = result[l.Wfc], Wproj = result[l.Wproj] }).ToArray();
        var wte = result[source.TokenEmbedding];
        var head = source.TiedHead ? wte : result[source.Head];
        return new Gpt2QuantizeResult(source with { TokenEmbedding = wte, PositionEmbedding = result[source.PositionEmbedding], Layers = layers, Head = head }, report, sites);
    }

    private static void Check(LlmQuantizeOptions o, CalibrationData? calib)
    {
        if (!MatrixQuantizers.Types.Contains(o.Type)) throw new QuantSharpException($"unknown weight type '{o.Type}' (known: {string.Join(", ", MatrixQuantizers.Types)})");
        if (o.Method != QuantMethod.Rtn && calib is null) throw new QuantSharpException($"method {o.Method.ToString().ToLowerInvariant()} needs calibration text (--calib FILE)");
    }

    /// <summary>
    /// Quantizes every matrix of <paramref name="source"/> (the FP32 model, or AWQ's scaled copy: same order as
    /// <paramref name="names"/>, whose matrices key the types, statistics and AWQ scales).
    /// </summary>
    private static (Dictionary<WeightMatrix, WeightMatrix> Result, List<QuantizedTensor> Report) QuantizeAll(
        IReadOnlyList<(string Name, WeightMatrix Matrix)> names, IReadOnlyList<(string Name, WeightMatrix Matrix)> source,
        Dictionary<WeightMatrix, string> typeOf, IReadOnlyDictionary<WeightMatrix, float[]> awqScales, LlmQuantizeOptions o, CalibrationData? calib)
    {
        var result = new Dictionary<WeightMatrix, WeightMatrix>();
        var report = new List<QuantizedTensor>();
        for (int i = 0; i < source.Count; i++)
        {
            var (name, m) = source[i];
            var original = names[i].Matrix;
            string type = typeOf[original];
            var stats = calib?.For(original);
            var values = MatrixQuantizers.Values(m);
            WeightMatrix q = (o.Method, stats) switch
            {
                (_, _) when type == "f32" => m,
                (QuantMethod.Gptq, not null) => Gptq.Quantize(m.Name, m.Rows, m.Cols, values, type, stats.Hessian(), o.Gptq, o.Threads),
                (QuantMethod.Imatrix, not null) => MatrixQuantizers.RoundToNearest(m.Name, m.Rows, m.Cols, values, type, stats.Importance()),
                (QuantMethod.Awq, not null) when o.Awq.ClipSearch => Awq.QuantizeClipped(m.Name, m.Rows, m.Cols, values, type, awqScales.GetValueOrDefault(original), stats, threads: o.Threads),
                _ => MatrixQuantizers.RoundToNearest(m.Name, m.Rows, m.Cols, values, type),
            };
            result[m] = q;
            double? rel = null;
            if (stats is not null)
            {
                // Output error relative to the output energy, both on the calibration inputs x. For AWQ the matrix is
                // W·diag(s) and its input x/s, so both are measured on (Q − W·diag(s))·diag(1/s) and W: the same layer output.
                var s = awqScales.GetValueOrDefault(original);
                var qv = MatrixQuantizers.Values(q);
                var d = new double[m.Cols];
                var row = new double[m.Cols];
                double e = 0, norm = 0;
                for (int r = 0; r < m.Rows; r++)
                {
                    for (int c = 0; c < m.Cols; c++)
                    {
                        double sc = s?[c] ?? 1f;
                        row[c] = values[r * m.Cols + c] / sc;
                        d[c] = (qv[r * m.Cols + c] - values[r * m.Cols + c]) / sc;
                    }
                    e += Awq.QuadraticForm(d, stats.XtX, m.Cols);
                    norm += Awq.QuadraticForm(row, stats.XtX, m.Cols);
                }
                rel = norm > 0 ? e / norm : 0;
            }
            report.Add(new QuantizedTensor(name, m.Rows, m.Cols, q.TypeName, q.Bytes, rel));
        }
        return (result, report);
    }
}
