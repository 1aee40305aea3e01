namespace QuantSharp.Llm.Formats;

/// <summary>The weight formats a model can be converted to, by their CLI names.</summary>
public static class WeightFormats
{
    public static IReadOnlyList<string> Names { get; } = ["f32", "q8_0", "q4_0", "q4_1", "int8-channel", "int4-g32", "int4-g64", "int4-g128",
        "q4_k", "int3-g32", "int3-g64", "int3-g128", "int2-g32", "int2-g64", "int2-g128", "u8-tensor"];

    /// <summary>The matrix <paramref name="source"/> converted to <paramref name="type"/> (round to nearest).</summary>
    public static WeightMatrix Quantize(WeightMatrix source, string type) => type switch
    {
        "f32" => source,
        "q8_0" => new Q8DotMatrix<BlockQ8_0>(source.Name, source.Rows, source.Cols, BlockMatrix<BlockQ8_0>.QuantizeRows(source)),
        "q4_0" => new Q8DotMatrix<BlockQ4_0>(source.Name, source.Rows, source.Cols, BlockMatrix<BlockQ4_0>.QuantizeRows(source)),
        "q4_1" => new Q8DotMatrix<BlockQ4_1>(source.Name, source.Rows, source.Cols, BlockMatrix<BlockQ4_1>.QuantizeRows(source)),
        "int8-channel" => new Int8ChannelMatrix(source),
        "int4-g32" => new BlockMatrix<BlockInt4G32>(source.Name, source.Rows, source.Cols, BlockMatrix<BlockInt4G32>.QuantizeRows(source)),
        "int4-g64" => new BlockMatrix<BlockInt4G64>(source.Name, source.Rows, source.Cols, BlockMatrix<BlockInt4G64>.QuantizeRows(source)),
        "int4-g128" => new BlockMatrix<BlockInt4G128>(source.Name, source.Rows, source.Cols, BlockMatrix<BlockInt4G128>.QuantizeRows(source)),
        "q4_k" => new BlockMatrix<BlockQ4_K>(source.Name, source.Rows, source.Cols, BlockMatrix<BlockQ4_K>.QuantizeRows(source)),
        "int3-g32" => new BlockMatrix<BlockInt3G32>(source.Name, source.Rows, source.Cols, BlockMatrix<BlockInt3G32>.QuantizeRows(source)),
        "int3-g64" => new BlockMatrix<BlockInt3G64>(source.Name, source.Rows, source.Cols, BlockMatrix<BlockInt3G64>.QuantizeRows(source)),
        "int3-g128" => new BlockMatrix<BlockInt3G128>(source.Name, source.Rows, source.Cols, BlockMatrix<BlockInt3G128>.QuantizeRows(source)),
        "int2-g32" => new BlockMatrix<BlockInt2G32>(source.Name, source.Rows, source.Cols, BlockMatrix<BlockInt2G32>.QuantizeRows(source)),
        "int2-g64" => new BlockMatrix<BlockInt2G64>(source.Name, source.Rows, source.Cols, BlockMatrix<BlockInt2G64>.QuantizeRows(source)),
        "int2-g128" => new BlockMatrix<BlockInt2G128>(source.Name, source.Rows, source.Cols, BlockMatrix<BlockInt2G128>.QuantizeRows(source)),
        "u8-tensor" => U8TensorMatrix.Quantize(source),
        _ => throw new QuantSharpException($"unknown weight type '{type}' (known: {string.Join(", ", Names)})"),
    };

    /// <summary>
    /// The model with every weight matrix (attention, FFN, embedding/classifier) replaced by its <paramref name="type"/>
    /// form; RMSNorm vectors stay FP32. A shared classifier is quantized once and stays shared.
    /// </summary>
    public static LlamaWeights QuantizeModel(LlamaWeights w, string type)
    {
        var emb = Quantize(w.TokenEmbedding, type);
        var cls = ReferenceEquals(w.Classifier, w.TokenEmbedding) ? emb : Quantize(w.Classifier, type);
        var layers = w.Layers.Select(l => l with
        {
            Wq = Quantize(l.Wq, type), Wk = Quantize(l.Wk, type), Wv = Quantize(l.Wv, type), Wo = Quantize(l.Wo, type),
            W1 = Quantize(l.W1, type), W2 = Quantize(l.W2, type), W3 = Quantize(l.W3, type),
        }).ToArray();
        return w with { TokenEmbedding = emb, Layers = layers, Classifier = cls };
    }
}
