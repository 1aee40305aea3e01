using QuantSharp.Llm.Gguf;

namespace QuantSharp.Llm;

/// <summary>
/// A Llama model from a llama2.c checkpoint (memory-mapped, weights are views) or a GGUF file (weights read into memory
/// in their stored format: Q8_0/Q4_0/Q4_1/Q4_K and QuantSharp's own types stay in block form, F16/BF16 become FP32).
/// A GGUF file brings its tokenizer; a llama2.c checkpoint does not.
/// </summary>
public sealed class LlmModelFile : IDisposable
{
    private readonly Llama2cCheckpoint? _checkpoint;

    private LlmModelFile(string path, string format, long fileBytes, LlamaWeights weights, Llama2cTokenizer? tokenizer, Llama2cCheckpoint? ck)
    {
        Path = path;
        Format = format;
        FileBytes = fileBytes;
        Weights = weights;
        Tokenizer = tokenizer;
        _checkpoint = ck;
    }

    public string Path { get; }
    /// <summary>"Legacy" or "Version1" (llama2.c layouts) or "GGUF".</summary>
    public string Layout => _checkpoint?.Layout.ToString() ?? "GGUF";

    /// <summary>"llama2.c Legacy", "llama2.c Version1" or "GGUF v3".</summary>
    public string Format { get; }
    public long FileBytes { get; }
    public LlamaWeights Weights { get; }
    /// <summary>"type (method)" of a GGUF written by `llm quantize`, else null.</summary>
    public string? Quantization { get; private init; }

    /// <summary>The tokenizer stored in the file (GGUF), else null.</summary>
    public Llama2cTokenizer? Tokenizer { get; }

    public static bool IsGguf(string path)
    {
        if (!File.Exists(path)) return false;
        using var fs = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[4];
        return fs.Read(magic) == 4 && BitConverter.ToUInt32(magic) == GgufFile.Magic;
    }

    public static LlmModelFile Open(string path)
    {
        if (!File.Exists(path)) throw new QuantSharpException($"{path}: model file not found");
        if (IsGguf(path))
        {
            using var f = GgufFile.Open(path);
            var w = GgufLlama.LoadWeights(f, keepBlocks: true);
            var tok = f.Has("tokenizer.ggml.model") ? GgufLlama.LoadTokenizer(f) : null;
            string? q = f.Has("quantsharp.quantization.type") && f.Has("quantsharp.quantization.method")
                ? $"{f.GetString("quantsharp.quantization.type")} ({f.GetString("quantsharp.quantization.method")})" : null;
            return new LlmModelFile(path, $"GGUF v{f.Version}", f.FileBytes, w, tok, null) { Quantization = q };
        }
        var ck = Llama2cCheckpoint.Open(path);
        return new LlmModelFile(path, $"llama2.c {ck.Layout}", ck.FileBytes, ck.Weights, null, ck);
    }

    public void Dispose() => _checkpoint?.Dispose();
}
