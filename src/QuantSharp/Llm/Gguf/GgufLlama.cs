using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using QuantSharp.Llm.Formats;

namespace QuantSharp.Llm.Gguf;

/// <summary>One tensor as written by <see cref="GgufLlama.Export"/>.</summary>
public sealed record GgufExportedTensor(string Name, long[] Dims, GgmlType Requested, GgmlType Written, long Bytes)
{
    public long Elements => Dims.Aggregate(1L, (a, b) => a * b);
    /// <summary>True when the requested block type could not hold rows of this length and F16 was written instead.</summary>
    public bool FellBack => Requested != Written;
}

/// <summary>What an export wrote: every tensor with its stored type, and the honest bits per weight.</summary>
public sealed record GgufExportReport(string Path, long FileBytes, IReadOnlyList<GgufExportedTensor> Tensors)
{
    public long TensorBytes => Tensors.Sum(t => t.Bytes);
    public long Parameters => Tensors.Sum(t => t.Elements);
    /// <summary>Stored tensor bits ÷ parameters (norms included, metadata excluded).</summary>
    public double BitsPerWeight => TensorBytes * 8.0 / Parameters;
}

/// <summary>
/// Llama models in GGUF with llama.cpp's metadata keys and tensor names.
/// <para>Tensor names: token_embd.weight, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate (w1),
/// ffn_down (w2), ffn_up (w3)}.weight, output_norm.weight, output.weight (omitted with a shared classifier: llama.cpp
/// then uses token_embd as the output matrix). A [rows, cols] matrix is stored with ne = [cols, rows].</para>
/// <para>RoPE: llama2.c checkpoints are in Meta's layout, where RoPE rotates adjacent pairs (2i, 2i+1) of each head —
/// the same pairs llama.cpp's "normal" RoPE (the one its llama architecture uses) rotates. llama.cpp's Hugging Face
/// converter permutes Wq/Wk only to undo the Hugging Face export's permutation into the rotate-half layout; llama2.c
/// weights never went through that, so they are written unpermuted, and read back unpermuted.</para>
/// <para>Block types need rows that are whole blocks (32 elements, 256 for Q4_K). A matrix whose row length (ne[0]) is
/// not a multiple of the block — stories260K's W2 has rows of 172, and no stories260K row is 256 long — is written as F16 instead; the report
/// lists every such fallback and its bits per weight count the F16 bytes. RMSNorm vectors are always F32.</para>
/// </summary>
public static class GgufLlama
{
    public const string Architecture = "llama";

    /// <summary>llama.cpp's general.file_type (llama_ftype) for a model whose matrices are mostly <paramref name="t"/>.</summary>
    public static uint FileType(GgmlType t) => t switch
    {
        GgmlType.F32 => 0,
        GgmlType.F16 => 1,
        GgmlType.Q4_0 => 2,
        GgmlType.Q4_1 => 3,
        GgmlType.Q8_0 => 7,
        GgmlType.Q4_K => 14,
        GgmlType.BF16 => 32,
        _ => throw new QuantSharpException($"no llama file type for {t}"),
    };

