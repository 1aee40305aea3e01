using System.Globalization;

namespace QuantSharp.Llm.Gpt2;

/// <summary>The shape of a GPT-2 decoder (Hugging Face config names: n_embd, n_inner, n_layer, n_head, vocab_size, n_positions).</summary>
public sealed record Gpt2Config(int Dim, int HiddenDim, int Layers, int Heads, int VocabSize, int SeqLen)
{
    /// <summary>LayerNorm ε added to the variance (layer_norm_epsilon, 1e-5 in GPT-2).</summary>
    public float NormEps { get; init; } = 1e-5f;

    public int HeadSize => Dim / Heads;

    public void Validate(string source)
    {
        if (Dim <= 0 || HiddenDim <= 0 || Layers <= 0 || Heads <= 0 || VocabSize <= 0 || SeqLen <= 0)
            throw new ModelFormatException($"{source}: invalid GPT-2 sizes (n_embd={Dim} n_inner={HiddenDim} n_layer={Layers} n_head={Heads} vocab_size={VocabSize} n_positions={SeqLen})");
        if (Dim % Heads != 0) throw new ModelFormatException($"{source}: n_embd {Dim} is not a multiple of n_head {Heads}");
        if (Dim > 1 << 16 || HiddenDim > 1 << 18 || Layers > 1024 || VocabSize > 1 << 22 || SeqLen > 1 << 20)
            throw new ModelFormatException($"{source}: absurd GPT-2 sizes (n_embd={Dim} n_inner={HiddenDim} n_layer={Layers} vocab_size={VocabSize} n_positions={SeqLen})");
        if (!(NormEps > 0)) throw new ModelFormatException($"{source}: layer_norm_epsilon must be positive, got {NormEps}");
    }
}

/// <summary>
/// One GPT-2 block. Matrices are [out, in] (Hugging Face's Conv1D stores [in, out]; loaders transpose):
/// Wqkv [3·dim, dim] gives q, k, v in that order; Wo [dim, dim]; Wfc [hidden, dim]; Wproj [dim, hidden].
/// LayerNorm gains/biases and all biases stay FP32.
/// </summary>
public sealed record Gpt2Layer(float[] Ln1Gain, float[] Ln1Bias, WeightMatrix Wqkv, float[] Bqkv, WeightMatrix Wo, float[] Bo,
    float[] Ln2Gain, float[] Ln2Bias, WeightMatrix Wfc, float[] Bfc, WeightMatrix Wproj, float[] Bproj)
{
    public IEnumerable<WeightMatrix> Matrices => [Wqkv, Wo, Wfc, Wproj];
}

