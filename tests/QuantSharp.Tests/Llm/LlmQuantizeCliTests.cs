using System.Text.Json;
using QuantSharp.Cli;

namespace QuantSharp.Tests.Llm;

public class LlmQuantizeCliTests
{
    private static (int Rc, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = Program.Run(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    [Fact]
    public void QuantizeWritesGgufThatPerplexityAndGenerateLoad()
    {
        string dir = TestPaths.NewTempDir("qcli");
        try
        {
            string calib = Path.Combine(dir, "calib.txt");
            File.WriteAllText(calib, File.ReadAllText(LlmTestData.TinyStories)[^6000..]);
            string outPath = Path.Combine(dir, "m.gguf");
            var (rc, o, e) = Run("llm", "quantize", LlmTestData.Legacy, "--tokenizer", LlmTestData.TokenizerPath, "-o", outPath,
                "--type", "int3-g64", "--method", "gptq", "--calib", calib, "--calib-ctx", "64", "--calib-windows", "4",
                "--keep", "blk.0.*=q8_0", "--json");
            Assert.True(rc == 0, e);
            var doc = JsonDocument.Parse(o).RootElement;
            Assert.Equal(256, doc.GetProperty("calibration_tokens").GetInt64());
            var tensors = doc.GetProperty("tensors").EnumerateArray().ToList();
            Assert.Contains(tensors, t => t.GetProperty("name").GetString() == "blk.0.attn_q.weight" && t.GetProperty("format").GetString() == "q8_0");
            Assert.Contains(tensors, t => t.GetProperty("name").GetString() == "blk.1.attn_q.weight" && t.GetProperty("format").GetString() == "int3-g64");
            Assert.Equal(new FileInfo(outPath).Length, doc.GetProperty("file_bytes").GetInt64());
            Assert.DoesNotContain(Directory.GetFiles(dir), f => f.Contains(".tmp"));

            var (rc2, p, e2) = Run("llm", "perplexity", outPath, "--text", LlmTestData.TinyStories, "--ctx", "64", "--windows", "2",
                "--reference", LlmTestData.Legacy, "--json");
            Assert.True(rc2 == 0, e2);
            var pd = JsonDocument.Parse(p).RootElement;
            Assert.True(pd.GetProperty("kl").GetDouble() > 0);
            Assert.InRange(pd.GetProperty("same_top").GetDouble(), 0.2, 1.0);
            Assert.Equal(doc.GetProperty("tensor_bytes").GetInt64(), pd.GetProperty("bytes").GetInt64());

            var (rc3, g, e3) = Run("llm", "generate", outPath, "--prompt", "Once upon a time", "-n", "8", "--temperature", "0");
            Assert.True(rc3 == 0, e3);
            Assert.StartsWith("Once upon a time", g);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void BadQuantizeArgumentsGiveOneLineErrors()
    {
        string dir = TestPaths.NewTempDir("qcli");
        try
        {
            string outPath = Path.Combine(dir, "m.gguf");
            var (rc, _, e) = Run("llm", "quantize", LlmTestData.Legacy, "--tokenizer", LlmTestData.TokenizerPath, "-o", outPath, "--type", "int4-g32", "--method", "gptq");
            Assert.Equal(2, rc);
            Assert.Contains("--calib", e);
            var (rc2, _, e2) = Run("llm", "quantize", LlmTestData.Legacy, "--tokenizer", LlmTestData.TokenizerPath, "-o", outPath, "--type", "int4-g32", "--keep", "token_embd");
            Assert.Equal(1, rc2);
            Assert.Contains("PATTERN=TYPE", e2);
            var (rc3, _, e3) = Run("llm", "quantize", LlmTestData.Legacy, "--tokenizer", LlmTestData.TokenizerPath, "-o", outPath, "--type", "int5");
            Assert.Equal(2, rc3);
            Assert.Contains("int5", e3);
            string bad = Path.Combine(dir, "bad.txt");
            File.WriteAllBytes(bad, [0x4F, 0x6E, 0xC3, 0x28, 0x20]);
            var (rc4, _, e4) = Run("llm", "quantize", LlmTestData.Legacy, "--tokenizer", LlmTestData.TokenizerPath, "-o", outPath, "--type", "int4-g32", "--method", "awq", "--calib", bad);
            Assert.Equal(1, rc4);
            Assert.Contains("UTF-8", e4);
            Assert.False(File.Exists(outPath));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
