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
    public static TheoryData<string> ClipTypes => new() { "int4-g32", "int3-g64", "int2-g128", "q4_0", "q4_1", "q4_k", "q8_0", "int8-channel", "u8-tensor" };

    [Theory]
    [MemberData(nameof(ClipTypes))]
    public void UnclippedCandidateIsThePlainGrid(string type)
    {
        // InitGroupClipped(1, 1) must give exactly round to nearest, so "no clipping" is in the clip search's space.
        var m = LlmTestData.Checkpoint.Weights.Layers[1].W2; // 172 columns: a partial last group for every group size
        var values = MatrixQuantizers.Values(m);
        var plain = MatrixQuantizers.Values(MatrixQuantizers.RoundToNearest(m, type));
        var q = MatrixQuantizers.Create(type, m.Name, m.Rows, m.Cols);
        q.PrepareTensor(values);
        int g = q.GroupSize;
        for (int r = 0; r < m.Rows; r++)
            for (int c0 = 0, gi = 0; c0 < m.Cols; c0 += g, gi++)
            {
                int n = Math.Min(g, m.Cols - c0);
                q.InitGroupClipped(r, gi, values.AsSpan(r * m.Cols + c0, n), 1f, 1f);
                for (int c = c0; c < c0 + n; c++) q.Quantize(r, c, values[r * m.Cols + c]);
            }
        Assert.Equal(plain, MatrixQuantizers.Values(q.Build()));
    }

    [Theory]
    [MemberData(nameof(ClipTypes))]
    public void AwqClipSearchNeverRaisesTheOutputError(string type)
    {
        var w = LlmTestData.Checkpoint.Weights;
        foreach (var m in new[] { w.Layers[1].Wq, w.Layers[3].W2 })
        {
            var st = _calib.Value.For(m)!;
            var s = Awq.Scales(st, 0.5, null);
            var scaled = MatrixQuantizers.Values(m);
            for (int i = 0; i < scaled.Length; i++) scaled[i] *= s[i % m.Cols];
            var plain = MatrixQuantizers.RoundToNearest(m.Name, m.Rows, m.Cols, scaled, type);
            var clipped = Awq.QuantizeClipped(m.Name, m.Rows, m.Cols, scaled, type, s, st, threads: 2);
            double eP = Awq.UnscaledError(plain, scaled, s, st), eC = Awq.UnscaledError(clipped, scaled, s, st);
            output.WriteLine($"{type} {m.Name}: output error plain {eP:G5}, clip search {eC:G5}");
            Assert.Equal(plain.Bytes, clipped.Bytes);
            Assert.True(eC <= eP * (1 + 1e-9), $"{m.Name}: clipped {eC} vs plain {eP}");
            // Formats with per-group ranges at 2–4 bits: clipping finds something better somewhere.
            if (type is "int4-g32" or "int3-g64" or "int2-g128" or "q4_0" or "q4_1") Assert.True(eC < eP, $"{m.Name}: clipped {eC} vs plain {eP}");
        }
    }

    [Fact]
    public void AwqOutputErrorIsNotAboveRtn()
    {
        const string type = "int4-g32";
        // attn_output and ffn_down are the only matrices of their scale sites and are not rescaled afterwards, so the
        // α search (α = 0 is RTN) and the clip search (no clipping is a candidate) guarantee that their calibration
        // output error is at most RTN's.
        var w = LlmTestData.Checkpoint.Weights;
        var rtn = LlmQuantizer.Quantize(w, new LlmQuantizeOptions { Type = type, Method = QuantMethod.Rtn, Threads = 2 }, _calib.Value);
        var awq = LlmQuantizer.Quantize(w, new LlmQuantizeOptions { Type = type, Method = QuantMethod.Awq, Threads = 2 }, _calib.Value);
        var r = rtn.Tensors.ToDictionary(t => t.Name);
        foreach (var t in awq.Tensors.Where(t => t.Name.EndsWith("attn_output") || t.Name.EndsWith("ffn_down")))
        {
            double a = t.RelativeOutputError!.Value, b = r[t.Name].RelativeOutputError!.Value;
            output.WriteLine($"{type} {t.Name}: relative output error AWQ {a:G4}, RTN {b:G4}");
            Assert.True(a <= b * (1 + 1e-6), $"{t.Name}: AWQ {a} vs RTN {b}");
        }
        double mean(LlmQuantizeResult q) => q.Tensors.Where(t => t.Name.StartsWith("blk.")).Average(t => t.RelativeOutputError!.Value);
        Assert.True(mean(awq) < mean(rtn), $"mean relative output error AWQ {mean(awq)} vs RTN {mean(rtn)}");
    }
}
