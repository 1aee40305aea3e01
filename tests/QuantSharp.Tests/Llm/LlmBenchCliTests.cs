using System.Text.Json;
using QuantSharp.Cli;

namespace QuantSharp.Tests.Llm;

/// <summary>`llm bench` and `llm generate --synthetic`: the report fields and the usage errors (no timings asserted).</summary>
public class LlmBenchCliTests
{
    private static (int Rc, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = Program.Run(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    [Fact]
    public void BenchReportsPromptAndDecodeRatesAsJson()
    {
        var (rc, o, e) = Run("llm", "bench", LlmTestData.Legacy, "--type", "q8_0", "--threads", "2", "--prompt-tokens", "24", "-n", "6",
            "--reps", "1", "--no-membw", "--json");
        Assert.True(rc == 0, e);
        var doc = JsonDocument.Parse(o).RootElement;
        Assert.Equal("q8_0", doc.GetProperty("type").GetString());
        Assert.Equal(24, doc.GetProperty("prompt_tokens").GetInt32());
        Assert.True(doc.GetProperty("prompt_tokens_per_s").GetDouble() > 0);
        Assert.True(doc.GetProperty("decode_tokens_per_s").GetDouble() > 0);
        Assert.True(doc.GetProperty("weight_bytes_per_token").GetInt64() > 0);
    }

    [Fact]
    public void SyntheticSourcesAreCheckedBeforeAnyWork()
    {
        var (rc, _, _) = Run("llm", "generate", "--synthetic", "nope-7b");
        Assert.Equal(2, rc);
        var (rc2, _, e2) = Run("llm", "bench", "--synthetic", "nope-7b");
        Assert.Equal(2, rc2);
        Assert.Contains("tinyllama-1.1b", e2);
        var (rc3, _, e3) = Run("llm", "bench", LlmTestData.Legacy, "--prompt-ids", "1,99999");
        Assert.NotEqual(0, rc3);
        Assert.Contains("--prompt-ids", e3);
    }
}
