using System.Runtime.InteropServices;

namespace QuantSharp.Llm.Gguf;

/// <summary>One tensor as stored by <see cref="QuantizedGguf.Write"/>.</summary>
public sealed record StoredTensor(string Name, long[] Dims, string Format, GgmlType Type, long Bytes)
{
    public long Elements => Dims.Aggregate(1L, (a, b) => a * b);
    public bool Private => QuantSharpTypes.IsPrivate(Type);
}

/// <summary>
/// Writes a model whose matrices are already quantized (any mix of formats) to GGUF without re-quantizing: each matrix's
/// blocks go to the file byte for byte (<see cref="QuantSharpTypes.Encode"/>), so reading the file back gives the same
/// weights bit for bit. Metadata and tokenizer as <see cref="GgufLlama.Export"/>; plus quantsharp.quantization.type /
/// .method and, when a private type is used, quantsharp.private_types ("id=name" strings).
/// </summary>
public static class QuantizedGguf
{
    public static IReadOnlyList<StoredTensor> Write(LlamaWeights weights, Llama2cTokenizer tokenizer, string path, string type, string method, string name = "llama2.c model")
    {
        var c = weights.Config;
        if (tokenizer.VocabSize != c.VocabSize) throw new QuantSharpException($"tokenizer has {tokenizer.VocabSize} tokens, the model {c.VocabSize}");
        uint? fileType = type switch { "f32" => 0, "q4_0" => 2, "q4_1" => 3, "q8_0" => 7, "q4_k" => 14, _ => null };
        var w = new GgufWriter();
        GgufLlama.AddModelMetadata(w, c, name, fileType);
        GgufLlama.AddTokenizer(w, tokenizer);
        w.Add("quantsharp.quantization.type", type);
        w.Add("quantsharp.quantization.method", method);

        var stored = new List<StoredTensor>();
        void Matrix(string n, WeightMatrix m)
        {
            long[] dims = [m.Cols, m.Rows];
            var (t, data) = QuantSharpTypes.Encode(m) ?? (GgmlType.F32, MemoryMarshal.AsBytes(MatrixValues(m).AsSpan()).ToArray());
            w.AddTensor(n, dims, t, data);
            stored.Add(new StoredTensor(n, dims, m.TypeName, t, data.Length));
        }
        void Vector(string n, float[] v)
        {
            w.AddTensor(n, [v.Length], GgmlType.F32, MemoryMarshal.AsBytes(v.AsSpan()).ToArray());
            stored.Add(new StoredTensor(n, [v.Length], "f32", GgmlType.F32, 4L * v.Length));
        }
        Matrix("token_embd.weight", weights.TokenEmbedding);
        for (int i = 0; i < c.Layers; i++)
        {
            var l = weights.Layers[i];
            Vector($"blk.{i}.attn_norm.weight", l.RmsAtt);
            Matrix($"blk.{i}.attn_q.weight", l.Wq);
            Matrix($"blk.{i}.attn_k.weight", l.Wk);
            Matrix($"blk.{i}.attn_v.weight", l.Wv);
            Matrix($"blk.{i}.attn_output.weight", l.Wo);
            Vector($"blk.{i}.ffn_norm.weight", l.RmsFfn);
            Matrix($"blk.{i}.ffn_gate.weight", l.W1);
            Matrix($"blk.{i}.ffn_down.weight", l.W2);
            Matrix($"blk.{i}.ffn_up.weight", l.W3);
        }
        Vector("output_norm.weight", weights.RmsFinal);
        if (!ReferenceEquals(weights.Classifier, weights.TokenEmbedding)) Matrix("output.weight", weights.Classifier);
        var used = stored.Where(s => s.Private).Select(s => (uint)s.Type).Distinct().OrderBy(x => x).ToArray();
        if (used.Length > 0) w.Add("quantsharp.private_types", GgufValue.Array(used.Select(u => $"{u}={QuantSharpTypes.Names[u]}").ToArray()));
        w.Write(path);
        return stored;
    }

    private static float[] MatrixValues(WeightMatrix m)
    {
        var v = new float[(long)m.Rows * m.Cols];
        for (int r = 0; r < m.Rows; r++) m.DequantizeRow(r, v.AsSpan(r * m.Cols, m.Cols));
        return v;
    }
}
