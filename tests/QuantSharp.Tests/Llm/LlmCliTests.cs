using System.Text.Json;
using QuantSharp.Cli;

namespace QuantSharp.Tests.Llm;

public class LlmCliTests
{
    private static (int Rc, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = Program.Run(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    [Fact]
    public void InspectPrintsTheTensorTable()
    {
        var (rc, o, _) = Run("llm", "inspect", LlmTestData.Legacy);
        Assert.Equal(0, rc);
        Assert.Contains("layers.4.feed_forward.w2", o);
        Assert.Contains("[64,172]", o);
        Assert.Contains("260,032 parameters", o);

        var (rc2, j, _) = Run("llm", "inspect", LlmTestData.V1, "--type", "q8_0", "--json");
        Assert.Equal(0, rc2);
        var doc = JsonDocument.Parse(j).RootElement;
        Assert.Equal("Version1", doc.GetProperty("layout").GetString());
        Assert.Equal(260032, doc.GetProperty("parameters").GetInt64());
        Assert.Contains(doc.GetProperty("tensors").EnumerateArray(), t => t.GetProperty("type").GetString() == "q8_0");
    }

    [Fact]
    public void GenerateGreedyContinuesThePrompt()
    {
        var (rc, o, e) = Run("llm", "generate", LlmTestData.Legacy, "--tokenizer", LlmTestData.TokenizerPath,
            "--prompt", "Once upon a time", "-n", "12", "--temperature", "0");
        Assert.True(rc == 0, e);
        Assert.StartsWith("Once upon a time, there was a little girl named Lily", o);
    }

    [Fact]
    public void PerplexityJsonHasPplAndTokens()
    {
        var (rc, o, e) = Run("llm", "perplexity", LlmTestData.Legacy, "--tokenizer", LlmTestData.TokenizerPath,
            "--text", LlmTestData.TinyStories, "--ctx", "64", "--windows", "2", "--type", "q4_0", "--json");
        Assert.True(rc == 0, e);
        var doc = JsonDocument.Parse(o).RootElement;
        Assert.Equal(2 * 31, doc.GetProperty("tokens").GetInt64());
        Assert.InRange(doc.GetProperty("ppl").GetDouble(), 1.5, 30);
        Assert.True(doc.GetProperty("kl").GetDouble() >= 0);
    }

    [Fact]
    public void BadInputGivesOneLineErrors()
    {
        var (rc, _, e) = Run("llm", "inspect", "/nonexistent/model.bin");
        Assert.Equal(1, rc);
        Assert.Contains("model.bin", e);
        var (rc2, _, e2) = Run("llm", "frobnicate", LlmTestData.Legacy);
        Assert.Equal(2, rc2);
        Assert.Contains("frobnicate", e2);
        var (rc3, _, e3) = Run("llm", "inspect", LlmTestData.Legacy, "--type", "q9");
        Assert.Equal(2, rc3);
        Assert.Contains("q9", e3);
    }
}
