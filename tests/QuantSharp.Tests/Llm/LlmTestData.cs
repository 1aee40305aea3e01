using System.Text.Json;
using QuantSharp.Llm;

namespace QuantSharp.Tests.Llm;

/// <summary>The shared stories260K model, tokenizer, golden outputs and TinyStories text.</summary>
internal static class LlmTestData
{
    public static string Dir => TestPaths.SharedFile("models", "stories260K");
    public static string Legacy => Path.Combine(Dir, "stories260K.bin");
    public static string V1 => Path.Combine(Dir, "stories260K_v1.bin");
    public static string TokenizerPath => Path.Combine(Dir, "tok512.bin");
    public static string TinyStories => TestPaths.SharedFile("data", "tinystories", "tinystories_valid_head.txt");

    private static readonly Lazy<Llama2cCheckpoint> _checkpoint = new(() => Llama2cCheckpoint.Open(Legacy));
    private static readonly Lazy<Llama2cTokenizer> _tokenizer = new(() => Llama2cTokenizer.Load(TokenizerPath, 512));

    /// <summary>Shared for the whole test run (read-only mapping; never disposed before process exit).</summary>
    public static Llama2cCheckpoint Checkpoint => _checkpoint.Value;
    public static Llama2cTokenizer Tokenizer => _tokenizer.Value;

    public static JsonElement Golden => JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "golden_greedy.json"))).RootElement;
    public static JsonElement ReferencePpl => JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "reference_ppl_tinystories_valid_head.json"))).RootElement;
}
