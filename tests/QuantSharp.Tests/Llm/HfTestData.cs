using System.Diagnostics;
using System.Text.Json;
using QuantSharp.Llm;

namespace QuantSharp.Tests.Llm;

/// <summary>
/// The committed Hugging Face fixtures (tests/QuantSharp.Tests/Llm/Fixtures, made by make_hf_fixtures.py) and the
/// stories260K model converted to Hugging Face layout by the same script at test time.
/// </summary>
internal static class HfTestData
{
    public static string FixtureDir => Path.Combine(TestPaths.RepoRoot, "tests", "QuantSharp.Tests", "Llm", "Fixtures");
    public static string Gpt2Tiny => Path.Combine(FixtureDir, "gpt2-tiny");
    public static string LlamaTiny => Path.Combine(FixtureDir, "llama-tiny");
    public static string Script => Path.Combine(FixtureDir, "make_hf_fixtures.py");

    /// <summary>reference.json of a fixture: the text, its tokens, reference logits [T, V] and tokenizer cases.</summary>
    public sealed record Reference(string Text, int[] Tokens, float[][] Logits, (string Text, int[] Ids)[] TokenizerCases);

    public static Reference LoadReference(string dir)
    {
        var j = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "reference.json"))).RootElement;
        var shape = j.GetProperty("logits_shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var bytes = File.ReadAllBytes(Path.Combine(dir, j.GetProperty("logits_file").GetString()!));
        var flat = new float[shape[0] * shape[1]];
        Buffer.BlockCopy(bytes, 0, flat, 0, bytes.Length);
        var logits = Enumerable.Range(0, shape[0]).Select(t => flat.AsSpan(t * shape[1], shape[1]).ToArray()).ToArray();
        var cases = j.GetProperty("tokenizer_cases").EnumerateArray()
            .Select(c => (c.GetProperty("text").GetString()!, c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray())).ToArray();
        return new Reference(j.GetProperty("text").GetString()!, j.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray(), logits, cases);
    }

    public const string Python = "/usr/bin/python3";

    private static readonly Lazy<bool> _numpy = new(() => Run(Python, "-c \"import numpy\"").Code == 0);

    /// <summary>Whether /usr/bin/python3 with numpy is installed (the stories260K conversion needs it).</summary>
    public static bool HasNumpy => File.Exists(Python) && _numpy.Value;

    private static readonly Lazy<string> _stories = new(() =>
    {
        string dir = TestPaths.NewTempDir("qs-hf-stories260k");
        var (code, err) = Run(Python, $"\"{Script}\" --stories260k \"{LlmTestData.Dir}\" \"{dir}\"");
        if (code != 0) throw new InvalidOperationException($"make_hf_fixtures.py --stories260k failed: {err}");
        return dir;
    });

    /// <summary>stories260K in Hugging Face layout (F32 safetensors, q/k permuted to rotate-half, tokenizer.json), made once per run.</summary>
    public static string Stories260KHf => _stories.Value;

    private static (int Code, string Err) Run(string exe, string args)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo(exe, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            string err = p.StandardError.ReadToEnd();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, err);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, e.Message);
        }
    }
}

/// <summary>A fact skipped (with the install command) when /usr/bin/python3 with numpy is missing.</summary>
public sealed class PythonNumpyFactAttribute : FactAttribute
{
    public PythonNumpyFactAttribute()
    {
        if (!HfTestData.HasNumpy) Skip = "needs /usr/bin/python3 with numpy to convert stories260K (apt-get install python3-numpy)";
    }
}
