using QuantSharp.Llm;
using QuantSharp.Llm.Formats;
using QuantSharp.Llm.Kernels;
using QuantSharp.Llm.Synthetic;

namespace QuantSharp.Tests.Llm;

/// <summary>
/// The generated Q8_0 block-scaled kernel (<see cref="JitQ8Gemm"/>) against the defining formula, bit for bit, over
/// every token count 1–37 (all variants and tails of the 3-token register blocks), ragged row counts (partial 16-row
/// panels, 1–4 panel groups) and partial last 32-blocks; and a decoder with it on and off.
/// </summary>
public class JitQ8GemmTests
{
    [Theory]
    [InlineData(1, 32)]
    [InlineData(15, 64)]
    [InlineData(17, 96)]
    [InlineData(70, 256)]
    [InlineData(130, 100)]
    [InlineData(64, 2048)]
    public unsafe void MatchesTheReferenceBitForBit(int rows, int cols)
    {
        if (!JitQ8Gemm.IsSupported) return;
        var src = F32Matrix.FromArray("w", rows, cols, KernelTests.RandomValues(rows * cols, rows * 31 + cols));
        var blocks = BlockMatrix<BlockQ8_0>.QuantizeRows(src);
        var m = new Q8DotMatrix<BlockQ8_0>("w", rows, cols, blocks);
        var panels = JitQ8Panels.For(m.Packed);
        const int maxTokens = 37;
        var x = new Q8Batch(cols, maxTokens);
        x.Quantize(KernelTests.RandomValues(maxTokens * cols, 5 + cols), maxTokens, cols);
        var expected = KernelTests.Reference(blocks, rows, m.BlocksPerRow, x, maxTokens);
        var managed = new float[maxTokens * rows];
        fixed (float* py = managed) QKernels.Gemm(QKernels.Selected, m.Packed, x, 0, maxTokens, py, rows, 0, m.Packed.Groups);
        Assert.Equal(Bits(expected), Bits(managed));
        for (int n = 1; n <= maxTokens; n++)
        {
            // A guard value past the last row and token checks that masked stores write only real rows.
            var y = new float[n * rows + 1];
            y[^1] = 12345f;
            fixed (float* py = y) JitQ8Gemm.Gemm(panels, x, 0, n, py, rows, 0, panels.Panels);
            Assert.Equal(12345f, y[^1]);
            for (int i = 0; i < n * rows; i++)
                Assert.True(BitConverter.SingleToInt32Bits(y[i]) == BitConverter.SingleToInt32Bits(expected[i]),
                    $"[{rows},{cols}] {n} tokens: element {i} is {y[i]:R}, reference {expected[i]:R}");
        }
        // Token and panel sub-ranges (as the decoder's parallel chunks call it).
        var z = new float[maxTokens * rows];
        fixed (float* pz = z)
            for (int p = 0; p < panels.Panels; p++)
            {
                JitQ8Gemm.Gemm(panels, x, 0, 11, pz, rows, p, p + 1);
                JitQ8Gemm.Gemm(panels, x, 11, maxTokens, pz, rows, p, p + 1);
            }
        Assert.Equal(Bits(expected), Bits(z));
    }

    /// <summary>Every variant decodes completely with objdump and holds the block step's instructions.</summary>
    [Fact]
    public void GeneratedVariantsDisassembleCleanly()
    {
        if (!QuantSharp.Tests.Jit.X64AssemblerTests.ObjdumpAvailable()) return;
        for (int t = 1; t <= JitQ8Gemm.MaxTokens; t++)
            for (int c = 1; c <= JitQ8Gemm.MaxPanels; c++)
            {
                var text = QuantSharp.Tests.Jit.X64AssemblerTests.Disassemble(JitQ8Gemm.Emit(t, c));
                Assert.DoesNotContain(text, l => l.Contains("(bad)"));
                Assert.Equal("ret", text[^1]);
                Assert.Equal(8 * t * c, text.Count(l => l.StartsWith("vpdpbusd ")));
                Assert.Equal(t * c, text.Count(l => l.StartsWith("vmulps ") && l.Contains("DWORD BCST")));
                Assert.Equal(t * c, text.Count(l => l.StartsWith("vcvtdq2ps ")));
                Assert.Equal(t * c, text.Count(l => l.StartsWith("vfmadd231ps ")));
                Assert.Equal(t, text.Count(l => l.StartsWith("vmovdqu32 ZMMWORD PTR") && l.Contains("{k1}")));
            }
    }

    private static int[] Bits(float[] v) => v.Select(BitConverter.SingleToInt32Bits).ToArray();

    [Fact]
    public void DecoderGivesIdenticalLogitsWithGeneratedKernelsOnAndOff()
    {
        // FFN 200 rows: a partial 16-row panel; dim 96: 3 blocks.
        var cfg = new LlamaConfig(96, 200, 2, 4, 2, 90, 48, SharedClassifier: false);
        var w = SyntheticModels.CreateLlama(cfg, "q8_0", 11);
        int[] tokens = [1, 17, 42, 86, 3, 3, 8, 60, 11, 70, 2, 33, 5, 9, 14, 27, 31, 44, 50, 61, 72, 80, 85];
        var on = new LlamaDecoder(w, 2);
        var off = new LlamaDecoder(w, 2) { UseGeneratedKernels = false };
        Assert.False(off.UseGeneratedKernels);
        Assert.Equal(JitQ8Gemm.IsEnabled, on.UseGeneratedKernels);
        var sOn = on.NewState();
        var sOff = off.NewState();
        Assert.Equal(off.ForwardBatch(sOff, tokens.AsSpan(0, 16), 0), on.ForwardBatch(sOn, tokens.AsSpan(0, 16), 0));
        Assert.Equal(off.ForwardBatch(sOff, tokens.AsSpan(16), 16), on.ForwardBatch(sOn, tokens.AsSpan(16), 16));
        Assert.Equal(sOff.KeyCache, sOn.KeyCache);
        Assert.Equal(sOff.ValueCache, sOn.ValueCache);
        // Generation after the prompt (decode keeps the managed GEMV) continues identically.
        for (int p = 0; p < 4; p++)
            Assert.Equal(off.Forward(sOff, (p * 13) % 90, tokens.Length + p), on.Forward(sOn, (p * 13) % 90, tokens.Length + p));
    }
}
