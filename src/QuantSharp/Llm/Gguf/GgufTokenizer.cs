using QuantSharp.Llm.HuggingFace;

namespace QuantSharp.Llm.Gguf;

/// <summary>
/// tokenizer.ggml.* keys for every tokenizer QuantSharp loads, in the two forms llama.cpp reads:
/// <list type="bullet">
/// <item>"llama" (SentencePiece): llama2.c's tokenizer.bin (<see cref="GgufLlama.AddTokenizer"/>) and Hugging Face
/// SentencePiece-style BPE (Llama's tokenizer.json). llama.cpp's SentencePiece tokenizer repeatedly merges the adjacent
/// pair whose concatenation is the highest-scoring token (leftmost on ties); Hugging Face BPE merges the pair with the
/// lowest merge rank. With score(t) = −(rank of the first merge that produces t) the two choose the same merge at each
/// step, since every merge result is a vocabulary token; tokens no merge produces (characters, bytes, control) get
/// score 0 — they are never the result of joining two symbols.</item>
/// <item>"gpt2" (byte-level BPE, pre-tokenizer "gpt-2"): GPT-2's tokenizer, tokens in the byte↔unicode form, the merges
/// list ("a b" strings, rank order).</item>
/// </list>
/// Token types as llama.cpp numbers them: 1 normal, 2 unknown, 3 control, 6 byte.
/// </summary>
public static class GgufTokenizer
{
    public const string SentencePieceModel = "llama", ByteLevelModel = "gpt2";

    public static void Add(GgufWriter w, ITextTokenizer tokenizer)
    {
        switch (tokenizer)
        {
            case Llama2cTokenizer l: GgufLlama.AddTokenizer(w, l); break;
            case BpeTokenizer { Style: BpeStyle.SentencePiece } b: AddSentencePiece(w, b); break;
            case BpeTokenizer b: AddByteLevel(w, b); break;
            default: throw new QuantSharpException($"a {tokenizer.GetType().Name} cannot be stored in GGUF");
        }
    }

    private static void AddSentencePiece(GgufWriter w, BpeTokenizer b)
    {
        int n = b.VocabSize;
        var tokens = new string[n];
        var scores = new float[n];
        var types = new int[n];
        for (int i = 0; i < n; i++)
        {
            tokens[i] = b.Piece(i);
            types[i] = i == b.UnknownId ? GgufLlama.TokenUnknown
                : b.IsSpecial(i) ? GgufLlama.TokenControl
                : IsBytePiece(tokens[i]) ? GgufLlama.TokenByte : GgufLlama.TokenNormal;
        }
        var merges = b.Merges;
        for (int r = merges.Count - 1; r >= 0; r--)
            if (b.TokenId(merges[r].A + merges[r].B) is int t) scores[t] = -r;
        w.Add("tokenizer.ggml.model", SentencePieceModel);
        w.Add("tokenizer.ggml.tokens", GgufValue.Array(tokens));
        w.Add("tokenizer.ggml.scores", GgufValue.Array(scores));
        w.Add("tokenizer.ggml.token_type", GgufValue.Array(types));
        w.Add("tokenizer.ggml.bos_token_id", (uint)b.BosId);
        w.Add("tokenizer.ggml.eos_token_id", (uint)b.EosId);
        if (b.UnknownId >= 0) w.Add("tokenizer.ggml.unknown_token_id", (uint)b.UnknownId);
        w.Add("tokenizer.ggml.add_bos_token", GgufValue.Bool(true));
        w.Add("tokenizer.ggml.add_eos_token", GgufValue.Bool(false));
        w.Add("tokenizer.ggml.add_space_prefix", GgufValue.Bool(b.Prefix != PrefixSpace.None));
    }

    private static void AddByteLevel(GgufWriter w, BpeTokenizer b)
    {
        if (b.Prefix != PrefixSpace.None) throw new QuantSharpException("a byte-level tokenizer with add_prefix_space has no GGUF form (llama.cpp's gpt-2 pre-tokenizer adds no space)");
        int n = b.VocabSize;
        var tokens = new string[n];
        var types = new int[n];
        for (int i = 0; i < n; i++)
        {
            tokens[i] = b.Piece(i);
            types[i] = b.IsSpecial(i) ? GgufLlama.TokenControl : GgufLlama.TokenNormal;
        }
        w.Add("tokenizer.ggml.model", ByteLevelModel);
        w.Add("tokenizer.ggml.pre", "gpt-2");
        w.Add("tokenizer.ggml.tokens", GgufValue.Array(tokens));
        w.Add("tokenizer.ggml.token_type", GgufValue.Array(types));
        w.Add("tokenizer.ggml.merges", GgufValue.Array(b.Merges.Select(m => $"{m.A} {m.B}").ToArray()));
        w.Add("tokenizer.ggml.bos_token_id", (uint)b.BosId);
        w.Add("tokenizer.ggml.eos_token_id", (uint)b.EosId);
        w.Add("tokenizer.ggml.add_bos_token", GgufValue.Bool(false));
    }

    /// <summary>
    /// The tokenizer stored in <paramref name="f"/>: "llama" → <see cref="Llama2cTokenizer"/> (SentencePiece merging by
    /// score), "gpt2" → a byte-level <see cref="BpeTokenizer"/> (control tokens are its special tokens).
    /// </summary>
    public static ITextTokenizer Load(GgufFile f)
    {
        string model = f.GetString("tokenizer.ggml.model");
        if (model == SentencePieceModel) return GgufLlama.LoadTokenizer(f);
        if (model != ByteLevelModel) throw new ModelFormatException($"{f.FileName}: tokenizer.ggml.model '{model}' is not supported ('llama' or 'gpt2')");
        var tokens = f.GetArray<string>("tokenizer.ggml.tokens", GgufValueType.String);
        var mergeText = f.GetArray<string>("tokenizer.ggml.merges", GgufValueType.String);
        var types = f.Has("tokenizer.ggml.token_type") ? f.GetArray<int>("tokenizer.ggml.token_type", GgufValueType.Int32) : new int[tokens.Length];
        if (types.Length != tokens.Length) throw new ModelFormatException($"{f.FileName}: {tokens.Length} tokens but {types.Length} token types");
        var merges = new (string, string)[mergeText.Length];
        for (int i = 0; i < merges.Length; i++)
        {
            string m = mergeText[i];
            int sp = m.IndexOf(' ', 1);
            if (sp <= 0 || sp == m.Length - 1) throw new ModelFormatException($"{f.FileName}: merge {i} '{m}' is not two pieces separated by a space");
            merges[i] = (m[..sp], m[(sp + 1)..]);
        }
        var special = Enumerable.Range(0, tokens.Length).Where(i => types[i] == GgufLlama.TokenControl).ToHashSet();
        return BpeTokenizer.Create(BpeStyle.ByteLevel, tokens, merges, special, byteFallback: false, unknownId: -1, PrefixSpace.None, f.FileName);
    }

    private static bool IsBytePiece(string p) =>
        p.Length == 6 && p.StartsWith("<0x", StringComparison.Ordinal) && p[5] == '>' && Uri.IsHexDigit(p[3]) && Uri.IsHexDigit(p[4]);
}