    /// <summary>
    /// Writes <paramref name="weights"/> and <paramref name="tokenizer"/> as a GGUF v3 llama model at <paramref name="path"/>.
    /// Matrices (embedding and classifier included) go in <paramref name="type"/> unless <paramref name="embeddingType"/> /
    /// <paramref name="outputType"/> override them.
    /// </summary>
    public static GgufExportReport Export(LlamaWeights weights, ITextTokenizer tokenizer, string path, GgmlType type,
        string name = "llama2.c model", GgmlType? embeddingType = null, GgmlType? outputType = null)
    {
        var c = weights.Config;
        if (tokenizer.VocabSize != c.VocabSize) throw new QuantSharpException($"tokenizer has {tokenizer.VocabSize} tokens, the model {c.VocabSize}");
        foreach (var t in new[] { type, embeddingType ?? type, outputType ?? type })
            if (t is not (GgmlType.F32 or GgmlType.F16 or GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q4_K))
                throw new QuantSharpException($"GGUF export supports f32, f16, q8_0, q4_0, q4_1 and q4_k, not {GgmlTypes.Name(t)}");

        var w = new GgufWriter();
        AddModelMetadata(w, c, name, FileType(type));
        GgufTokenizer.Add(w, tokenizer);

        var written = new List<GgufExportedTensor>();
        void Matrix(string n, WeightMatrix m, GgmlType t)
        {
            var values = new float[(long)m.Rows * m.Cols];
            for (int r = 0; r < m.Rows; r++) m.DequantizeRow(r, values.AsSpan(r * m.Cols, m.Cols));
            GgmlType stored = m.Cols % GgmlTypes.BlockSize(t) == 0 ? t : GgmlType.F16;
            long[] dims = [m.Cols, m.Rows];
            var data = GgmlBlocks.Quantize(stored, values, m.Cols);
            w.AddTensor(n, dims, stored, data);
            written.Add(new(n, dims, t, stored, data.Length));
        }
        void Vector(string n, float[] v)
        {
            var data = GgmlBlocks.Quantize(GgmlType.F32, v, v.Length);
            w.AddTensor(n, [v.Length], GgmlType.F32, data);
            written.Add(new(n, [v.Length], GgmlType.F32, GgmlType.F32, data.Length));
        }

        Matrix("token_embd.weight", weights.TokenEmbedding, embeddingType ?? type);
        for (int i = 0; i < c.Layers; i++)
        {
            var l = weights.Layers[i];
            Vector($"blk.{i}.attn_norm.weight", l.RmsAtt);
            Matrix($"blk.{i}.attn_q.weight", l.Wq, type);
            Matrix($"blk.{i}.attn_k.weight", l.Wk, type);
            Matrix($"blk.{i}.attn_v.weight", l.Wv, type);
            Matrix($"blk.{i}.attn_output.weight", l.Wo, type);
            Vector($"blk.{i}.ffn_norm.weight", l.RmsFfn);
            Matrix($"blk.{i}.ffn_gate.weight", l.W1, type);
            Matrix($"blk.{i}.ffn_down.weight", l.W2, type);
            Matrix($"blk.{i}.ffn_up.weight", l.W3, type);
        }
        Vector("output_norm.weight", weights.RmsFinal);
        if (!ReferenceEquals(weights.Classifier, weights.TokenEmbedding)) Matrix("output.weight", weights.Classifier, outputType ?? type);

        w.Write(path);
        return new GgufExportReport(path, new FileInfo(path).Length, written);
    }

    /// <summary>general.* and llama.* keys of a llama model (general.file_type only when <paramref name="fileType"/> is given).</summary>
    internal static void AddModelMetadata(GgufWriter w, LlamaConfig c, string name, uint? fileType)
    {
        w.Add("general.architecture", Architecture);
        w.Add("general.name", name);
        if (fileType is uint ft) w.Add("general.file_type", ft);
        w.Add("llama.context_length", (uint)c.SeqLen);
        w.Add("llama.embedding_length", (uint)c.Dim);
        w.Add("llama.block_count", (uint)c.Layers);
        w.Add("llama.feed_forward_length", (uint)c.HiddenDim);
        w.Add("llama.rope.dimension_count", (uint)c.HeadSize);
        w.Add("llama.attention.head_count", (uint)c.Heads);
        w.Add("llama.attention.head_count_kv", (uint)c.KvHeads);
        w.Add("llama.attention.layer_norm_rms_epsilon", c.NormEps);
        w.Add("llama.rope.freq_base", c.RopeTheta);
        w.Add("llama.vocab_size", (uint)c.VocabSize);
    }

    // SentencePiece token types as llama.cpp numbers them.
    public const int TokenNormal = 1, TokenUnknown = 2, TokenControl = 3, TokenByte = 6;
    private const string SpaceMark = "\u2581";

