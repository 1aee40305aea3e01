namespace QuantSharp.Llm;

/// <summary>The shape of a Llama-family decoder (llama2.c's Config plus the derived sizes).</summary>
public sealed record LlamaConfig(int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int VocabSize, int SeqLen, bool SharedClassifier)
{
    /// <summary>RoPE base θ: frequency of pair i in a head of size hs is θ^(-2i/hs).</summary>
    public float RopeTheta { get; init; } = 10000f;

    /// <summary>RMSNorm ε added to mean(x²) (llama2.c uses 1e-5).</summary>
    public float NormEps { get; init; } = 1e-5f;

    public int HeadSize => Dim / Heads;
    public int KvDim => Dim * KvHeads / Heads;
    /// <summary>Query heads per key/value head (grouped-query attention).</summary>
    public int KvMul => Heads / KvHeads;

    /// <summary>Checks the sizes are positive and consistent; <paramref name="source"/> names the file in the error.</summary>
    public void Validate(string source)
    {
        if (Dim <= 0 || HiddenDim <= 0 || Layers <= 0 || Heads <= 0 || KvHeads <= 0 || VocabSize <= 0 || SeqLen <= 0)
            throw new ModelFormatException($"{source}: invalid llama2.c header (dim={Dim} hidden_dim={HiddenDim} n_layers={Layers} n_heads={Heads} n_kv_heads={KvHeads} vocab_size={VocabSize} seq_len={SeqLen})");
        if (Dim % Heads != 0 || Heads % KvHeads != 0 || HeadSize % 2 != 0)
            throw new ModelFormatException($"{source}: inconsistent heads: dim={Dim} n_heads={Heads} n_kv_heads={KvHeads} (dim must divide into heads of even size, n_heads a multiple of n_kv_heads)");
        if (Dim > 1 << 16 || HiddenDim > 1 << 18 || Layers > 1024 || VocabSize > 1 << 22 || SeqLen > 1 << 20)
            throw new ModelFormatException($"{source}: absurd llama2.c header sizes (dim={Dim} hidden_dim={HiddenDim} n_layers={Layers} vocab_size={VocabSize} seq_len={SeqLen})");
    }
}
