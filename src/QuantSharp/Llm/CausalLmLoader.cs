using QuantSharp.Llm.Gguf;
using QuantSharp.Llm.HuggingFace;
using QuantSharp.Llm.Synthetic;

namespace QuantSharp.Llm;

/// <summary>A model opened from some source, with its tokenizer when one was found; disposing releases the file mappings.</summary>
public sealed class LoadedCausalLm(ICausalLmWeights weights, ITextTokenizer? tokenizer, string format, long fileBytes, IDisposable? owner) : IDisposable
{
    public ICausalLmWeights Weights { get; } = weights;
    public ITextTokenizer? Tokenizer { get; } = tokenizer;

    /// <summary>A short description of the source ("llama2.c Legacy checkpoint", "Hugging Face llama, 2 safetensors files", …).</summary>
    public string Format { get; } = format;

    /// <summary>Bytes of the files the weights come from (0 for a synthetic model).</summary>
    public long FileBytes { get; } = fileBytes;

    /// <summary>The object the weights were read from (a <see cref="Llama2cCheckpoint"/>, <see cref="Gguf.GgufFile"/>, <see cref="HuggingFace.HfCheckpoint"/>), or null.</summary>
    public object? Source => owner;

    public void Dispose() => owner?.Dispose();
}

/// <summary>
/// The one place that decides how a model is opened: a directory with config.json → Hugging Face safetensors;
/// a file starting with the GGUF magic → GGUF (llama or gpt2); any other file → a llama2.c checkpoint; a synthetic name → random weights of that shape.
/// </summary>
public static class CausalLmLoader
{
    /// <summary>
    /// Opens <paramref name="path"/>. <paramref name="tokenizerPath"/> overrides the tokenizer (tokenizer.bin for llama2.c,
    /// tokenizer.json or vocab.json for Hugging Face); otherwise the one beside the model is used if present.
    /// </summary>
    public static LoadedCausalLm Open(string path, string? tokenizerPath = null)
    {
        if (HfCheckpoint.IsHfDirectory(path))
        {
            var hf = HfCheckpoint.Open(path);
            try
            {
                var tok = HfTokenizer(path, tokenizerPath);
                return new LoadedCausalLm(hf.Weights, tok, $"Hugging Face {hf.ModelType}, {hf.ShardCount} safetensors file(s)", hf.FileBytes, hf);
            }
            catch
            {
                hf.Dispose();
                throw;
            }
        }
        if (Directory.Exists(path)) throw new QuantSharpException($"{path}: a directory without config.json is not a model");
        if (!File.Exists(path)) throw new QuantSharpException($"{path}: model file not found");
        if (IsGguf(path))
        {
            var g = GgufFile.Open(path);
            try
            {
                string arch = g.GetString("general.architecture");
                ICausalLmWeights w = arch == GgufGpt2.Architecture ? GgufGpt2.LoadWeights(g) : GgufLlama.LoadWeights(g);
                ITextTokenizer? tok = tokenizerPath is not null
                    ? arch == GgufGpt2.Architecture ? HfTokenizer(Path.GetDirectoryName(Path.GetFullPath(tokenizerPath))!, tokenizerPath) : Llama2cTokenizer.Load(tokenizerPath, w.VocabSize)
                    : g.Has("tokenizer.ggml.model") ? GgufTokenizer.Load(g) : null;
                return new LoadedCausalLm(w, tok, $"GGUF {arch}", new FileInfo(path).Length, g);
            }
            catch
            {
                g.Dispose();
                throw;
            }
        }
        var ck = Llama2cCheckpoint.Open(path);
        try
        {
            string beside = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", "tokenizer.bin");
            string? tp = tokenizerPath ?? (File.Exists(beside) ? beside : null);
            var tok = tp is null ? null : Llama2cTokenizer.Load(tp, ck.Weights.Config.VocabSize);
            return new LoadedCausalLm(ck.Weights, tok, $"llama2.c {ck.Layout} checkpoint", ck.FileBytes, ck);
        }
        catch
        {
            ck.Dispose();
            throw;
        }
    }

    /// <summary>True when the file starts with the GGUF magic ("GGUF"), whatever its extension.</summary>
    public static bool IsGguf(string path)
    {
        using var fs = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[4];
        return fs.Read(magic) == 4 && BitConverter.ToUInt32(magic) == GgufFile.Magic;
    }

    private static BpeTokenizer? HfTokenizer(string dir, string? tokenizerPath)
    {
        if (tokenizerPath is not null)
        {
            if (Path.GetFileName(tokenizerPath) == "vocab.json")
                return BpeTokenizer.LoadVocabMerges(tokenizerPath, Path.Combine(Path.GetDirectoryName(Path.GetFullPath(tokenizerPath))!, "merges.txt"));
            return BpeTokenizer.LoadJson(tokenizerPath);
        }
        string json = Path.Combine(dir, "tokenizer.json");
        if (File.Exists(json)) return BpeTokenizer.LoadJson(json);
        string vocab = Path.Combine(dir, "vocab.json"), merges = Path.Combine(dir, "merges.txt");
        if (File.Exists(vocab) && File.Exists(merges)) return BpeTokenizer.LoadVocabMerges(vocab, merges);
        return null;
    }

    /// <summary>The synthetic model names `--synthetic` accepts.</summary>
    public static IReadOnlyList<string> SyntheticNames => [.. SyntheticGpt2.Names, .. SyntheticModels.LlamaNames];

    /// <summary>Random weights of the named model's exact shapes, built directly in <paramref name="type"/> (no tokenizer).</summary>
    public static LoadedCausalLm Synthetic(string name, string type, ulong seed = 1) => name switch
    {
        "gpt2-124m" => new LoadedCausalLm(SyntheticGpt2.Create(SyntheticGpt2.ConfigOf(name), type, seed), null, $"synthetic {name} (random weights, seed {seed})", 0, null),
        "tinyllama-1.1b" => new LoadedCausalLm(SyntheticModels.CreateLlama(name, type, seed), null, $"synthetic {name} (random weights, seed {seed})", 0, null),
        _ => throw new QuantSharpException($"unknown synthetic model '{name}' (known: {string.Join(", ", SyntheticNames)})"),
    };
}
