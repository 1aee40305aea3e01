using QuantSharp.Cli;
using QuantSharp.Llm;
using QuantSharp.Llm.Gguf;
using QuantSharp.Llm.Gpt2;
using QuantSharp.Llm.HuggingFace;

namespace QuantSharp.Tests.Llm;

public class LoaderTests
{
    [Fact]
    public void OpenPicksTheLoaderFromThePath()
    {
        using (var m = CausalLmLoader.Open(LlmTestData.Legacy, LlmTestData.TokenizerPath))
        {
            Assert.IsType<Llama2cCheckpoint>(m.Source);
            Assert.IsType<Llama2cTokenizer>(m.Tokenizer);
        }
        using (var m = CausalLmLoader.Open(HfTestData.Gpt2Tiny))
        {
            Assert.IsType<Gpt2Weights>(m.Weights);
            Assert.Equal(BpeStyle.ByteLevel, Assert.IsType<BpeTokenizer>(m.Tokenizer).Style);
        }
        string gguf = Path.Combine(TestPaths.NewTempDir("qs-gguf"), "m.gguf");
        GgufLlama.Export(LlmTestData.Checkpoint.Weights, LlmTestData.Tokenizer, gguf, GgmlType.F32);
        using (var m = CausalLmLoader.Open(gguf))
        {
            Assert.IsType<GgufFile>(m.Source);
            Assert.Equal("llama", m.Weights.Architecture);
            Assert.NotNull(m.Tokenizer);
        }
        var o = new StringWriter();
        Assert.Equal(0, Program.Run(["llm", "generate", gguf, "--prompt", "Once upon a time", "-n", "12", "--temperature", "0"], o, new StringWriter()));
        Assert.StartsWith("Once upon a time, there was a little girl named Lily", o.ToString());
        Assert.Contains("config.json", Assert.ThrowsAny<QuantSharpException>(() => CausalLmLoader.Open(TestPaths.NewTempDir("qs-empty"))).Message);
    }

    [Fact]
    public void Gpt2WithoutTheTransformerPrefixAndWithAnUntiedHeadLoads()
    {
        // Rewrite the fixture's safetensors with names as GPT2Model saves them ("h.0…", no prefix) plus an lm_head.
        string dir = TestPaths.NewTempDir("qs-gpt2-noprefix");
        foreach (var f in Directory.GetFiles(HfTestData.Gpt2Tiny)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var src = Path.Combine(HfTestData.Gpt2Tiny, "model.safetensors");
        var bytes = File.ReadAllBytes(src);
        ulong n = BitConverter.ToUInt64(bytes, 0);
        string header = System.Text.Encoding.UTF8.GetString(bytes, 8, (int)n).Replace("\"transformer.", "\"");
        var wte = System.Text.Json.JsonDocument.Parse(header).RootElement.GetProperty("wte.weight").GetProperty("data_offsets");
        long dataLen = bytes.Length - 8 - (long)n;
        // lm_head = a copy of wte appended at the end of the data area.
        long b0 = wte[0].GetInt64(), b1 = wte[1].GetInt64();
        header = header.TrimEnd()[..^1] + $",\"lm_head.weight\":{{\"dtype\":\"F16\",\"shape\":[297,32],\"data_offsets\":[{dataLen},{dataLen + b1 - b0}]}}}}";
        var h = System.Text.Encoding.UTF8.GetBytes(header);
        using (var fs = File.Create(Path.Combine(dir, "model.safetensors")))
        {
            fs.Write(BitConverter.GetBytes((ulong)h.Length));
            fs.Write(h);
            fs.Write(bytes, 8 + (int)n, (int)dataLen);
            fs.Write(bytes, 8 + (int)n + (int)b0, (int)(b1 - b0));
        }
        string cfg = Path.Combine(dir, "config.json");
        File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false"));
        using var hf = HfCheckpoint.Open(dir);
        var w = Assert.IsType<Gpt2Weights>(hf.Weights);
        Assert.False(w.TiedHead);
        var r = HfTestData.LoadReference(HfTestData.Gpt2Tiny);
        var s = w.CreateDecoder().NewSession();
        for (int pos = 0; pos < r.Tokens.Length; pos++)
        {
            var l = s.Forward(r.Tokens[pos], pos);
            for (int i = 0; i < l.Length; i++) Assert.True(Math.Abs(l[i] - r.Logits[pos][i]) <= 1e-4);
        }
    }
}
