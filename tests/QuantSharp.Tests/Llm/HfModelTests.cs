using QuantSharp.Llm;
using QuantSharp.Llm.Formats;
using QuantSharp.Llm.Gpt2;
using QuantSharp.Llm.HuggingFace;

namespace QuantSharp.Tests.Llm;

public class HfModelTests
{
    private static void AssertLogitsMatch(ICausalLmWeights w, HfTestData.Reference r, double tol)
    {
        var session = w.CreateDecoder().NewSession();
        double worst = 0;
        for (int pos = 0; pos < r.Tokens.Length; pos++)
        {
            var got = session.Forward(r.Tokens[pos], pos);
            Assert.Equal(r.Logits[pos].Length, w.VocabSize);
            for (int i = 0; i < got.Length; i++) worst = Math.Max(worst, Math.Abs(got[i] - r.Logits[pos][i]));
        }
        Assert.True(worst <= tol, $"max |logit − reference| = {worst:E3} > {tol:E1}");
    }

    [Fact]
    public void Gpt2MatchesTheIndependentPyTorchReference()
    {
        using var hf = HfCheckpoint.Open(HfTestData.Gpt2Tiny);
        var w = Assert.IsType<Gpt2Weights>(hf.Weights);
        Assert.True(w.TiedHead);
        // Embeddings stay F16 views of the mapping; Conv1D weights were transposed to [out, in].
        Assert.Equal("f16", w.TokenEmbedding.TypeName);
        Assert.Equal((96, 32), (w.Layers[0].Wqkv.Rows, w.Layers[0].Wqkv.Cols));
        AssertLogitsMatch(w, HfTestData.LoadReference(HfTestData.Gpt2Tiny), 1e-4);
    }

    [Fact]
    public void ShardedBf16LlamaMatchesTheReferenceThroughTheRopePermutation()
    {
        using var hf = HfCheckpoint.Open(HfTestData.LlamaTiny);
        Assert.Equal(2, hf.ShardCount);
        var w = Assert.IsType<LlamaWeights>(hf.Weights);
        Assert.False(w.Config.SharedClassifier);
        Assert.Equal("bf16", w.Layers[0].Wq.TypeName);
        AssertLogitsMatch(w, HfTestData.LoadReference(HfTestData.LlamaTiny), 1e-4);
    }

    [Fact]
    public void RopeRowMapUndoesTheHuggingFacePermutation()
    {
        // Head size 8: interleaved rows (0,1),(2,3),(4,5),(6,7) are Hugging Face rows (0,4),(1,5),(2,6),(3,7).
        Assert.Equal([0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15], HfCheckpoint.RotateHalfToInterleaved(2, 8));
    }

    [Fact]
    public void Gpt2RunsInTheQuantizedFormatsAndIsThreadIndependent()
    {
        using var hf = HfCheckpoint.Open(HfTestData.Gpt2Tiny);
        var r = HfTestData.LoadReference(HfTestData.Gpt2Tiny);
        double range = r.Logits.Max(l => l.Max(Math.Abs));
        foreach (var type in new[] { "q8_0", "q4_0", "q4_1", "int8-channel", "int4-g32" })
        {
            var q = hf.Weights.MapMatrices(m => WeightFormats.Quantize(m, type));
            Assert.All(q.Matrices, m => Assert.Equal(type, m.TypeName));
            // The same quantized values held as FP32: the decoder's product on the format must agree with it up to the
            // int8 rounding of activations (Q8_0/Q4_x products) or exactly up to float summation order (others).
            var dq = q.MapMatrices(m =>
            {
                var v = new float[m.Rows * m.Cols];
                for (int i = 0; i < m.Rows; i++) m.DequantizeRow(i, v.AsSpan(i * m.Cols, m.Cols));
                return F32Matrix.FromArray(m.Name, m.Rows, m.Cols, v);
            });
            var a = q.CreateDecoder(1).NewSession();
            var b = q.CreateDecoder(2).NewSession();
            var c = dq.CreateDecoder().NewSession();
            double vsDequantized = 0, vsReference = 0;
            for (int pos = 0; pos < r.Tokens.Length; pos++)
            {
                var la = a.Forward(r.Tokens[pos], pos);
                var lb = b.Forward(r.Tokens[pos], pos);
                var lc = c.Forward(r.Tokens[pos], pos);
                Assert.Equal(la, lb);
                for (int i = 0; i < la.Length; i++)
                {
                    vsDequantized = Math.Max(vsDequantized, Math.Abs(la[i] - lc[i]));
                    vsReference = Math.Max(vsReference, Math.Abs(la[i] - r.Logits[pos][i]));
                }
            }
            Assert.True(vsDequantized / range < (q.Matrices.First().UsesQ8Activations ? 0.08 : 1e-4), $"{type}: {vsDequantized / range:G3} of the logit range off its dequantized copy");
            Assert.True(vsReference > 1e-6, $"{type} should change the logits");
            if (type is "q8_0" or "int8-channel") Assert.True(vsReference / range < 0.06, $"{type}: {vsReference / range:G3} of the logit range off the FP32 reference");
        }
    }

    [PythonNumpyFact]
    public void Stories260KThroughTheHuggingFaceLayoutGivesTheLlama2cLogits()
    {
        using var hf = HfCheckpoint.Open(HfTestData.Stories260KHf);
        var w = Assert.IsType<LlamaWeights>(hf.Weights);
        Assert.True(w.Config.SharedClassifier);
        var reference = LlmTestData.Checkpoint.Weights;
        var prompt = LlmTestData.Tokenizer.Encode("Once upon a time, there was a little girl named Lily.", bos: true);
        var a = new LlamaDecoder(reference).NewState();
        var decA = new LlamaDecoder(reference);
        var b = w.CreateDecoder().NewSession();
        for (int pos = 0; pos < prompt.Length; pos++)
        {
            var la = decA.Forward(a, prompt[pos], pos);
            var lb = b.Forward(prompt[pos], pos);
            // Same FP32 rows in the same order after the row map: bit-identical logits.
            Assert.Equal(la, lb);
        }
        var golden = LlmTestData.Golden.GetProperty("token_ids").EnumerateArray().Select(e => e.GetInt32()).Take(41).ToArray();
        var got = Generator.Generate(w.CreateDecoder(), [golden[0]], 40, new Sampler(0f), [1, 2]).ToArray();
        Assert.Equal(golden.Skip(1), got);
    }

    [PythonNumpyFact]
    public void Stories260KTokenizerJsonEncodesLikeTokenizerBin()
    {
        var hfTok = BpeTokenizer.LoadJson(Path.Combine(HfTestData.Stories260KHf, "tokenizer.json"));
        Assert.Equal(BpeStyle.SentencePiece, hfTok.Style);
        var paragraphs = File.ReadAllText(LlmTestData.TinyStories).Replace("\r\n", "\n").Split("\n\n").Select(p => p.Trim()).Where(p => p.Length > 0).Take(200).ToArray();
        int same = 0;
        foreach (var p in paragraphs)
        {
            var a = LlmTestData.Tokenizer.Encode(p, bos: true);
            var b = hfTok.Encode(p, bos: true);
            if (a.SequenceEqual(b)) same++;
            Assert.Equal(p, hfTok.Decode(b));
        }
        Assert.Equal(paragraphs.Length, same);
    }
}