    /// <summary>
    /// tokenizer.ggml.* keys from a llama2.c tokenizer. llama2.c's export replaced SentencePiece's "▁" with a space and
    /// wrote BOS/EOS as "\n&lt;s&gt;\n" / "\n&lt;/s&gt;\n"; GGUF holds the SentencePiece pieces, so both are undone here.
    /// Ids: 0 unknown, 1 BOS, 2 EOS (control), "&lt;0xHH&gt;" pieces are byte tokens.
    /// </summary>
    public static void AddTokenizer(GgufWriter w, Llama2cTokenizer tok)
    {
        int n = tok.VocabSize;
        var tokens = new string[n];
        var scores = new float[n];
        var types = new int[n];
        var utf8 = new UTF8Encoding(false, true);
        for (int i = 0; i < n; i++)
        {
            string piece;
            try
            {
                piece = utf8.GetString(tok.Piece(i));
            }
            catch (DecoderFallbackException)
            {
                throw new QuantSharpException($"tokenizer piece {i} is not valid UTF-8 and cannot be stored in GGUF");
            }
            types[i] = i switch
            {
                Llama2cTokenizer.Unk => TokenUnknown,
                Llama2cTokenizer.Bos or Llama2cTokenizer.Eos => TokenControl,
                _ => IsBytePiece(piece) ? TokenByte : TokenNormal,
            };
            if (i == Llama2cTokenizer.Bos) piece = "<s>";
            else if (i == Llama2cTokenizer.Eos) piece = "</s>";
            tokens[i] = piece.Replace(" ", SpaceMark, StringComparison.Ordinal);
            scores[i] = tok.Score(i);
        }
        w.Add("tokenizer.ggml.model", "llama");
        w.Add("tokenizer.ggml.tokens", GgufValue.Array(tokens));
        w.Add("tokenizer.ggml.scores", GgufValue.Array(scores));
        w.Add("tokenizer.ggml.token_type", GgufValue.Array(types));
        w.Add("tokenizer.ggml.bos_token_id", (uint)Llama2cTokenizer.Bos);
        w.Add("tokenizer.ggml.eos_token_id", (uint)Llama2cTokenizer.Eos);
        w.Add("tokenizer.ggml.unknown_token_id", (uint)Llama2cTokenizer.Unk);
        w.Add("tokenizer.ggml.add_bos_token", GgufValue.Bool(true));
        w.Add("tokenizer.ggml.add_eos_token", GgufValue.Bool(false));
    }

    private static bool IsBytePiece(string p) =>
        p.Length == 6 && p.StartsWith("<0x", StringComparison.Ordinal) && p[5] == '>' && Uri.IsHexDigit(p[3]) && Uri.IsHexDigit(p[4]);

