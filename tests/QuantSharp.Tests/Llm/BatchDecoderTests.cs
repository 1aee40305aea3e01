using QuantSharp.Llm;
using QuantSharp.Llm.Formats;
using QuantSharp.Llm.Synthetic;

namespace QuantSharp.Tests.Llm;

/// <summary>Batched prompt processing gives exactly the token-by-token results; thread count changes nothing.</summary>
public class BatchDecoderTests
{
    // dim 64 / 4 heads = head size 16, 2 kv heads; FFN 172 = 5 full 32-blocks and a partial one.
    private static readonly LlamaConfig Small = new(64, 172, 2, 4, 2, 97, 40, SharedClassifier: false);

    private static float[] Sequential(LlamaDecoder d, LlamaState s, int[] tokens, int pos0)
    {
        float[] logits = [];
        for (int i = 0; i < tokens.Length; i++) logits = (float[])d.Forward(s, tokens[i], pos0 + i).Clone();
        return logits;
    }

    [Theory]
    [InlineData("q8_0")]
    [InlineData("q4_0")]
    [InlineData("q4_1")]
    [InlineData("f32")]
    [InlineData("int4-g32")]
    public void BatchEqualsTokenByToken(string type)
    {
        var w = SyntheticModels.CreateLlama(Small, type, 5);
        int[] tokens = [1, 17, 42, 96, 3, 3, 8, 60, 11, 70, 2, 33, 5];
        var seqDec = new LlamaDecoder(w, 1);
        var seqState = seqDec.NewState();
        var expected = Sequential(seqDec, seqState, tokens, 0);

        var dec = new LlamaDecoder(w, 2);
        var s = dec.NewState();
        // Two batches: the second attends to keys the first cached.
        dec.ForwardBatch(s, tokens.AsSpan(0, 6), 0);
        var got = dec.ForwardBatch(s, tokens.AsSpan(6), 6);
        Assert.Equal(expected, got);
        Assert.Equal(seqState.KeyCache, s.KeyCache);
        Assert.Equal(seqState.ValueCache, s.ValueCache);
        // Decoding after the batch continues identically.
        Assert.Equal(seqDec.Forward(seqState, 9, tokens.Length), dec.Forward(s, 9, tokens.Length));
    }

    [Fact]
    public void HeadSize64BatchEqualsTokenByToken()
    {
        // Head size 64 takes the register-resident attention path; 3 query heads share one kv head.
        var w = SyntheticModels.CreateLlama(new LlamaConfig(192, 96, 1, 3, 1, 50, 24, SharedClassifier: true), "q8_0", 2);
        int[] tokens = [1, 5, 9, 13, 17, 21, 25, 29, 33];
        var a = new LlamaDecoder(w, 1);
        var expected = Sequential(a, a.NewState(), tokens, 0);
        var b = new LlamaDecoder(w, 2);
        Assert.Equal(expected, b.ForwardBatch(b.NewState(), tokens, 0));
    }

    [Fact]
    public void RealModelBatchEqualsTokenByTokenAtQ8_0()
    {
        var w = WeightFormats.QuantizeModel(LlmTestData.Checkpoint.Weights, "q8_0");
        int[] tokens = [1, 403, 407, 261, 378, 301, 259, 268, 422, 400, 301, 265, 341];
        var a = new LlamaDecoder(w, 1);
        var expected = Sequential(a, a.NewState(), tokens, 0);
        var b = new LlamaDecoder(w, 2);
        Assert.Equal(expected, b.ForwardBatch(b.NewState(), tokens, 0));
    }

    [Fact]
    public void ThreadCountDoesNotChangeBlockFormatDecoding()
    {
        var w = SyntheticModels.CreateLlama(Small, "q4_0", 9);
        var a = new LlamaDecoder(w, 1);
        var b = new LlamaDecoder(w, 2);
        var sa = a.NewState();
        var sb = b.NewState();
        for (int p = 0; p < 12; p++) Assert.Equal(a.Forward(sa, (p * 7) % 97, p), b.Forward(sb, (p * 7) % 97, p));
    }

    [Fact]
    public void SyntheticTinyLlamaHasTheRealShapes()
    {
        var c = SyntheticModels.LlamaConfigOf("tinyllama-1.1b");
        Assert.Equal((2048, 5632, 22, 32, 4, 32000, 2048, false), (c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KvHeads, c.VocabSize, c.SeqLen, c.SharedClassifier));
        Assert.Equal(256, c.KvDim);
        Assert.Throws<QuantSharpException>(() => SyntheticModels.LlamaConfigOf("nope"));
    }

    [Fact]
    public void SyntheticWeightsAreSeededAndInTheRequestedFormat()
    {
        var a = SyntheticModels.CreateLlama(Small, "q4_0", 3);
        var b = SyntheticModels.CreateLlama(Small, "q4_0", 3);
        var c = SyntheticModels.CreateLlama(Small, "q4_0", 4);
        Assert.All(a.Matrices, m => Assert.Equal("q4_0", m.TypeName));
        var ra = new float[64];
        var rb = new float[64];
        var rc = new float[64];
        a.Layers[1].Wq.DequantizeRow(5, ra);
        b.Layers[1].Wq.DequantizeRow(5, rb);
        c.Layers[1].Wq.DequantizeRow(5, rc);
        Assert.Equal(ra, rb);
        Assert.NotEqual(ra, rc);
        // Weight standard deviation near the intended 0.02.
        double sd = Math.Sqrt(ra.Select(v => (double)v * v).Average());
        Assert.InRange(sd, 0.01, 0.04);
    }
}
