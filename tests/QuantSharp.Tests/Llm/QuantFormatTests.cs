using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using QuantSharp.Llm;
using QuantSharp.Llm.Formats;
using QuantSharp.Llm.Gguf;
using QuantSharp.Llm.Quantization;
using Xunit.Abstractions;

namespace QuantSharp.Tests.Llm;

/// <summary>INT3/INT2 groups, runtime Q4_K, per-tensor UINT8, and the codecs the algorithms build matrices with.</summary>
public class QuantFormatTests(ITestOutputHelper output)
{
    [Fact]
    public void NewBlockSizesAreFixed()
    {
        Assert.Equal(15, Unsafe.SizeOf<BlockInt3G32>());
        Assert.Equal(27, Unsafe.SizeOf<BlockInt3G64>());
        Assert.Equal(51, Unsafe.SizeOf<BlockInt3G128>());
        Assert.Equal(11, Unsafe.SizeOf<BlockInt2G32>());
        Assert.Equal(19, Unsafe.SizeOf<BlockInt2G64>());
        Assert.Equal(35, Unsafe.SizeOf<BlockInt2G128>());
        Assert.Equal(144, Unsafe.SizeOf<BlockQ4_K>());
        Assert.Equal(8, Unsafe.SizeOf<U8TensorHeader>());
    }

