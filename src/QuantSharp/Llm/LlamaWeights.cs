namespace QuantSharp.Llm;

/// <summary>One transformer block's weights: RMSNorm vectors in FP32, matrices in any <see cref="WeightMatrix"/> format.</summary>
public sealed record LlamaLayer(float[] RmsAtt, WeightMatrix Wq, WeightMatrix Wk, WeightMatrix Wv, WeightMatrix Wo,
    float[] RmsFfn, WeightMatrix W1, WeightMatrix W2, WeightMatrix W3)
{
    public IEnumerable<WeightMatrix> Matrices => [Wq, Wk, Wv, Wo, W1, W2, W3];
}

/// <summary>All weights of a Llama decoder. With a shared classifier, <see cref="Classifier"/> is the embedding table itself.</summary>
public sealed partial record LlamaWeights(LlamaConfig Config, WeightMatrix TokenEmbedding, IReadOnlyList<LlamaLayer> Layers, float[] RmsFinal, WeightMatrix Classifier)
{
    /// <summary>Every distinct matrix (the shared classifier once).</summary>
    public IEnumerable<WeightMatrix> Matrices
    {
        get
        {
            yield return TokenEmbedding;
            foreach (var l in Layers)
                foreach (var m in l.Matrices) yield return m;
            if (!ReferenceEquals(Classifier, TokenEmbedding)) yield return Classifier;
        }
    }

    /// <summary>(name, shape, type, bytes) for every stored tensor, norms included.</summary>
    public IReadOnlyList<(string Name, int[] Shape, string Type, long Bytes)> TensorTable()
    {
        var t = new List<(string, int[], string, long)>();
        t.Add((TokenEmbedding.Name, [TokenEmbedding.Rows, TokenEmbedding.Cols], TokenEmbedding.TypeName, TokenEmbedding.Bytes));
        for (int i = 0; i < Layers.Count; i++)
        {
            var l = Layers[i];
            t.Add(($"layers.{i}.attention_norm", [l.RmsAtt.Length], "f32", 4L * l.RmsAtt.Length));
            foreach (var m in new[] { l.Wq, l.Wk, l.Wv, l.Wo }) t.Add((m.Name, [m.Rows, m.Cols], m.TypeName, m.Bytes));
            t.Add(($"layers.{i}.ffn_norm", [l.RmsFfn.Length], "f32", 4L * l.RmsFfn.Length));
            foreach (var m in new[] { l.W1, l.W2, l.W3 }) t.Add((m.Name, [m.Rows, m.Cols], m.TypeName, m.Bytes));
        }
        t.Add(("norm", [RmsFinal.Length], "f32", 4L * RmsFinal.Length));
        if (!ReferenceEquals(Classifier, TokenEmbedding)) t.Add((Classifier.Name, [Classifier.Rows, Classifier.Cols], Classifier.TypeName, Classifier.Bytes));
        return t;
    }

    public long TotalBytes => TensorTable().Sum(x => x.Bytes);
    public long ParameterCount => TensorTable().Sum(x => x.Shape.Aggregate(1L, (a, b) => a * b));
}