    /// <summary>
    /// Reads a llama GGUF into <see cref="LlamaWeights"/> for <see cref="LlamaDecoder"/>. With <paramref name="keepBlocks"/>
    /// Q8_0/Q4_0/Q4_1 matrices stay in block form (<see cref="Q8DotMatrix{TBlock}"/>: the decoder's int8-activation
    /// product; ggml's block layouts are byte-identical to <see cref="BlockQ8_0"/>, <see cref="BlockQ4_0"/>,
    /// <see cref="BlockQ4_1"/>); every other type (f32, f16, bf16, q4_k) is dequantized to FP32 <see cref="F32Matrix"/>.
    /// Norm vectors are read as FP32.
    /// </summary>
    public static LlamaWeights LoadWeights(GgufFile f, bool keepBlocks = true)
    {
        string arch = f.GetString("general.architecture");
        if (arch != Architecture) throw new ModelFormatException($"{f.FileName}: general.architecture is '{arch}', only '{Architecture}' is supported");
        int dim = f.GetInt("llama.embedding_length");
        int heads = f.GetInt("llama.attention.head_count");
        int kvHeads = f.Has("llama.attention.head_count_kv") ? f.GetInt("llama.attention.head_count_kv") : heads;
        var emb = f.Tensor("token_embd.weight");
        int vocab = checked((int)emb.RowCount);
        bool shared = !f.TryGetTensor("output.weight", out _);
        var cfg = new LlamaConfig(dim, f.GetInt("llama.feed_forward_length"), f.GetInt("llama.block_count"), heads, kvHeads, vocab,
            f.GetInt("llama.context_length"), shared)
        {
            RopeTheta = f.Has("llama.rope.freq_base") ? f.GetFloat32("llama.rope.freq_base") : 10000f,
            NormEps = f.Has("llama.attention.layer_norm_rms_epsilon") ? f.GetFloat32("llama.attention.layer_norm_rms_epsilon") : 1e-5f,
        };
        cfg.Validate(f.FileName);
        if (f.Has("llama.rope.dimension_count") && f.GetInt("llama.rope.dimension_count") != cfg.HeadSize)
            throw new ModelFormatException($"{f.FileName}: llama.rope.dimension_count {f.GetInt("llama.rope.dimension_count")} differs from the head size {cfg.HeadSize} (partial RoPE is not supported)");

        WeightMatrix Mat(string n, int rows, int cols) => LoadMatrix(f, n, rows, cols, keepBlocks);
        float[] Vec(string n) => LoadVector(f, n, dim);

        int d = cfg.Dim, h = cfg.HiddenDim, kv = cfg.KvDim;
        var embM = Mat("token_embd.weight", vocab, d);
        var layers = new LlamaLayer[cfg.Layers];
        for (int i = 0; i < cfg.Layers; i++)
        {
            string p = $"blk.{i}.";
            layers[i] = new LlamaLayer(Vec(p + "attn_norm.weight"), Mat(p + "attn_q.weight", d, d), Mat(p + "attn_k.weight", kv, d),
                Mat(p + "attn_v.weight", kv, d), Mat(p + "attn_output.weight", d, d), Vec(p + "ffn_norm.weight"),
                Mat(p + "ffn_gate.weight", h, d), Mat(p + "ffn_down.weight", d, h), Mat(p + "ffn_up.weight", h, d));
        }
        var cls = shared ? embM : Mat("output.weight", vocab, d);
        return new LlamaWeights(cfg, embM, layers, Vec("output_norm.weight"), cls);
    }

    /// <summary>
    /// A [rows, cols] matrix tensor (ne = [cols, rows]). With <paramref name="keepBlocks"/> Q8_0/Q4_0/Q4_1 stay in block
    /// form (<see cref="Q8DotMatrix{TBlock}"/>), Q4_K and QuantSharp's private types in theirs; everything else (and
    /// everything with keepBlocks false) is dequantized to FP32.
    /// </summary>
    internal static WeightMatrix LoadMatrix(GgufFile f, string n, int rows, int cols, bool keepBlocks)
    {
        var t = f.Tensor(n);
        if (t.Dims.Length != 2 || t.Dims[0] != cols || t.Dims[1] != rows)
            throw new ModelFormatException($"{f.FileName}: tensor '{n}' has shape {t.Shape}, expected [{cols}, {rows}]");
        if (keepBlocks)
            switch (t.Type)
            {
                case GgmlType.Q8_0: return new Q8DotMatrix<BlockQ8_0>(n, rows, cols, Blocks<BlockQ8_0>(f, t));
                case GgmlType.Q4_0: return new Q8DotMatrix<BlockQ4_0>(n, rows, cols, Blocks<BlockQ4_0>(f, t));
                case GgmlType.Q4_1: return new Q8DotMatrix<BlockQ4_1>(n, rows, cols, Blocks<BlockQ4_1>(f, t));
                case GgmlType.Q4_K: return QuantSharpTypes.Decode(n, t.Type, rows, cols, f.TensorBytes(t))!;
            }
        // QuantSharp's own types (and padded ggml blocks) exist only in block form.
        if (keepBlocks && QuantSharpTypes.IsPrivate(t.Type)) return QuantSharpTypes.Decode(n, t.Type, rows, cols, f.TensorBytes(t))!;
        return F32Matrix.FromArray(n, rows, cols, f.ReadFloats(t));
    }