    private static float[] RandomValues(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1) * (float)Math.Exp(r.NextDouble() - 0.5)).ToArray();
    }

    [Theory]
    [InlineData("int3-g32", 0.5 / 7 * 3.4 + 0.01)]
    [InlineData("int3-g64", 0.5 / 7 * 3.4 + 0.01)]
    [InlineData("int3-g128", 0.5 / 7 * 3.4 + 0.01)]
    [InlineData("int2-g32", 0.5 / 3 * 3.4 + 0.01)]
    [InlineData("int2-g64", 0.5 / 3 * 3.4 + 0.01)]
    [InlineData("int2-g128", 0.5 / 3 * 3.4 + 0.01)]
    [InlineData("q4_k", 0.5 / 15 * 3.4 * 1.2)]
    [InlineData("u8-tensor", 0.5 / 255 * 3.4 + 1e-4)]
    public void RoundTripErrorIsWithinHalfAStep(string type, double tolerance)
    {
        // 7 × 172: partial last groups for every group size (172 = 5·32 + 12 = 2·64 + 44 = 128 + 44; Q4_K: 256 > 172).
        int rows = 7, cols = 172;
        var values = RandomValues(rows * cols, 3);
        var q = WeightFormats.Quantize(F32Matrix.FromArray("w", rows, cols, values), type);
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
        Assert.Equal(2 * 6 * 15, WeightFormats.Quantize(src, "int3-g32").Bytes);
        Assert.Equal(2 * 3 * 27, WeightFormats.Quantize(src, "int3-g64").Bytes);
        Assert.Equal(2 * 2 * 51, WeightFormats.Quantize(src, "int3-g128").Bytes);
        Assert.Equal(2 * 6 * 11, WeightFormats.Quantize(src, "int2-g32").Bytes);
        Assert.Equal(2 * 1 * 144, WeightFormats.Quantize(src, "q4_k").Bytes);
        Assert.Equal(344 + 8, WeightFormats.Quantize(src, "u8-tensor").Bytes);
        Assert.Equal(2 * 144 * 8.0 / 344, WeightFormats.Quantize(src, "q4_k").BitsPerWeight, 9);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public unsafe void BitStreamPackingRoundTrips(int bits)
    {
        var r = new Random(bits);
        var codes = Enumerable.Range(0, 128).Select(_ => r.Next(1 << bits)).ToArray();
        byte* qs = stackalloc byte[48];
        for (int i = 0; i < 48; i++) qs[i] = 0xFF; // Set must clear the old bits
        for (int i = 0; i < 128; i++) LowBitGroup.Set(qs, bits, i, codes[i]);
        for (int i = 0; i < 128; i++) Assert.Equal(codes[i], LowBitGroup.Get(qs, bits, i));
        // Little-endian bit stream: code 0 in the lowest bits of byte 0.
        Assert.Equal(codes[0], qs[0] & ((1 << bits) - 1));
        Assert.Equal(codes[1], (qs[0] >> bits) & ((1 << bits) - 1));
    }

    [Fact]
    public void Q4KBlockIsTheGgmlBlock()
    {
        var v = RandomValues(512, 9);
        var ggml = GgmlBlocks.Quantize(GgmlType.Q4_K, v, 512);
        var m = (BlockMatrix<BlockQ4_K>)WeightFormats.Quantize(F32Matrix.FromArray("w", 1, 512, v), "q4_k");
        Assert.Equal(ggml, MemoryMarshal.AsBytes(m.Blocks).ToArray());
    }

    public static TheoryData<string> QuantizedTypes => new(MatrixQuantizers.Types.Where(t => t != "f32"));

    /// <summary>
    /// Building a matrix through a quantizer (group grid, then every weight through the codec) reproduces the format's
    /// reference quantizer exactly: the codecs apply the same rounding rule.
    /// </summary>
    [Theory]
    [MemberData(nameof(QuantizedTypes))]
    public void CodecsReproduceTheReferenceQuantizer(string type)
    {
        int rows = 5, cols = 300;
        var values = RandomValues(rows * cols, 11);
        var src = F32Matrix.FromArray("w", rows, cols, values);
        var reference = WeightFormats.Quantize(src, type);
        var built = MatrixQuantizers.RoundToNearest(src, type);
        Assert.Equal(reference.GetType(), built.GetType());
        Assert.Equal(reference.Bytes, built.Bytes);
        var a = new float[cols];
        var b = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            reference.DequantizeRow(r, a);
            built.DequantizeRow(r, b);
            Assert.Equal(a, b);
        }
    }

    [Fact]
    public void ImportanceSearchNeverIncreasesTheWeightedError()
    {
        int rows = 6, cols = 96;
        var values = RandomValues(rows * cols, 5);
        var r = new Random(1);
        var imp = Enumerable.Range(0, cols).Select(_ => (float)Math.Exp(3 * r.NextDouble())).ToArray();
        var src = F32Matrix.FromArray("w", rows, cols, values);
        foreach (var type in new[] { "q4_0", "int3-g32", "int2-g64", "q4_k", "int8-channel" })
        {
            double Err(WeightMatrix m)
            {
                var row = new float[cols];
                double e = 0;
                for (int i = 0; i < rows; i++)
                {
                    m.DequantizeRow(i, row);
                    for (int c = 0; c < cols; c++) e += imp[c] * Math.Pow(row[c] - values[i * cols + c], 2);
                }
                return e;
            }
            double plain = Err(MatrixQuantizers.RoundToNearest(src, type)), weighted = Err(MatrixQuantizers.RoundToNearest(src, type, imp));
            output.WriteLine($"{type}: weighted error {plain:G4} → {weighted:G4}");
            Assert.True(weighted <= plain * (1 + 1e-9), type);
        }
    }

    [Fact]
    public void GptqWithIdentityHessianAndNoActOrderIsRoundToNearest()
    {
        // With H = I there is nothing to compensate: the error of column j moves nothing (U is diagonal).
        int rows = 4, cols = 70;
        var values = RandomValues(rows * cols, 2);
        var h = new double[cols * cols];
        for (int i = 0; i < cols; i++) h[i * cols + i] = 1;
        var src = F32Matrix.FromArray("w", rows, cols, values);
        var g = Gptq.Quantize(src, "int3-g32", h, new GptqOptions { ActOrder = false, BlockSize = 16, ClipSearch = false });
        var rtn = MatrixQuantizers.RoundToNearest(src, "int3-g32");
        var a = new float[cols];
        var b = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            g.DequantizeRow(r, a);
            rtn.DequantizeRow(r, b);
            Assert.Equal(b, a);
        }
    }

    [Fact]
    public void LazyBatchesGiveTheSameResultForAnyBatchSize()
    {
        int rows = 3, cols = 90;
        var values = RandomValues(rows * cols, 4);
        var x = RandomValues(200 * cols, 8);
        var st = new InputStats(cols);
        for (int t = 0; t < 200; t++) st.Add(x.AsSpan(t * cols, cols));
        var src = F32Matrix.FromArray("w", rows, cols, values);
        var a = Gptq.Quantize(src, "int4-g32", st.Hessian(), new GptqOptions { BlockSize = 128 });
        var b = Gptq.Quantize(src, "int4-g32", st.Hessian(), new GptqOptions { BlockSize = 7 });
        var ra = new float[cols];
        var rb = new float[cols];
        int differ = 0;
        for (int r = 0; r < rows; r++)
        {
            a.DequantizeRow(r, ra);
            b.DequantizeRow(r, rb);
            for (int c = 0; c < cols; c++) if (ra[c] != rb[c]) differ++;
        }
        // Same arithmetic up to the order of double additions: at most a rare rounding tie may flip.
        Assert.True(differ <= 2, $"{differ} weights differ");
    }
}
