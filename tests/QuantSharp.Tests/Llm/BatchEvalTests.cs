using QuantSharp.Llm;
using QuantSharp.Llm.Formats;

namespace QuantSharp.Tests.Llm;

/// <summary>
/// Prompt prefill (<see cref="ICausalLmSession.Prefill"/>) and perplexity windows (<see cref="ICausalLmSession.ForwardAll"/>)
/// run as batches and give exactly the results of feeding the tokens one at a time.
/// </summary>
public class BatchEvalTests
{
    private static ICausalLmWeights Model(string type) =>
        type == "f32" ? LlmTestData.Checkpoint.Weights : ((ICausalLmWeights)LlmTestData.Checkpoint.Weights).MapMatrices(m => WeightFormats.Quantize(m, type));

    /// <summary>The evaluation as it was before batching: Forward token by token, sums in position order.</summary>
    private static EvalResult TokenByToken(ICausalLmWeights model, ICausalLmWeights? reference, IReadOnlyList<EvalWindow> windows)
    {
        double nll = 0, refNll = 0, kl = 0;
        long same = 0, n = 0;
        var lpm = new double[model.VocabSize];
        var lpr = new double[model.VocabSize];
        var totals = new List<(double A, double Ar, double K, long S)>();
        foreach (var win in windows)
        {
            var sm = model.CreateDecoder(1).NewSession();
            var sr = reference?.CreateDecoder(1).NewSession();
            double a = 0, ar = 0, k = 0;
            long agree = 0;
            for (int pos = 0; pos + 1 < win.Tokens.Length; pos++)
            {
                var lm = sm.Forward(win.Tokens[pos], pos);
                var lr = sr?.Forward(win.Tokens[pos], pos);
                if (pos + 1 < win.FirstScored) continue;
                int target = win.Tokens[pos + 1];
                Evaluator.LogSoftmax(lm, lpm);
                a -= lpm[target];
                if (lr is not null)
                {
                    Evaluator.LogSoftmax(lr, lpr);
                    ar -= lpr[target];
                    double s = 0;
                    for (int i = 0; i < lpr.Length; i++) s += Math.Exp(lpr[i]) * (lpr[i] - lpm[i]);
                    k += s;
                    if (Sampler.ArgMax(lm) == Sampler.ArgMax(lr)) agree++;
                }
            }
            totals.Add((a, ar, k, agree));
            n += win.ScoredCount;
        }
        foreach (var t in totals)
        {
            nll += t.A;
            refNll += t.Ar;
            kl += t.K;
            same += t.S;
        }
        return reference is null ? new EvalResult(windows.Count, n, nll / n) : new EvalResult(windows.Count, n, nll / n, kl / n, (double)same / n, refNll / n);
    }

    [Theory]
    [InlineData("f32")]
    [InlineData("q8_0")]
    [InlineData("q4_0")]
    [InlineData("int4-g32")]
    public void BatchedPerplexityEqualsTokenByToken(string type)
    {
        var text = File.ReadAllText(LlmTestData.TinyStories)[..6000];
        var model = Model(type);
        // llama.cpp protocol (first half unscored: prefill, then 64-token chunks from the middle) and the paragraph protocol.
        var cpp = EvalProtocols.LlamaCpp(text, LlmTestData.Tokenizer, 150).Take(3).ToList();
        Assert.Equal(TokenByToken(model, null, cpp), Evaluator.Perplexity(model, cpp, threads: 2));
        var para = EvalProtocols.Paragraphs(text, LlmTestData.Tokenizer, 140).Take(3).ToList();
        Assert.Equal(TokenByToken(model, null, para), Evaluator.Perplexity(model, para, threads: 1));
        if (type != "f32")
            Assert.Equal(TokenByToken(model, LlmTestData.Checkpoint.Weights, cpp), Evaluator.Compare(LlmTestData.Checkpoint.Weights, model, cpp, threads: 2));
    }

    [Theory]
    [InlineData("f32")]
    [InlineData("q8_0")]
    [InlineData("q4_1")]
    public void PrefillAndForwardAllEqualForwardPerToken(string type)
    {
        var model = Model(type);
        var tokens = LlmTestData.Tokenizer.Encode("Once upon a time, there was a little girl named Lily. She loved to play outside.", bos: true);
        var one = model.CreateDecoder(1).NewSession();
        var expected = tokens.Select((t, pos) => (float[])one.Forward(t, pos).Clone()).ToArray();
        var batch = model.CreateDecoder(2).NewSession();
        Assert.Equal(expected[^1], batch.Prefill(tokens, 0));
        var all = new float[tokens.Length * model.VocabSize];
        var s2 = model.CreateDecoder(1).NewSession();
        s2.Prefill(tokens.AsSpan(0, 5), 0);
        s2.ForwardAll(tokens.AsSpan(5), 5, all);
        for (int i = 5; i < tokens.Length; i++) Assert.Equal(expected[i], all.AsSpan((i - 5) * model.VocabSize, model.VocabSize).ToArray());
        // Generation after a batched prefill continues exactly as after feeding the prompt token by token.
        var viaGenerator = Generator.Generate(model.CreateDecoder(1), tokens, 20, new Sampler(0f), [1, 2]).ToArray();
        var manual = new List<int>();
        var s3 = model.CreateDecoder(1).NewSession();
        float[] l = [];
        for (int pos = 0; pos < tokens.Length; pos++) l = s3.Forward(tokens[pos], pos);
        for (int pos = tokens.Length; manual.Count < 20; pos++)
        {
            int next = Sampler.ArgMax(l);
            if (next is 1 or 2) break;
            manual.Add(next);
            l = s3.Forward(next, pos);
        }
        Assert.Equal(manual, viaGenerator);
    }

    [Fact]
    public void Gpt2SessionsUseTheTokenByTokenDefault()
    {
        using var m = CausalLmLoader.Open(HfTestData.Gpt2Tiny);
        var r = HfTestData.LoadReference(HfTestData.Gpt2Tiny);
        var one = m.Weights.CreateDecoder(1).NewSession();
        var expected = r.Tokens.Select((t, pos) => (float[])one.Forward(t, pos).Clone()).ToArray();
        var all = new float[r.Tokens.Length * m.Weights.VocabSize];
        m.Weights.CreateDecoder(1).NewSession().ForwardAll(r.Tokens, 0, all);
        for (int i = 0; i < r.Tokens.Length; i++) Assert.Equal(expected[i], all.AsSpan(i * m.Weights.VocabSize, m.Weights.VocabSize).ToArray());
        Assert.Equal(expected[^1], m.Weights.CreateDecoder(1).NewSession().Prefill(r.Tokens, 0));
    }
}
