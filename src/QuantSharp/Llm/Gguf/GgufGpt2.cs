using QuantSharp.Llm.Gpt2;

namespace QuantSharp.Llm.Gguf;

/// <summary>One tensor of a model in GGUF order, under its llama.cpp name: a matrix or an FP32 vector (norms, biases).</summary>
public sealed record GgufTensorEntry(string Name, WeightMatrix? Matrix, float[]? Vector);

/// <summary>llama.cpp's tensor names and order for the architectures QuantSharp writes.</summary>
public static class GgufTensors
{
    /// <summary>
    /// Every tensor of <paramref name="weights"/> with its GGUF name, in file order. A tied head is listed once (as
    /// token_embd; llama.cpp then uses token_embd as the output matrix).
    /// </summary>
    public static IReadOnlyList<GgufTensorEntry> Of(ICausalLmWeights weights) => weights switch
    {
        LlamaWeights l => Llama(l),
        Gpt2Weights g => GgufGpt2.Tensors(g),
        _ => throw new QuantSharpException($"no GGUF layout for architecture '{weights.Architecture}'"),
    };

    private static List<GgufTensorEntry> Llama(LlamaWeights w)
    {
        var list = new List<GgufTensorEntry> { new("token_embd.weight", w.TokenEmbedding, null) };
        for (int i = 0; i < w.Layers.Count; i++)
        {
            var l = w.Layers[i];
            string p = $"blk.{i}.";
            list.AddRange([
                new(p + "attn_norm.weight", null, l.RmsAtt), new(p + "attn_q.weight", l.Wq, null), new(p + "attn_k.weight", l.Wk, null),
                new(p + "attn_v.weight", l.Wv, null), new(p + "attn_output.weight", l.Wo, null), new(p + "ffn_norm.weight", null, l.RmsFfn),
                new(p + "ffn_gate.weight", l.W1, null), new(p + "ffn_down.weight", l.W2, null), new(p + "ffn_up.weight", l.W3, null)]);
        }
        list.Add(new("output_norm.weight", null, w.RmsFinal));
        if (!ReferenceEquals(w.Classifier, w.TokenEmbedding)) list.Add(new("output.weight", w.Classifier, null));
        return list;
    }

    /// <summary>The matrices of <paramref name="weights"/> under their GGUF names without ".weight" (the names --keep rules match).</summary>
    public static IReadOnlyList<(string Name, WeightMatrix Matrix)> Matrices(ICausalLmWeights weights) =>
        Of(weights).Where(e => e.Matrix is not null).Select(e => (e.Name[..^".weight".Length], e.Matrix!)).ToList();
}

/// <summary>
/// GPT-2 in GGUF with llama.cpp's "gpt2" architecture: keys gpt2.context_length, .embedding_length,
/// .feed_forward_length, .block_count, .attention.head_count, .attention.layer_norm_epsilon; tensors token_embd,
/// position_embd, blk.N.{attn_norm, attn_qkv, attn_output, ffn_norm, ffn_up, ffn_down}.{weight, bias},
/// output_norm.{weight, bias}, output.weight (only when the head is not tied to token_embd). Matrices are stored
/// [out, in] with ne = [in, out] (Hugging Face's Conv1D [in, out] weights are transposed on loading, so this is
/// the decoder's own layout); attn_qkv holds q, k, v rows in that order.
/// </summary>
public static class GgufGpt2
{
    public const string Architecture = "gpt2";

    internal static void AddModelMetadata(GgufWriter w, Gpt2Config c, string name, uint? fileType)
    {
        w.Add("general.architecture", Architecture);
        w.Add("general.name", name);
        if (fileType is uint ft) w.Add("general.file_type", ft);
        w.Add("gpt2.context_length", (uint)c.SeqLen);
        w.Add("gpt2.embedding_length", (uint)c.Dim);
        w.Add("gpt2.feed_forward_length", (uint)c.HiddenDim);
        w.Add("gpt2.block_count", (uint)c.Layers);
        w.Add("gpt2.attention.head_count", (uint)c.Heads);
        w.Add("gpt2.attention.layer_norm_epsilon", c.NormEps);
    }

