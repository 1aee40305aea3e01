using QuantSharp.Llm;

namespace QuantSharp.Tests.Llm;

public class DecoderTests
{
    [Fact]
    public void GreedyFromBosReproducesGolden()
    {
        var g = LlmTestData.Golden;
        var expected = g.GetProperty("token_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var dec = new LlamaDecoder(LlmTestData.Checkpoint.Weights);
        var got = Generator.Generate(dec, [Llama2cTokenizer.Bos], expected.Length - 1, new Sampler(0f)).ToList();
        Assert.Equal(expected.Skip(1), got);
    }

    [Fact]
    public void PromptTop10LogitsMatch()
    {
        var g = LlmTestData.Golden;
        var prompt = g.GetProperty("prompt_token_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var dec = new LlamaDecoder(LlmTestData.Checkpoint.Weights);
        var s = dec.NewState();
        float[] logits = [];
        for (int p = 0; p < prompt.Length; p++) logits = dec.Forward(s, prompt[p], p);
        var top = g.GetProperty("prompt_last_logits_top10").EnumerateArray().ToList();
        var order = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).Take(10).ToArray();
        for (int i = 0; i < top.Count; i++)
        {
            int id = top[i][0].GetInt32();
            double v = top[i][1].GetDouble();
            Assert.Equal(id, order[i]);
            Assert.True(Math.Abs(logits[id] - v) < 1e-3, $"token {id}: {logits[id]} vs {v}");
        }
    }

    [Fact]
    public void ThreadCountDoesNotChangeLogits()
    {
        var w = LlmTestData.Checkpoint.Weights;
        var a = new LlamaDecoder(w, 1);
        var b = new LlamaDecoder(w, 2);
        var sa = a.NewState();
        var sb = b.NewState();
        int[] toks = [1, 403, 407, 261];
        for (int p = 0; p < toks.Length; p++)
            Assert.Equal(a.Forward(sa, toks[p], p), b.Forward(sb, toks[p], p));
    }

    [Fact]
    public void SeededSamplingIsReproducible()
    {
        var dec = new LlamaDecoder(LlmTestData.Checkpoint.Weights);
        var a = Generator.Generate(dec, [1], 40, new Sampler(1f, 40, 0.9f, 1234)).ToList();
        var b = Generator.Generate(dec, [1], 40, new Sampler(1f, 40, 0.9f, 1234)).ToList();
        var c = Generator.Generate(dec, [1], 40, new Sampler(1f, 40, 0.9f, 99)).ToList();
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void TopKOneIsGreedy()
    {
        var logits = new float[] { 0.1f, 3f, 2.9f, -1f };
        var s = new Sampler(1.5f, 1, 1f, 7);
        for (int i = 0; i < 20; i++) Assert.Equal(1, s.Sample(logits));
        var p = new Sampler(1f, 0, 0.01f, 7);
        for (int i = 0; i < 20; i++) Assert.Equal(1, p.Sample(logits));
    }

    [Fact]
    public void TextStreamStartsWithThePrompt()
    {
        var dec = new LlamaDecoder(LlmTestData.Checkpoint.Weights);
        var text = string.Concat(Generator.GenerateText(dec, LlmTestData.Tokenizer, "Once upon a time", 30, new Sampler(0f)));
        Assert.StartsWith("Once upon a time, there was a little girl named Lily", text);
    }
}