    /// <summary>A vector tensor of <paramref name="length"/> finite values, as FP32.</summary>
    internal static float[] LoadVector(GgufFile f, string n, int length)
    {
        var t = f.Tensor(n);
        if (t.Dims.Length != 1 || t.Dims[0] != length) throw new ModelFormatException($"{f.FileName}: tensor '{n}' has shape {t.Shape}, expected [{length}]");
        var v = f.ReadFloats(t);
        if (v.Any(x => !float.IsFinite(x))) throw new ModelFormatException($"{f.FileName}: tensor '{n}' holds non-finite values");
        return v;
    }

    // Copies a tensor's bytes into block structs; the struct must have exactly the ggml block size.
    private static TBlock[] Blocks<TBlock>(GgufFile f, GgufTensorInfo t) where TBlock : unmanaged
    {
        if (Unsafe.SizeOf<TBlock>() != GgmlTypes.TypeSize(t.Type))
            throw new InvalidOperationException($"{typeof(TBlock).Name} is {Unsafe.SizeOf<TBlock>()} bytes, ggml {t.Type} blocks are {GgmlTypes.TypeSize(t.Type)}");
        return MemoryMarshal.Cast<byte, TBlock>(f.TensorBytes(t)).ToArray();
    }

    /// <summary>
    /// Builds a <see cref="Llama2cTokenizer"/> from tokenizer.ggml.* (the inverse of <see cref="AddTokenizer"/>). The
    /// llama2.c tokenizer can only be constructed from its file, so the pieces are written to a temporary
    /// tokenizer.bin that is deleted after loading.
    /// </summary>
    public static Llama2cTokenizer LoadTokenizer(GgufFile f)
    {
        string model = f.GetString("tokenizer.ggml.model");
        if (model != "llama") throw new ModelFormatException($"{f.FileName}: tokenizer.ggml.model is '{model}', only the SentencePiece 'llama' tokenizer is supported");
        var tokens = f.GetArray<string>("tokenizer.ggml.tokens", GgufValueType.String);
        var scores = f.GetArray<float>("tokenizer.ggml.scores", GgufValueType.Float32);
        if (scores.Length != tokens.Length) throw new ModelFormatException($"{f.FileName}: {tokens.Length} tokens but {scores.Length} scores");
        if (f.Has("tokenizer.ggml.bos_token_id") && f.GetInt("tokenizer.ggml.bos_token_id") != Llama2cTokenizer.Bos
            || f.Has("tokenizer.ggml.eos_token_id") && f.GetInt("tokenizer.ggml.eos_token_id") != Llama2cTokenizer.Eos)
            throw new ModelFormatException($"{f.FileName}: BOS/EOS ids differ from llama2.c's 1/2, which the decoder assumes");
        var pieces = new byte[tokens.Length][];
        for (int i = 0; i < tokens.Length; i++)
        {
            string p = i == Llama2cTokenizer.Bos ? "\n<s>\n" : i == Llama2cTokenizer.Eos ? "\n</s>\n" : tokens[i].Replace(SpaceMark, " ", StringComparison.Ordinal);
            pieces[i] = Encoding.UTF8.GetBytes(p);
        }
        int maxLen = Math.Max(1, pieces.Max(p => p.Length));
        string tmp = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"quantsharp-gguf-tok-{Environment.ProcessId}-{Guid.NewGuid():N}.bin");
        try
        {
            using (var bw = new BinaryWriter(File.Create(tmp)))
            {
                bw.Write(maxLen);
                for (int i = 0; i < pieces.Length; i++)
                {
                    bw.Write(scores[i]);
                    bw.Write(pieces[i].Length);
                    bw.Write(pieces[i]);
                }
            }
            return Llama2cTokenizer.Load(tmp, tokens.Length);
        }
        finally
        {
            File.Delete(tmp);
        }
    }
}
