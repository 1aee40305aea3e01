using System.Text.Json;
using QuantSharp.Cli;
using QuantSharp.Llm;
using QuantSharp.Llm.Gpt2;
using QuantSharp.Llm.Synthetic;

namespace QuantSharp.Tests.Llm;

public class Gpt2Tests
{
    [Fact]
    public void GeluIsTheTanhForm()
    {
        foreach (float z in new[] { -3f, -1f, -0.1f, 0f, 0.5f, 2f })
        {
            double expected = 0.5 * z * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (z + 0.044715 * z * z * z)));
            Assert.Equal(expected, Gpt2Decoder.Gelu(z), 6);
        }
    }

    [Fact]
    public void LayerNormUsesThePopulationVariance()
    {
        float[] x = [1, 2, 3, 6], o = new float[4];
        Gpt2Decoder.LayerNorm(o, x, [1, 1, 1, 2], [0, 0, 0, 1], 0f);
        double mean = 3, sd = Math.Sqrt((4 + 1 + 0 + 9) / 4.0);
        Assert.Equal((1 - mean) / sd, o[0], 5);
        Assert.Equal(2 * (6 - mean) / sd + 1, o[3], 5);
    }

    [Fact]
    public void Gpt2SmallHas124MParametersWithTheTiedHead()
    {
        var c = SyntheticGpt2.Gpt2_124M;
        long perLayer = 4L * c.Dim + 3L * c.Dim * c.Dim + 3 * c.Dim + (long)c.Dim * c.Dim + c.Dim + 2L * c.Dim * c.HiddenDim + c.HiddenDim + c.Dim;
        long expected = (long)c.VocabSize * c.Dim + (long)c.SeqLen * c.Dim + c.Layers * perLayer + 2 * c.Dim;
        Assert.Equal(124_439_808, expected);

        // A small model with the same structure: the table lists every tensor once and the head is wte.
        var w = SyntheticGpt2.Create(new Gpt2Config(64, 256, 2, 4, 100, 16), "q8_0", seed: 7);
        Assert.True(w.TiedHead);
        var table = w.TensorTable();
        Assert.Equal(2 + 2 * 12 + 2, table.Count);
        Assert.Equal("q8_0", table.Single(t => t.Name == "h.1.mlp.c_fc.weight").Type);
        // Same seed, same weights; the decoder runs on them.
        var again = SyntheticGpt2.Create(new Gpt2Config(64, 256, 2, 4, 100, 16), "q8_0", seed: 7);
        var l1 = w.CreateDecoder(1).NewSession().Forward(5, 0).ToArray();
        var l2 = again.CreateDecoder(2).NewSession().Forward(5, 0).ToArray();
        Assert.Equal(l1, l2);
        Assert.All(l1, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void KvCacheGivesTheSameLogitsAsRecomputingEachPrefix()
    {
        var w = SyntheticGpt2.Create(new Gpt2Config(32, 64, 2, 4, 50, 8), "f32", seed: 3);
        int[] tokens = [3, 17, 9, 42, 0];
        var s = w.CreateDecoder().NewSession();
        var cached = tokens.Select((t, p) => s.Forward(t, p).ToArray()).ToArray();
        for (int n = 1; n <= tokens.Length; n++)
        {
            var fresh = w.CreateDecoder().NewSession();
            float[] last = [];
            for (int p = 0; p < n; p++) last = fresh.Forward(tokens[p], p);
            Assert.Equal(cached[n - 1], last);
        }
        Assert.Throws<QuantSharpException>(() => s.Forward(50, 5));
        Assert.Throws<QuantSharpException>(() => s.Forward(1, 8));
    }

    private static (int Rc, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = Program.Run(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    [Fact]
    public void InspectSyntheticGpt2SmallPrintsTheFootprint()
    {
        var (rc, o, e) = Run("llm", "inspect", "--synthetic", "gpt2-124m", "--json");
        Assert.True(rc == 0, e);
        var doc = JsonDocument.Parse(o).RootElement;
        Assert.Equal("gpt2", doc.GetProperty("architecture").GetString());
        Assert.Equal(124_439_808, doc.GetProperty("parameters").GetInt64());
        Assert.Equal(4L * 124_439_808, doc.GetProperty("bytes").GetInt64());
        Assert.Equal(2 + 12 * 12 + 2, doc.GetProperty("tensors").GetArrayLength());
        var (rc2, _, e2) = Run("llm", "inspect", "--synthetic", "gpt3");
        Assert.Equal(2, rc2);
        Assert.Contains("gpt3", e2);
    }

    [Fact]
    public void CliRunsHuggingFaceDirectories()
    {
        var (rc, o, e) = Run("llm", "inspect", HfTestData.LlamaTiny);
        Assert.True(rc == 0, e);
        Assert.Contains("model.layers.1.mlp.down_proj.weight", o);
        Assert.Contains("bf16", o);
        var (rc2, o2, e2) = Run("llm", "generate", HfTestData.Gpt2Tiny, "--prompt", "Once upon", "-n", "5", "--temperature", "0");
        Assert.True(rc2 == 0, e2);
        Assert.StartsWith("Once upon", o2);
        string text = Path.Combine(TestPaths.NewTempDir("qs-ppl"), "t.txt");
        File.WriteAllText(text, string.Join("\n\n", Enumerable.Repeat("Tom and his dog went to the store. They bought some milk.", 8)));
        var (rc3, o3, e3) = Run("llm", "perplexity", HfTestData.Gpt2Tiny, "--text", text, "--ctx", "16", "--json", "--type", "q8_0");
        Assert.True(rc3 == 0, e3);
        var doc = JsonDocument.Parse(o3).RootElement;
        Assert.True(doc.GetProperty("tokens").GetInt64() > 0);
        Assert.True(doc.GetProperty("ppl").GetDouble() > 1);
        Assert.True(doc.GetProperty("kl").GetDouble() >= 0);
    }
}
