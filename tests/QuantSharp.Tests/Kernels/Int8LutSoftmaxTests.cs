using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Tests.Kernels;

/// <summary>The vectorised table lookup and quantized Softmax row equal their scalar references byte for byte (odd and block-edge lengths).</summary>
public class Int8LutSoftmaxTests
{
    private static readonly int[] Lengths = [0, 1, 5, 15, 16, 17, 31, 63, 64, 65, 127, 128, 129, 200, 257];

    [Theory]
    [InlineData((byte)0)]
    [InlineData((byte)0x80)]
    public void LookupMatchesReference(byte flip)
    {
        var rnd = new Random(21 + flip);
        var table = new byte[256];
        rnd.NextBytes(table);
        foreach (int n in Lengths)
        {
            var x = Int8GemmCheck.Bytes(rnd, n, signed: flip != 0);
            var expected = new byte[n + 1];
            var actual = new byte[n + 1];
            expected[^1] = actual[^1] = 77;
            Int8LutReference.Lookup(x, flip, table, expected.AsSpan(0, n));
            Int8Lut.Lookup(x, flip, table, actual.AsSpan(0, n));
            Assert.Equal(expected, actual);
        }
        // Every index reaches its own entry.
        var all = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        var y = new byte[256];
        Int8Lut.Lookup(all, flip, table, y);
        for (int i = 0; i < 256; i++) Assert.Equal(table[i ^ flip], y[i]);
    }

    [Theory]
    [InlineData((byte)0, 0, 255, 0)]
    [InlineData((byte)0x80, 0, 255, 3)]
    [InlineData((byte)0, -128, 127, -128)]
    [InlineData((byte)0x80, -128, 127, -20)]
    public void SoftmaxRowMatchesReference(byte flip, int lo, int hi, int yz)
    {
        var rnd = new Random(31 + yz);
        foreach (float xs in new[] { 0.02f, 0.11f, 0.5f })
        {
            var exp = Enumerable.Range(0, 256).Select(d => (float)Math.Exp(-(double)d * xs)).ToArray();
            foreach (int n in Lengths.Where(l => l > 0))
            {
                var x = Int8GemmCheck.Bytes(rnd, n, signed: flip != 0);
                float ys = 1f / 255 * (1 + rnd.Next(3));
                var expected = new byte[n + 1];
                var actual = new byte[n + 1];
                expected[^1] = actual[^1] = 55;
                Int8SoftmaxReference.Row(x, flip, exp, ys, yz, lo, hi, expected.AsSpan(0, n));
                Int8Softmax.Row(x, flip, exp, ys, yz, lo, hi, actual.AsSpan(0, n), new float[n]);
                Assert.Equal(expected, actual);
            }
        }
    }
}
