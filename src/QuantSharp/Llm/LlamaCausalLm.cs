using System.Globalization;

namespace QuantSharp.Llm;

/// <summary><see cref="LlamaWeights"/> seen through the architecture-neutral <see cref="ICausalLmWeights"/>.</summary>
public sealed partial record LlamaWeights : ICausalLmWeights
{
    string ICausalLmWeights.Architecture => "llama";
    int ICausalLmWeights.VocabSize => Config.VocabSize;
    int ICausalLmWeights.SeqLen => Config.SeqLen;

    IReadOnlyList<(string Key, string Value)> ICausalLmWeights.Hyperparameters =>
    [
        ("dim", Config.Dim.ToString(CultureInfo.InvariantCulture)),
        ("hidden_dim", Config.HiddenDim.ToString(CultureInfo.InvariantCulture)),
        ("n_layers", Config.Layers.ToString(CultureInfo.InvariantCulture)),
        ("n_heads", Config.Heads.ToString(CultureInfo.InvariantCulture)),
        ("n_kv_heads", Config.KvHeads.ToString(CultureInfo.InvariantCulture)),
        ("vocab_size", Config.VocabSize.ToString(CultureInfo.InvariantCulture)),
        ("seq_len", Config.SeqLen.ToString(CultureInfo.InvariantCulture)),
        ("rope_theta", Config.RopeTheta.ToString(CultureInfo.InvariantCulture)),
        ("norm_eps", Config.NormEps.ToString(CultureInfo.InvariantCulture)),
        ("classifier", Config.SharedClassifier ? "shared" : "separate"),
    ];

    ICausalLmWeights ICausalLmWeights.MapMatrices(Func<WeightMatrix, WeightMatrix> convert)
    {
        var emb = convert(TokenEmbedding);
        var cls = ReferenceEquals(Classifier, TokenEmbedding) ? emb : convert(Classifier);
        var layers = Layers.Select(l => l with
        {
            Wq = convert(l.Wq), Wk = convert(l.Wk), Wv = convert(l.Wv), Wo = convert(l.Wo),
            W1 = convert(l.W1), W2 = convert(l.W2), W3 = convert(l.W3),
        }).ToArray();
        return this with { TokenEmbedding = emb, Layers = layers, Classifier = cls };
    }

    public ICausalLm CreateDecoder(int threads = 0) => new LlamaCausalLm(new LlamaDecoder(this, threads));
}

/// <summary>A <see cref="LlamaDecoder"/> behind <see cref="ICausalLm"/>: each session owns one <see cref="LlamaState"/>.</summary>
public sealed class LlamaCausalLm(LlamaDecoder decoder) : ICausalLm
{
    public LlamaDecoder Decoder { get; } = decoder;
    public string Architecture => "llama";
    public int VocabSize => Decoder.Config.VocabSize;
    public int SeqLen => Decoder.Config.SeqLen;

    public ICausalLmSession NewSession() => new Session(Decoder);

    private sealed class Session(LlamaDecoder decoder) : ICausalLmSession
    {
        private readonly LlamaState _state = decoder.NewState();
        public float[] Forward(int token, int pos) => decoder.Forward(_state, token, pos);

        // The batched prompt path: bit-identical to token-by-token Forward (LlamaDecoder.ForwardBatch).
        public float[] Prefill(ReadOnlySpan<int> tokens, int pos0) => decoder.ForwardBatch(_state, tokens, pos0);

        public void ForwardAll(ReadOnlySpan<int> tokens, int pos0, Span<float> logits) => decoder.ForwardBatchAll(_state, tokens, pos0, logits);
    }
}

/// <summary>The llama2.c tokenizer behind <see cref="ITextTokenizer"/>.</summary>
public sealed partial class Llama2cTokenizer : ITextTokenizer
{
    public int BosId => Bos;
    public int EosId => Eos;
}
