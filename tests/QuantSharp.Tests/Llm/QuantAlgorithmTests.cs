using QuantSharp.Llm;
using QuantSharp.Llm.Quantization;
using Xunit.Abstractions;

namespace QuantSharp.Tests.Llm;

/// <summary>GPTQ, AWQ and imatrix on stories260K layers against round to nearest, on calibration statistics.</summary>
public class QuantAlgorithmTests(ITestOutputHelper output)
{
    // Calibration from the end of the TinyStories file (evaluation uses its beginning): 4 windows of 128 tokens.
    private static readonly Lazy<CalibrationData> _calib = new(() =>
    {
        string text = File.ReadAllText(LlmTestData.TinyStories);
        var windows = Calibrator.Windows(text[^20000..], LlmTestData.Tokenizer, 128, 4);
        return Calibrator.Collect(LlmTestData.Checkpoint.Weights, windows, 2);
    });

    public static TheoryData<string> LowBitTypes => new() { "int4-g32", "int3-g64", "q4_0", "q4_k", "int2-g32" };

    [Theory]
    [MemberData(nameof(LowBitTypes))]
    public void GptqReducesLayerOutputErrorAgainstRtn(string type)
    {
        var w = LlmTestData.Checkpoint.Weights;
        foreach (var m in new[] { w.Layers[1].Wq, w.Layers[1].W2 })
        {
            var st = _calib.Value.For(m)!;
            var rtn = MatrixQuantizers.RoundToNearest(m, type);
            var gptq = Gptq.Quantize(m, type, st.Hessian());
            double eR = Awq.OutputError(m, rtn, st), eG = Awq.OutputError(m, gptq, st);
            output.WriteLine($"{type} {m.Name}: output error RTN {eR:G4}, GPTQ {eG:G4} ({eG / eR:P0})");
            Assert.Equal(rtn.Bytes, gptq.Bytes);
            Assert.True(eG < eR, $"{m.Name}: GPTQ {eG} vs RTN {eR}");
        }
    }

    [Theory]
    [MemberData(nameof(LowBitTypes))]
    public void ImatrixReducesLayerOutputErrorAgainstRtn(string type)
    {
        var w = LlmTestData.Checkpoint.Weights;
        var m = w.Layers[2].W1;
        var st = _calib.Value.For(m)!;
        double eR = Awq.OutputError(m, MatrixQuantizers.RoundToNearest(m, type), st);
        double eI = Awq.OutputError(m, MatrixQuantizers.RoundToNearest(m, type, st.Importance()), st);
        output.WriteLine($"{type} {m.Name}: output error RTN {eR:G4}, imatrix {eI:G4}");
        Assert.True(eI <= eR, $"imatrix {eI} vs RTN {eR}");
    }

    [Fact]
    public void AwqScalingIsExactInFp32AndReducesLayerError()
    {
        var w = LlmTestData.Checkpoint.Weights;
        var (scaled, sites) = Awq.Apply(w, _calib.Value, _ => "int3-g64");
        foreach (var s in sites.Take(4)) output.WriteLine($"{s.Name}: alpha {s.Alpha:F2}, error {s.Error:G4} vs RTN {s.RtnError:G4}");
        Assert.All(sites, s => Assert.True(s.Error <= s.RtnError));
        Assert.Contains(sites, s => s.Error < 0.95 * s.RtnError);
        // The folds are exact: the scaled FP32 model gives the same logits up to float rounding.
        var a = new LlamaDecoder(w, 1);
        var b = new LlamaDecoder(scaled, 1);
        var sa = a.NewState();
        var sb = b.NewState();
        int[] toks = LlmTestData.Tokenizer.Encode("Once upon a time, there was a little dog", bos: true);
        for (int p = 0; p < toks.Length; p++)
        {
            var la = a.Forward(sa, toks[p], p);
            var lb = b.Forward(sb, toks[p], p);
            for (int i = 0; i < la.Length; i++) Assert.True(Math.Abs(la[i] - lb[i]) < 1e-3f * (1 + Math.Abs(la[i])), $"pos {p} logit {i}: {la[i]} vs {lb[i]}");
        }
    }
}
