using System.Buffers.Binary;
using QuantSharp.Llm.Gguf;

namespace QuantSharp.Tests.Gguf;

/// <summary>Q4_K super-blocks checked with a decoder written here from the block description.</summary>
public class Q4KTests
{
    // Sub-block s: 6-bit scale and min, unpacked from the 12 scale bytes as the layout defines them.
    private static (int, int) ScaleMin(ReadOnlySpan<byte> q, int s)
    {
        if (s < 4) return (q[s] & 0x3F, q[s + 4] & 0x3F);
        int sc = (q[s + 4] & 0x0F) + 16 * (q[s - 4] >> 6);
        int m = (q[s + 4] >> 4) + 16 * (q[s] >> 6);
        return (sc, m);
    }

    private static float[] Decode(ReadOnlySpan<byte> data, int n, out float[] d, out float[] dmin)
    {
        var y = new float[n];
        d = new float[n / 256];
        dmin = new float[n / 256];
        for (int b = 0; b < n / 256; b++)
        {
            var blk = data.Slice(b * 144, 144);
            d[b] = (float)BitConverter.ToHalf(blk[..2]);
            dmin[b] = (float)BitConverter.ToHalf(blk.Slice(2, 2));
            for (int i = 0; i < 256; i++)
            {
                int s = i / 32;
                var (sc, m) = ScaleMin(blk.Slice(4, 12), s);
                // Elements 64c..64c+31 are the low nibbles of bytes 32c.., elements 64c+32.. the high nibbles.
                int c = i / 64, l = i % 64;
                byte qb = blk[16 + 32 * c + l % 32];
                int q = l < 32 ? qb & 0xF : qb >> 4;
                y[b * 256 + i] = d[b] * sc * q - dmin[b] * m;
            }
        }
        return y;
    }

    [Fact]
    public void BlockLayoutAndErrorBound()
    {
        var rng = new Random(11);
        // Sub-blocks with different spreads and offsets so that every scale/min field takes a different value.
        var x = new float[4 * 512];
        for (int i = 0; i < x.Length; i++)
        {
            int sb = i / 32;
            x[i] = (float)((rng.NextDouble() * 2 - 1 + 0.6 * (sb % 3 - 1)) * (0.25 + sb * 5 % 8 / 4.0));
        }
        var bytes = GgmlBlocks.Quantize(GgmlType.Q4_K, x, 512);
        Assert.Equal(x.Length / 256 * 144, bytes.Length);
        var y = Decode(bytes, x.Length, out var d, out var dmin);
        var lib = new float[x.Length];
        GgmlBlocks.Dequantize(GgmlType.Q4_K, bytes, lib);
        Assert.Equal(y, lib);
        for (int i = 0; i < x.Length; i++)
        {
            int b = i / 256;
            var (sc, _) = ScaleMin(bytes.AsSpan(b * 144 + 4, 12), i % 256 / 32);
            // Half a grid step, plus what the 6-bit rounding of the step (≤ d/2 per level, 15 levels) and of the
            // offset (≤ dmin/2) can move the grid.
            double bound = 0.5 * d[b] * sc + 7.5 * d[b] + 0.5 * dmin[b] + 1e-6;
            Assert.True(Math.Abs(x[i] - y[i]) <= bound, $"[{i}] {y[i]} vs {x[i]} (bound {bound})");
        }
        // The distinct sub-blocks really produce distinct 6-bit scales (the test exercises the packing of all fields).
        var scales = Enumerable.Range(0, 8).Select(s => ScaleMin(bytes.AsSpan(4, 12), s)).ToArray();
        Assert.True(scales.Select(s => s.Item1).Distinct().Count() >= 4);
        Assert.True(scales.Select(s => s.Item2).Distinct().Count() >= 3);
        Assert.Equal((256, 144), (GgmlTypes.BlockSize(GgmlType.Q4_K), GgmlTypes.TypeSize(GgmlType.Q4_K)));
        Assert.Equal(BinaryPrimitives.ReadHalfLittleEndian(bytes), (Half)d[0]);
    }

    [Fact]
    public void Q4KRoundTripsThroughAGgufFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"qs-q4k-{Guid.NewGuid():N}.gguf");
        try
        {
            var x = Enumerable.Range(0, 512).Select(i => MathF.Sin(i * 0.37f) * (1 + i / 256)).ToArray();
            new GgufWriter().AddTensor("w", [256, 2], GgmlType.Q4_K, x).Write(path);
            using var f = GgufFile.Open(path);
            var t = f.Tensor("w");
            Assert.Equal((GgmlType.Q4_K, 288L), (t.Type, t.Bytes));
            Assert.Equal(Decode(f.TensorBytes(t), 512, out _, out _), f.ReadFloats(t));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