    internal static List<GgufTensorEntry> Tensors(Gpt2Weights w)
    {
        var list = new List<GgufTensorEntry> { new("token_embd.weight", w.TokenEmbedding, null), new("position_embd.weight", w.PositionEmbedding, null) };
        for (int i = 0; i < w.Layers.Count; i++)
        {
            var l = w.Layers[i];
            string p = $"blk.{i}.";
            list.AddRange([
                new(p + "attn_norm.weight", null, l.Ln1Gain), new(p + "attn_norm.bias", null, l.Ln1Bias),
                new(p + "attn_qkv.weight", l.Wqkv, null), new(p + "attn_qkv.bias", null, l.Bqkv),
                new(p + "attn_output.weight", l.Wo, null), new(p + "attn_output.bias", null, l.Bo),
                new(p + "ffn_norm.weight", null, l.Ln2Gain), new(p + "ffn_norm.bias", null, l.Ln2Bias),
                new(p + "ffn_up.weight", l.Wfc, null), new(p + "ffn_up.bias", null, l.Bfc),
                new(p + "ffn_down.weight", l.Wproj, null), new(p + "ffn_down.bias", null, l.Bproj)]);
        }
        list.Add(new("output_norm.weight", null, w.LnFGain));
        list.Add(new("output_norm.bias", null, w.LnFBias));
        if (!w.TiedHead) list.Add(new("output.weight", w.Head, null));
        return list;
    }

    /// <summary>Reads a gpt2 GGUF into <see cref="Gpt2Weights"/> (block types kept as <see cref="GgufLlama.LoadWeights"/> keeps them).</summary>
    public static Gpt2Weights LoadWeights(GgufFile f, bool keepBlocks = true)
    {
        string arch = f.GetString("general.architecture");
        if (arch != Architecture) throw new ModelFormatException($"{f.FileName}: general.architecture is '{arch}', expected '{Architecture}'");
        int dim = f.GetInt("gpt2.embedding_length");
        var emb = f.Tensor("token_embd.weight");
        var c = new Gpt2Config(dim, f.GetInt("gpt2.feed_forward_length"), f.GetInt("gpt2.block_count"), f.GetInt("gpt2.attention.head_count"),
            checked((int)emb.RowCount), f.GetInt("gpt2.context_length"))
        {
            NormEps = f.Has("gpt2.attention.layer_norm_epsilon") ? f.GetFloat32("gpt2.attention.layer_norm_epsilon") : 1e-5f,
        };
        c.Validate(f.FileName);
        WeightMatrix M(string n, int rows, int cols) => GgufLlama.LoadMatrix(f, n, rows, cols, keepBlocks);
        float[] V(string n, int len) => GgufLlama.LoadVector(f, n, len);
        int d = c.Dim, h = c.HiddenDim;
        var wte = M("token_embd.weight", c.VocabSize, d);
        var layers = new Gpt2Layer[c.Layers];
        for (int i = 0; i < c.Layers; i++)
        {
            string p = $"blk.{i}.";
            layers[i] = new Gpt2Layer(V(p + "attn_norm.weight", d), V(p + "attn_norm.bias", d),
                M(p + "attn_qkv.weight", 3 * d, d), V(p + "attn_qkv.bias", 3 * d),
                M(p + "attn_output.weight", d, d), V(p + "attn_output.bias", d),
                V(p + "ffn_norm.weight", d), V(p + "ffn_norm.bias", d),
                M(p + "ffn_up.weight", h, d), V(p + "ffn_up.bias", h),
                M(p + "ffn_down.weight", d, h), V(p + "ffn_down.bias", d));
        }
        var head = f.TryGetTensor("output.weight", out _) ? M("output.weight", c.VocabSize, d) : wte;
        var w = new Gpt2Weights(c, wte, M("position_embd.weight", c.SeqLen, d), layers, V("output_norm.weight", d), V("output_norm.bias", d), head);
        w.Validate(f.FileName);
        return w;
    }
}
