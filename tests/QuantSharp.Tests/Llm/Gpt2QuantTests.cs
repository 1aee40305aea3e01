using QuantSharp.Llm;
using QuantSharp.Llm.Gpt2;
using QuantSharp.Llm.Quantization;
using QuantSharp.Llm.Synthetic;
using Xunit.Abstractions;

namespace QuantSharp.Tests.Llm;

/// <summary>GPTQ, AWQ and imatrix on a small random GPT-2 (calibration statistics, AWQ's exact folds, output errors).</summary>
public class Gpt2QuantTests(ITestOutputHelper output)
{
    private static readonly Gpt2Config Config = new(64, 256, 2, 4, 100, 48);

    /// <summary>
    /// Random weights with non-trivial LayerNorm gains/biases and linear biases (so AWQ's folds into them are exercised),
    /// and a few input channels of each LayerNorm boosted (activation outliers, the case AWQ is for).
    /// </summary>
    private static readonly Lazy<Gpt2Weights> _model = new(() =>
    {
        var w = SyntheticGpt2.Create(Config, "f32", seed: 11);
        var rng = new Random(5);
        float[] Vec(int n, float mean, float sd) => Enumerable.Range(0, n).Select(_ => mean + sd * (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] Gain(int n)
        {
            var g = Vec(n, 1f, 0.3f);
            for (int i = 0; i < n; i += 9) g[i] *= 6f;
            return g;
        }
        var layers = w.Layers.Select(l => l with
        {
            Ln1Gain = Gain(64), Ln1Bias = Vec(64, 0, 0.2f), Bqkv = Vec(192, 0, 0.05f), Bo = Vec(64, 0, 0.05f),
            Ln2Gain = Gain(64), Ln2Bias = Vec(64, 0, 0.2f), Bfc = Vec(256, 0, 0.05f), Bproj = Vec(64, 0, 0.05f),
        }).ToArray();
        return w with { Layers = layers, LnFGain = Gain(64), LnFBias = Vec(64, 0, 0.2f) };
    });

    private static readonly Lazy<CalibrationData> _calib = new(() =>
    {
        var rng = new Random(3);
        var windows = Enumerable.Range(0, 12).Select(_ => Enumerable.Range(0, 48).Select(_ => rng.Next(Config.VocabSize)).ToArray()).ToList();
        return Calibrator.Collect(_model.Value, windows, 2);
    });

    [Fact]
    public void CalibrationRecordsEveryProductInput()
    {
        var w = _model.Value;
        var calib = _calib.Value;
        Assert.Equal(12 * 48, calib.Tokens);
        foreach (var l in w.Layers)
            foreach (var m in l.Matrices) Assert.Equal(12 * 48, calib.For(m)!.Count);
        Assert.Equal(12 * 48, calib.For(w.Head)!.Count);
        Assert.Null(calib.For(w.PositionEmbedding));
    }

    [Fact]
    public void AwqFoldsAreExactInFp32()
    {
        var w = _model.Value;
        var (scaled, sites, _) = Awq.ApplyWithScales(w, _calib.Value, _ => "int3-g32");
        Assert.Equal(3 * Config.Layers, sites.Count); // attn_qkv, attn_output, ffn_up per block; ffn_down not foldable; head tied
        Assert.Contains(sites, s => s.Alpha > 0);
        Assert.All(sites, s => Assert.True(s.Error <= s.RtnError));
        var a = w.CreateDecoder(1).NewSession();
        var b = scaled.CreateDecoder(1).NewSession();
        for (int p = 0; p < 20; p++)
        {
            int tok = (p * 37 + 5) % Config.VocabSize;
            var la = a.Forward(tok, p).ToArray();
            var lb = b.Forward(tok, p);
            for (int i = 0; i < la.Length; i++) Assert.True(Math.Abs(la[i] - lb[i]) < 1e-3f * (1 + Math.Abs(la[i])), $"pos {p} logit {i}: {la[i]} vs {lb[i]}");
        }
    }

    [Theory]
    [InlineData("int4-g32")]
    [InlineData("int3-g64")]
    public void GptqAwqAndImatrixLowerTheOutputErrorAgainstRtn(string type)
    {
        var w = _model.Value;
        double Mean(Gpt2QuantizeResult r) => r.Tensors.Where(t => t.Name.StartsWith("blk.")).Average(t => t.RelativeOutputError!.Value);
        var res = new[] { QuantMethod.Rtn, QuantMethod.Gptq, QuantMethod.Awq, QuantMethod.Imatrix }
            .ToDictionary(m => m, m => LlmQuantizer.Quantize(w, new LlmQuantizeOptions { Type = type, Method = m, Threads = 2 }, _calib.Value));
        foreach (var (m, r) in res) output.WriteLine($"{type} {m}: mean relative output error {Mean(r):G4}");
        var rtn = res[QuantMethod.Rtn];
        Assert.Equal(rtn.Weights.TotalBytes(), res[QuantMethod.Gptq].Weights.TotalBytes());
        Assert.Equal(type, rtn.Tensors.Single(t => t.Name == "blk.0.ffn_down").Type);
        Assert.Equal("q8_0", rtn.Tensors.Single(t => t.Name == "position_embd").Type);
        Assert.True(Mean(res[QuantMethod.Gptq]) < Mean(rtn));
        Assert.True(Mean(res[QuantMethod.Awq]) < Mean(rtn));
        Assert.True(Mean(res[QuantMethod.Imatrix]) <= Mean(rtn));
        // Single-matrix AWQ sites that are not rescaled afterwards: never above RTN on the calibration objective.
        var r0 = rtn.Tensors.ToDictionary(t => t.Name);
        foreach (var t in res[QuantMethod.Awq].Tensors.Where(t => t.Name.EndsWith("attn_output") || t.Name.EndsWith("ffn_down") || t.Name.EndsWith("ffn_up")))
            Assert.True(t.RelativeOutputError <= r0[t.Name].RelativeOutputError * (1 + 1e-6), $"{t.Name}: AWQ {t.RelativeOutputError} vs RTN {r0[t.Name].RelativeOutputError}");
        // The quantized model runs.
        var logits = res[QuantMethod.Awq].Weights.CreateDecoder(1).NewSession().Forward(3, 0);
        Assert.All(logits, x => Assert.True(float.IsFinite(x)));
    }
}
