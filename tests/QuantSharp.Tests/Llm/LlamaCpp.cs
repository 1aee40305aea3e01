using System.Diagnostics;
using System.Text.Json;

namespace QuantSharp.Tests.Llm;

/// <summary>
/// Runs a GGUF file in real llama.cpp through tests/tools/llama_run.mjs (node-llama-cpp's prebuilt CPU library).
/// node-llama-cpp is looked for in tests/tools/node_modules (installed by .ci/run) or in the node_modules folder named by
/// NODE_LLAMA_CPP_DIR.
/// </summary>
internal static class LlamaCpp
{
    public const string InstallCommand = "(cd tests/tools && npm install --ignore-scripts --no-audit --no-fund), as .ci/run does";

    private static string ToolsDir => Path.Combine(TestPaths.RepoRoot, "tests", "tools");

    /// <summary>The node_modules folder holding node-llama-cpp, or null.</summary>
    public static string? ModulesDir
    {
        get
        {
            string local = Path.Combine(ToolsDir, "node_modules");
            if (Directory.Exists(Path.Combine(local, "node-llama-cpp"))) return local;
            string? env = Environment.GetEnvironmentVariable("NODE_LLAMA_CPP_DIR");
            return env is not null && Directory.Exists(Path.Combine(env, "node-llama-cpp")) ? env : null;
        }
    }

    public static bool Installed => ModulesDir is not null && File.Exists("/usr/bin/node");

    public static bool Required => Environment.GetEnvironmentVariable("QUANTSHARP_REQUIRE_LLAMACPP") == "1";

    /// <summary>What llama_run.mjs printed: llama.cpp's release, raw logits after each prompt token, the greedy continuation, tokenizations.</summary>
    public sealed record Result(string Release, float[][] Logits, int[] Greedy, Dictionary<string, int[]> Tokenized);

    /// <summary>Feeds <paramref name="ids"/> (no BOS added), returns the logits after each, then greedily generates <paramref name="n"/> tokens.</summary>
    public static Result Run(string gguf, IReadOnlyList<int> ids, int n, params string[] texts)
    {
        var psi = new ProcessStartInfo("/usr/bin/node", [Path.Combine(ToolsDir, "llama_run.mjs"), gguf, string.Join(",", ids), $"{n}"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = ToolsDir,
        };
        if (ModulesDir is string m && m != Path.Combine(ToolsDir, "node_modules")) psi.Environment["NODE_LLAMA_CPP_DIR"] = m;
        if (texts.Length > 0) psi.Environment["LLAMA_RUN_TEXT"] = string.Join('\u0001', texts);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string err = p.StandardError.ReadToEnd();
        if (!p.WaitForExit(120_000)) throw new TimeoutException("llama.cpp did not finish in 120 s");
        if (p.ExitCode != 0) throw new InvalidOperationException($"llama_run.mjs failed on {Path.GetFileName(gguf)}: {err}");
        var j = JsonDocument.Parse(stdout.Result).RootElement;
        var rel = j.GetProperty("llama_cpp");
        string release = $"{rel.GetProperty("repo").GetString()} {rel.GetProperty("release").GetString()} ({j.GetProperty("build").GetString()})";
        var logits = j.GetProperty("logits").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
        var greedy = j.GetProperty("greedy").EnumerateArray().Select(v => v.GetInt32()).ToArray();
        var tok = j.GetProperty("tokenize").EnumerateObject().ToDictionary(e => e.Name, e => e.Value.EnumerateArray().Select(v => v.GetInt32()).ToArray());
        return new Result(release, logits, greedy, tok);
    }
}

/// <summary>A fact skipped (with the install command) when node-llama-cpp is absent, unless QUANTSHARP_REQUIRE_LLAMACPP=1.</summary>
public sealed class LlamaCppFactAttribute : FactAttribute
{
    public LlamaCppFactAttribute()
    {
        if (!LlamaCpp.Installed && !LlamaCpp.Required)
            Skip = $"node-llama-cpp (llama.cpp) is not installed: run {LlamaCpp.InstallCommand}, or set NODE_LLAMA_CPP_DIR to a node_modules folder holding it";
    }
}

/// <summary>A theory skipped (with the install command) when node-llama-cpp is absent, unless QUANTSHARP_REQUIRE_LLAMACPP=1.</summary>
public sealed class LlamaCppTheoryAttribute : TheoryAttribute
{
    public LlamaCppTheoryAttribute()
    {
        if (!LlamaCpp.Installed && !LlamaCpp.Required)
            Skip = $"node-llama-cpp (llama.cpp) is not installed: run {LlamaCpp.InstallCommand}, or set NODE_LLAMA_CPP_DIR to a node_modules folder holding it";
    }
}