/// <summary>All weights of a GPT-2 decoder. With a tied head (GPT-2's), <see cref="Head"/> is the token embedding itself.</summary>
public sealed record Gpt2Weights(Gpt2Config Config, WeightMatrix TokenEmbedding, WeightMatrix PositionEmbedding, IReadOnlyList<Gpt2Layer> Layers,
    float[] LnFGain, float[] LnFBias, WeightMatrix Head) : ICausalLmWeights
{
    public bool TiedHead => ReferenceEquals(Head, TokenEmbedding);

    public string Architecture => "gpt2";
    public int VocabSize => Config.VocabSize;
    public int SeqLen => Config.SeqLen;

    public IReadOnlyList<(string Key, string Value)> Hyperparameters =>
    [
        ("n_embd", Config.Dim.ToString(CultureInfo.InvariantCulture)),
        ("n_inner", Config.HiddenDim.ToString(CultureInfo.InvariantCulture)),
        ("n_layer", Config.Layers.ToString(CultureInfo.InvariantCulture)),
        ("n_head", Config.Heads.ToString(CultureInfo.InvariantCulture)),
        ("vocab_size", Config.VocabSize.ToString(CultureInfo.InvariantCulture)),
        ("n_positions", Config.SeqLen.ToString(CultureInfo.InvariantCulture)),
        ("layer_norm_epsilon", Config.NormEps.ToString(CultureInfo.InvariantCulture)),
        ("head", TiedHead ? "tied to wte" : "separate"),
    ];

    public IEnumerable<WeightMatrix> Matrices
    {
        get
        {
            yield return TokenEmbedding;
            yield return PositionEmbedding;
            foreach (var l in Layers)
                foreach (var m in l.Matrices) yield return m;
            if (!TiedHead) yield return Head;
        }
    }

    public IReadOnlyList<(string Name, int[] Shape, string Type, long Bytes)> TensorTable()
    {
        var t = new List<(string, int[], string, long)>();
        static (string, int[], string, long) M(WeightMatrix m) => (m.Name, [m.Rows, m.Cols], m.TypeName, m.Bytes);
        static (string, int[], string, long) V(string n, float[] v) => (n, [v.Length], "f32", 4L * v.Length);
        t.Add(M(TokenEmbedding));
        t.Add(M(PositionEmbedding));
        for (int i = 0; i < Layers.Count; i++)
        {
            var l = Layers[i];
            string p = $"h.{i}.";
            t.Add(V(p + "ln_1.weight", l.Ln1Gain));
            t.Add(V(p + "ln_1.bias", l.Ln1Bias));
            t.Add(M(l.Wqkv));
            t.Add(V(p + "attn.c_attn.bias", l.Bqkv));
            t.Add(M(l.Wo));
            t.Add(V(p + "attn.c_proj.bias", l.Bo));
            t.Add(V(p + "ln_2.weight", l.Ln2Gain));
            t.Add(V(p + "ln_2.bias", l.Ln2Bias));
            t.Add(M(l.Wfc));
            t.Add(V(p + "mlp.c_fc.bias", l.Bfc));
            t.Add(M(l.Wproj));
            t.Add(V(p + "mlp.c_proj.bias", l.Bproj));
        }
        t.Add(V("ln_f.weight", LnFGain));
        t.Add(V("ln_f.bias", LnFBias));
        if (!TiedHead) t.Add(M(Head));
        return t;
    }

    public ICausalLmWeights MapMatrices(Func<WeightMatrix, WeightMatrix> convert)
    {
        var wte = convert(TokenEmbedding);
        var head = TiedHead ? wte : convert(Head);
        var layers = Layers.Select(l => l with { Wqkv = convert(l.Wqkv), Wo = convert(l.Wo), Wfc = convert(l.Wfc), Wproj = convert(l.Wproj) }).ToArray();
        return this with { TokenEmbedding = wte, PositionEmbedding = convert(PositionEmbedding), Layers = layers, Head = head };
    }

    public ICausalLm CreateDecoder(int threads = 0) => new Gpt2Decoder(this, threads);

    /// <summary>Checks every matrix and vector has the shape <see cref="Config"/> implies; <paramref name="source"/> names the model.</summary>
    public void Validate(string source)
    {
        var c = Config;
        c.Validate(source);
        void M(WeightMatrix m, int rows, int cols)
        {
            if (m.Rows != rows || m.Cols != cols) throw new ModelFormatException($"{source}: '{m.Name}' is [{m.Rows},{m.Cols}], expected [{rows},{cols}]");
        }
        void V(string n, float[] v, int len)
        {
            if (v.Length != len) throw new ModelFormatException($"{source}: '{n}' has {v.Length} values, expected {len}");
            if (v.Any(x => !float.IsFinite(x))) throw new ModelFormatException($"{source}: '{n}' holds non-finite values");
        }
        M(TokenEmbedding, c.VocabSize, c.Dim);
        M(PositionEmbedding, c.SeqLen, c.Dim);
        M(Head, c.VocabSize, c.Dim);
        if (Layers.Count != c.Layers) throw new ModelFormatException($"{source}: {Layers.Count} blocks, n_layer is {c.Layers}");
        for (int i = 0; i < Layers.Count; i++)
        {
            var l = Layers[i];
            string p = $"h.{i}.";
            V(p + "ln_1.weight", l.Ln1Gain, c.Dim); V(p + "ln_1.bias", l.Ln1Bias, c.Dim);
            M(l.Wqkv, 3 * c.Dim, c.Dim); V(p + "attn.c_attn.bias", l.Bqkv, 3 * c.Dim);
            M(l.Wo, c.Dim, c.Dim); V(p + "attn.c_proj.bias", l.Bo, c.Dim);
            V(p + "ln_2.weight", l.Ln2Gain, c.Dim); V(p + "ln_2.bias", l.Ln2Bias, c.Dim);
            M(l.Wfc, c.HiddenDim, c.Dim); V(p + "mlp.c_fc.bias", l.Bfc, c.HiddenDim);
            M(l.Wproj, c.Dim, c.HiddenDim); V(p + "mlp.c_proj.bias", l.Bproj, c.Dim);
        }
        V("ln_f.weight", LnFGain, c.Dim); V("ln_f.bias", LnFBias, c.Dim);
    }
}
