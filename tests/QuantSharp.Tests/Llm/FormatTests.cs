using System.Runtime.CompilerServices;
using QuantSharp.Llm;
using QuantSharp.Llm.Formats;
using Xunit.Abstractions;

namespace QuantSharp.Tests.Llm;

public class FormatTests(ITestOutputHelper output)
{
    [Fact]
    public void BlockSizesAreFixed()
    {
        Assert.Equal(34, Unsafe.SizeOf<BlockQ8_0>());
        Assert.Equal(18, Unsafe.SizeOf<BlockQ4_0>());
        Assert.Equal(20, Unsafe.SizeOf<BlockQ4_1>());
        Assert.Equal(19, Unsafe.SizeOf<BlockInt4G32>());
        Assert.Equal(35, Unsafe.SizeOf<BlockInt4G64>());
        Assert.Equal(67, Unsafe.SizeOf<BlockInt4G128>());
    }

    private static float[] RandomRow(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1) * (float)Math.Exp(r.NextDouble() - 0.5)).ToArray();
    }

    [Fact]
    public unsafe void Q4_0UsesLlamaCppNibbleOrder()
    {
        // Weight j in the low nibble of byte j, weight j+16 in the high nibble; value = d·(q − 8).
        var v = Enumerable.Range(0, 32).Select(i => (float)(i % 16 - 8)).ToArray();
        v[0] = -8; // largest magnitude is -8 → d = -8/-8 = 1
        var b = BlockQ4_0.Quantize(v);
        Assert.Equal(1f, (float)b.D);
        for (int j = 0; j < 16; j++)
        {
            Assert.Equal((int)v[j] + 8, b.Qs[j] & 0x0F);
            Assert.Equal((int)v[j + 16] + 8, b.Qs[j] >> 4);
        }
        var back = new float[32];
        BlockQ4_0.Dequantize(b, back);
        Assert.Equal(v, back);
    }

    [Theory]
    [InlineData("q8_0", 0.5 / 127 * 1.7)]
    [InlineData("q4_0", 1.7 / 8 + 0.01)] // d = m/−8: the side opposite m clamps at 7·|d|, so the error reaches |d|
    [InlineData("q4_1", 0.5 / 15 * 3.4)]
    [InlineData("int8-channel", 0.5 / 127 * 1.7)]
    [InlineData("int4-g32", 0.5 / 15 * 3.4 + 0.01)]
    [InlineData("int4-g64", 0.5 / 15 * 3.4 + 0.01)]
    [InlineData("int4-g128", 0.5 / 15 * 3.4 + 0.01)]
    public void RoundTripErrorIsWithinHalfAStep(string type, double tolerance)
    {
        // 172 columns: 5 full 32-blocks and a partial one of 12 (stories260K's FFN rows).
        int rows = 7, cols = 172;
        var values = Enumerable.Range(0, rows).SelectMany(r => RandomRow(cols, r)).ToArray();
        var src = F32Matrix.FromArray("w", rows, cols, values);
        var q = WeightFormats.Quantize(src, type);
        Assert.Equal(type, q.TypeName);
        var row = new float[cols];
        double maxErr = 0;
        for (int r = 0; r < rows; r++)
        {
            q.DequantizeRow(r, row);
            for (int c = 0; c < cols; c++) maxErr = Math.Max(maxErr, Math.Abs(row[c] - values[r * cols + c]));
        }
        output.WriteLine($"{type}: max error {maxErr:G4}, {q.BitsPerWeight:F3} bits/weight");
        Assert.True(maxErr <= tolerance, $"{type}: {maxErr}");
    }

    [Fact]
    public void PartialBlocksAreCountedHonestly()
    {
        var src = F32Matrix.FromArray("w", 2, 172, new float[344]);
        // 172 = 5·32 + 12 → 6 blocks per row.
        Assert.Equal(2 * 6 * 34, WeightFormats.Quantize(src, "q8_0").Bytes);
        Assert.Equal(2 * 6 * 18, WeightFormats.Quantize(src, "q4_0").Bytes);
        Assert.Equal(2 * 2 * 67, WeightFormats.Quantize(src, "int4-g128").Bytes);
        Assert.Equal(2 * 6 * 34 * 8.0 / 344, WeightFormats.Quantize(src, "q8_0").BitsPerWeight, 9);
    }

    [Theory]
    [InlineData("q8_0")]
    [InlineData("q4_0")]
    [InlineData("q4_1")]
    public void SimdProductMatchesScalarReferenceExactly(string type)
    {
        int rows = 9, cols = 172;
        var src = F32Matrix.FromArray("w", rows, cols, Enumerable.Range(0, rows).SelectMany(r => RandomRow(cols, 100 + r)).ToArray());
        var q = WeightFormats.Quantize(src, type);
        var x = RandomRow(cols, 7);
        var qx = new Q8Activations(cols);
        qx.Quantize(x);
        var a = new float[rows];
        var b = new float[rows];
        SetSimd(q, false);
        q.MatVecQ8(qx, a, 0, rows);
        SetSimd(q, true);
        q.MatVecQ8(qx, b, 0, rows);
        Assert.Equal(a, b);

        // And the product is close to the FP32 product of the dequantized weights with the unquantized activations.
        var f = new float[rows];
        q.MatVec(x, f, 0, rows);
        for (int r = 0; r < rows; r++) Assert.True(Math.Abs(a[r] - f[r]) < 0.05 * (1 + Math.Abs(f[r])), $"row {r}: {a[r]} vs {f[r]}");
    }

    private static void SetSimd(WeightMatrix m, bool simd) =>
        ((IPackedQ8Matrix)m).Isa = simd ? QuantSharp.Llm.Kernels.QKernels.Selected : QuantSharp.Llm.Kernels.QKernelIsa.Scalar;

    [Fact]
    public void QuantizedModelKeepsTheSharedClassifierShared()
    {
        var q = WeightFormats.QuantizeModel(LlmTestData.Checkpoint.Weights, "q4_0");
        Assert.Same(q.TokenEmbedding, q.Classifier);
        Assert.All(q.Matrices, m => Assert.Equal("q4_0", m.TypeName));
        Assert.True(q.TotalBytes < LlmTestData.Checkpoint.Weights.TotalBytes / 5);
    }

    [Fact]
    public void Q8_0PerplexityAddsAtMostTwoHundredths()
    {
        var fp = LlmTestData.Checkpoint.Weights;
        var q8 = WeightFormats.QuantizeModel(fp, "q8_0");
        var windows = PerplexityTests.Windows.Take(PerplexityTests.PrefixWindows).ToList();
        var res = Evaluator.Compare(fp, q8, windows);
        output.WriteLine($"prefix {windows.Count} windows: fp32 {res.ReferencePerplexity:F4}, q8_0 {res.Perplexity:F4}, KL {res.MeanKl:G4}, same-top {res.SameTopRate:P2}");
        Assert.True(res.Perplexity - res.ReferencePerplexity!.Value <= 0.02, $"{res.Perplexity} vs {res.ReferencePerplexity}");
        Assert.True(res.MeanKl < 0.01);
        Assert.True(res.SameTopRate > 0.95);
    }

    [Fact]
    public void Q4_0DecodesCoherently()
    {
        var q4 = WeightFormats.QuantizeModel(LlmTestData.Checkpoint.Weights, "q4_0");
        var dec = new LlamaDecoder(q4);
        var text = string.Concat(Generator.GenerateText(dec, LlmTestData.Tokenizer, "Once upon a time", 20, new Sampler(0f)));
        output.WriteLine(text);
        Assert.StartsWith("Once upon a time", text);
    }
}
