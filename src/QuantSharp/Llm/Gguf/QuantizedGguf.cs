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
    /// <summary>
    /// Writes <paramref name="weights"/> (llama: llama2.c, GGUF or Hugging Face Llama; gpt2: Hugging Face GPT-2) with its
    /// tokenizer (<see cref="GgufTokenizer.Add"/>) under llama.cpp's architecture keys and tensor names
    /// (<see cref="GgufTensors.Of"/>). <paramref name="name"/> defaults to "llama2.c model" / "GPT-2 model".
    /// </summary>
    public static IReadOnlyList<StoredTensor> Write(ICausalLmWeights weights, ITextTokenizer tokenizer, string path, string type, string method, string? name = null)
    {
        if (tokenizer.VocabSize != weights.VocabSize) throw new QuantSharpException($"tokenizer has {tokenizer.VocabSize} tokens, the model {weights.VocabSize}");
        uint? fileType = type switch { "f32" => 0, "q4_0" => 2, "q4_1" => 3, "q8_0" => 7, "q4_k" => 14, _ => null };
        var w = new GgufWriter();
        switch (weights)
        {
            case LlamaWeights l: GgufLlama.AddModelMetadata(w, l.Config, name ?? "llama2.c model", fileType); break;
            case Gpt2.Gpt2Weights g: GgufGpt2.AddModelMetadata(w, g.Config, name ?? "GPT-2 model", fileType); break;
            default: throw new QuantSharpException($"no GGUF layout for architecture '{weights.Architecture}'");
        }
        GgufTokenizer.Add(w, tokenizer);
        w.Add("quantsharp.quantization.type", type);
        w.Add("quantsharp.quantization.method", method);

        var stored = new List<StoredTensor>();
        foreach (var e in GgufTensors.Of(weights))
        {
            if (e.Matrix is WeightMatrix m)
            {
                long[] dims = [m.Cols, m.Rows];
                var (t, data) = QuantSharpTypes.Encode(m) ?? (GgmlType.F32, MemoryMarshal.AsBytes(MatrixValues(m).AsSpan()).ToArray());
                w.AddTensor(e.Name, dims, t, data);
                stored.Add(new StoredTensor(e.Name, dims, m.TypeName, t, data.Length));
            }
            else
            {
                var v = e.Vector!;
                w.AddTensor(e.Name, [v.Length], GgmlType.F32, MemoryMarshal.AsBytes(v.AsSpan()).ToArray());
                stored.Add(new StoredTensor(e.Name, [v.Length], "f32", GgmlType.F32, 4L * v.Length));
            }
        }
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
