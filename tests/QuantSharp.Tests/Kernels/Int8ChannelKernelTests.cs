using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Runtime.Operators.Quantization;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Kernels;

/// <summary>
/// The weights-on-the-left conv GEMM (packing, vpdpbusd micro-kernel, fused requantization), the 8-bit 2×2 max
/// pool and the vectorised per-tensor QuantizeLinear against their scalar references, bit for bit, over sizes
/// including 0, 1, odd and block-edge sizes (4-deep k groups, 16-column blocks, 4-row tiles, 16/32-byte vectors).
/// </summary>
public class Int8ChannelKernelTests
{
    private static readonly int[] Ms = [1, 3, 4, 5, 8, 17, 30, 259];
    private static readonly int[] Ks = [0, 1, 3, 4, 5, 8, 9, 12, 16, 17, 21, 24, 25, 28, 31, 32, 33, 144, 257];
    private static readonly int[] Ns = [0, 1, 7, 15, 16, 17, 33, 100, 257];

    [AvxVnniTheory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public unsafe void ChannelGemmMatchesReference(bool signedX, bool weightZeroPoints)
    {
        var rnd = new Random(signedX ? 7 : 8);
        foreach (int m in Ms)
            foreach (int k in Ks)
                foreach (int n in Ns)
                {
                    var w = (sbyte[])(Array)Int8GemmCheck.Bytes(rnd, m * k, signed: true);
                    var x = Int8GemmCheck.Bytes(rnd, k * n + 3, signedX);
                    int ldx = n;
                    int[] zw = weightZeroPoints ? Enumerable.Range(0, m).Select(_ => rnd.Next(-128, 128)).ToArray() : [];
                    int zx = signedX ? rnd.Next(-128, 128) : rnd.Next(0, 256);
                    var expected = new int[m * n];
                    if (signedX) Int8ChannelGemmReference.Multiply<sbyte>(m, n, k, w, zw, (sbyte[])(Array)x, ldx, zx, expected, n);
                    else Int8ChannelGemmReference.Multiply<byte>(m, n, k, w, zw, x, ldx, zx, expected, n);

                    var packedW = Int8ChannelWeights.Pack(m, k, w, zw);
                    var panel = new byte[Math.Max(1, Int8ChannelGemm.PanelBytes(packedW.PaddedDepth, n))];
                    var sums = new int[Math.Max(1, n)];
                    var actual = new int[m * n + 1];
                    Array.Fill(actual, 0x5A5A5A5A);
                    int zShift = zx + (signedX ? 128 : 0);
                    var mul = Enumerable.Range(0, m).Select(_ => (float)(rnd.NextDouble() * 0.02)).ToArray();
                    var off = Enumerable.Range(0, m).Select(_ => (float)(rnd.NextDouble() * 40 - 20)).ToArray();
                    int zy = rnd.Next(0, 256), lo = rnd.Next(0, 50), hi = rnd.Next(200, 256);
                    var rq = new Int8ChannelRequantization(mul, off, zy, lo, hi);
                    var y = new byte[m * n + 1];
                    Array.Fill(y, (byte)0xA5);
                    fixed (byte* px = x) fixed (byte* pp = panel) fixed (int* ps = sums) fixed (int* pc = actual) fixed (byte* py = y)
                    {
                        Int8ChannelGemm.PackColumns(px, ldx, k, n, (byte)(signedX ? 0x80 : 0), packedW.PaddedDepth, pp, ps);
                        Int8ChannelGemm.Multiply(packedW, pp, n, zShift, ps, pc, n);
                        Int8ChannelGemm.Multiply(packedW, pp, n, zShift, ps, rq, py, n);
                    }
                    for (int i = 0; i < m * n; i++)
                    {
                        Assert.True(expected[i] == actual[i], $"m={m} k={k} n={n}: C[{i}] expected {expected[i]}, got {actual[i]}");
                        int q = Int8ChannelGemmReference.Requantize(expected[i], mul[i / n], off[i / n], zy, lo, hi);
                        Assert.True(q == y[i], $"m={m} k={k} n={n}: y[{i}] expected {q}, got {y[i]}");
                    }
                    Assert.Equal(0x5A5A5A5A, actual[m * n]);
                    Assert.Equal(0xA5, y[m * n]);
                }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MaxPool2x2MatchesReference(bool signed)
    {
        var rnd = new Random(signed ? 3 : 4);
        int[] sizes = [0, 1, 2, 3, 7, 14, 15, 16, 17, 28, 31, 32, 33, 64, 65, 66, 97];
        foreach (int planes in new[] { 1, 3 })
            foreach (int ih in new[] { 0, 1, 2, 7, 14 })
                foreach (int iw in sizes)
                {
                    int oh = ih / 2, ow = iw / 2;
                    var x = Int8GemmCheck.Bytes(rnd, planes * ih * iw, signed);
                    var expected = new byte[planes * oh * ow + 1];
                    var actual = new byte[planes * oh * ow + 1];
                    expected[^1] = actual[^1] = 0x77;
                    Int8PoolReference.MaxPool2x2(x, planes, ih, iw, expected, oh, ow, signed);
                    Int8Pool.MaxPool2x2(x, planes, ih, iw, actual, oh, ow, signed);
                    Assert.True(expected.AsSpan().SequenceEqual(actual), $"planes={planes} {ih}x{iw}");
                    // Windows may also leave the last odd row / column out explicitly (floor output size, smaller ow).
                    if (ow > 1)
                    {
                        Int8PoolReference.MaxPool2x2(x, planes, ih, iw, expected, oh, ow - 1, signed);
                        Int8Pool.MaxPool2x2(x, planes, ih, iw, actual, oh, ow - 1, signed);
                        Assert.True(expected.AsSpan().SequenceEqual(actual), $"planes={planes} {ih}x{iw} -> {oh}x{ow - 1}");
                    }
                }
    }

    [Theory]
    [InlineData(0, 255, 0)]
    [InlineData(0, 255, 128)]
    [InlineData(-128, 127, 0)]
    [InlineData(-128, 127, -7)]
    public void QuantizeToBytesMatchesScalar(int qmin, int qmax, int zp)
    {
        var rnd = new Random(qmin + zp + 300);
        float s = 0.037f;
        for (int len = 0; len <= 257; len += len < 40 ? 1 : 31)
        {
            var x = new float[len];
            for (int i = 0; i < len; i++)
            {
                int r = rnd.Next(10);
                x[i] = r switch
                {
                    0 => float.NaN,
                    1 => rnd.Next(2) == 0 ? float.PositiveInfinity : float.NegativeInfinity,
                    2 => (rnd.Next(-300, 300) + 0.5f) * s, // near-halfway quotients
                    3 => rnd.Next(-1000, 1000) * s * 10,
                    _ => (float)(rnd.NextDouble() * 20 - 10),
                };
            }
            var y = new byte[len];
            QuantizeLinearKernel.QuantizeToBytes(x, s, zp, qmin, qmax, y);
            for (int i = 0; i < len; i++)
            {
                int expected = QuantizeLinearKernel.QuantizeOne(x[i], s, zp, DataType.Float, qmin, qmax);
                Assert.True((byte)expected == y[i], $"len {len}: x[{i}] = {x[i]}: expected {expected}, got {y[i]}");
            }
        }
    }

    [Fact]
    public void TapAccumulationMatchesReference()
    {
        var rnd = new Random(11);
        foreach (int taps in new[] { 1, 2, 9, 25 })
            foreach (int length in new[] { 0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 257 })
            {
                var src = Enumerable.Range(0, length + 64).Select(_ => rnd.Next(-255, 256)).ToArray();
                var starts = Enumerable.Range(0, taps).Select(_ => rnd.Next(0, 65)).ToArray();
                var weights = Enumerable.Range(0, taps).Select(_ => rnd.Next(-255, 256)).ToArray();
                var expected = new int[length + 1];
                var actual = new int[length + 1];
                expected[^1] = actual[^1] = 12345;
                IntTapsReference.Accumulate(src, starts, weights, length, expected);
                IntTaps.Accumulate(src, starts, weights, length, actual);
                Assert.Equal(expected, actual);
            }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void WidenSubtractMatchesReference(bool signed)
    {
        var rnd = new Random(12);
        for (int length = 0; length <= 70; length++)
        {
            var x = Int8GemmCheck.Bytes(rnd, length, signed);
            int zero = signed ? rnd.Next(-128, 128) : rnd.Next(0, 256);
            var expected = new int[length + 1];
            var actual = new int[length + 1];
            expected[^1] = actual[^1] = 777;
            IntTapsReference.WidenSubtract(x, signed, zero, expected);
            IntTaps.WidenSubtract(x, signed, zero, actual);
            Assert.Equal(expected, actual);
        }
    }

    [Theory]
    [InlineData(false, false, 0, 255)]
    [InlineData(true, false, 0, 255)]
    [InlineData(false, true, -128, 127)]
    [InlineData(true, true, 10, 100)]
    public void AddMatchesReference(bool aSigned, bool bSigned, int min, int max)
    {
        var rnd = new Random(13 + min);
        for (int length = 0; length <= 100; length += length < 20 ? 1 : 9)
        {
            var a = Int8GemmCheck.Bytes(rnd, length, aSigned);
            var b = Int8GemmCheck.Bytes(rnd, length, bSigned);
            float ma = (float)(rnd.NextDouble() * 2), mb = (float)(rnd.NextDouble() * 2);
            int za = rnd.Next(-20, 20), zb = rnd.Next(-20, 20), zy = rnd.Next(min, max + 1);
            var expected = new byte[length + 1];
            var actual = new byte[length + 1];
            expected[^1] = actual[^1] = 99;
            Int8AddReference.Add(a, aSigned, b, bSigned, expected.AsSpan(0, length), ma, za, mb, zb, zy, min, max);
            Int8Add.Add(a, aSigned, b, bSigned, actual.AsSpan(0, length), ma, za, mb, zb, zy, min, max);
            Assert.Equal(expected, actual);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void WidenSubtractDeinterleaveMatchesReference(bool signed)
    {
        var rnd = new Random(14);
        for (int length = 0; length <= 70; length++)
        {
            var x = Int8GemmCheck.Bytes(rnd, length, signed);
            int zero = signed ? rnd.Next(-128, 128) : rnd.Next(0, 256);
            int[] e1 = new int[(length + 1) / 2 + 1], o1 = new int[length / 2 + 1], e2 = new int[e1.Length], o2 = new int[o1.Length];
            IntTapsReference.WidenSubtractDeinterleave(x, signed, zero, e1, o1);
            IntTaps.WidenSubtractDeinterleave(x, signed, zero, e2, o2);
            Assert.Equal(e1, e2);
            Assert.Equal(o1, o2);
        }
    }
}

/// <summary>
/// A theory that needs AVX-VNNI: without it the channel GEMM is never selected (convolutions use the im2col GEMM),
/// so the test is skipped with that reason instead of passing without checking anything.
/// </summary>
public sealed class AvxVnniTheoryAttribute : TheoryAttribute
{
    public AvxVnniTheoryAttribute()
    {
        if (!Int8ChannelGemm.IsSupported)
            Skip = "this CPU (or DOTNET_EnableAVXVNNI=0) has no AVX-VNNI, so the channel GEMM is never used and cannot run";
    }
}
