using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Tests.Kernels;

/// <summary>
/// The vectorised 8-bit element-wise kernels (per-tensor DequantizeLinear, quantized same-shape Mul, byte plane sums) equal their
/// scalar references bit for bit over sizes 0–257 (odd and vector-edge sizes), u8 and s8 codes, several parameters.
/// <see cref="Int8SelfCheck"/> re-runs <see cref="CheckAll"/> with instruction sets switched off.
/// </summary>
public class Int8ElementwiseTests
{
    [Fact]
    public void DequantizeMatchesReferenceBitForBit() => CheckDequantize();

    [Fact]
    public void MulMatchesReferenceBitForBit() => CheckMul();

    [Fact]
    public void ActivationMatMulMatchesReferenceBitForBit() => CheckMatMul();

    [Fact]
    public void ByteSumMatchesReferenceExactly() => CheckByteSum();

    /// <summary>Every check; throws on the first difference.</summary>
    internal static void CheckAll()
    {
        CheckDequantize();
        CheckMul();
        CheckMatMul();
        CheckByteSum();
    }

    /// <summary>Plane sums over lengths 0–257 and 4099, unaligned starts, u8 and s8 (flip 0x80), and all-0xFF runs (largest sums).</summary>
    private static unsafe void CheckByteSum()
    {
        var rng = new Random(11);
        var data = new byte[4099 + 3];
        foreach (int len in Enumerable.Range(0, 258).Append(4099))
            foreach (int offset in new[] { 0, 1, 3 })
                foreach (byte flip in new byte[] { 0, 0x80 })
                    foreach (bool full in new[] { false, true })
                    {
                        if (full) Array.Fill(data, (byte)(flip == 0 ? 0xFF : 0x7F));
                        else rng.NextBytes(data);
                        long expected = ByteSumReference.Sum(data.AsSpan(offset, len), flip);
                        long actual;
                        fixed (byte* p = data) actual = ByteSum.Sum(p + offset, len, flip);
                        Assert.True(expected == actual, $"byte sum length {len} offset {offset} flip {flip}: {actual} != {expected}");
                    }
    }

    private static void CheckMatMul()
    {
        var rng = new Random(7);
        // (m, n, k): the float-FMA path (N multiple of 16, K ≤ 256, K·N ≤ 4096, incl. the worst case K = 256), the
        // int32 path (K = 257, K·N > 4096) and odd N with a reference tail.
        foreach (var (m, n, k) in new[] { (16, 16, 16), (3, 32, 128), (2, 16, 256), (5, 16, 257), (4, 80, 64), (7, 19, 5), (1, 1, 1), (0, 16, 4), (3, 33, 9) })
            foreach (bool aSigned in new[] { false, true })
                foreach (bool bSigned in new[] { false, true })
                {
                    var a = new byte[m * k];
                    var b = new byte[k * n];
                    rng.NextBytes(a);
                    rng.NextBytes(b);
                    if (k == 256 && m > 0)
                    {
                        // Largest sums: every product (a − za)(b − zb) = 255·255.
                        Array.Fill(a, (byte)(aSigned ? 0x7F : 0xFF), 0, k);
                        Array.Fill(b, (byte)(bSigned ? 0x7F : 0xFF));
                    }
                    int za = aSigned ? -128 : 0, zb = bSigned ? -128 : 0;
                    foreach (float mult in new[] { 1.3e-7f, 2.1e-4f, 0.037f })
                    {
                        var expected = new byte[m * n];
                        var actual = new byte[m * n];
                        Int8MatMulActReference.Multiply(a, aSigned, b, bSigned, expected, m, n, k, mult, za, zb, 9, 0, 255);
                        Int8MatMulAct.Multiply(a, aSigned, b, bSigned, actual, m, n, k, mult, za, zb, 9, 0, 255);
                        Assert.True(expected.AsSpan().SequenceEqual(actual), $"matmul {m}x{n}x{k} a{(aSigned ? "s" : "u")} b{(bSigned ? "s" : "u")} mult={mult}");
                    }
                }
    }

    private static void CheckDequantize()
    {
        var rng = new Random(5);
        foreach (bool signed in new[] { false, true })
            foreach (var (s, z) in new[] { (0.0392157f, 128), (1e-3f, 0), (3.7f, signed ? -128 : 255), (0.1f, signed ? 127 : 1) })
                for (int n = 0; n <= 257; n++)
                {
                    var x = new byte[n + 3];
                    rng.NextBytes(x);
                    var expected = new float[n];
                    var actual = new float[n];
                    Int8DequantizeReference.Dequantize(x.AsSpan(3), signed, s, z, expected);
                    Int8Dequantize.Dequantize(x.AsSpan(3), signed, s, z, actual);
                    for (int i = 0; i < n; i++)
                        if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                            throw new Xunit.Sdk.XunitException($"dequantize n={n} signed={signed} s={s} z={z} [{i}]: {expected[i]} vs {actual[i]}");
                }
    }

    private static void CheckMul()
    {
        var rng = new Random(6);
        foreach (bool aSigned in new[] { false, true })
            foreach (bool bSigned in new[] { false, true })
                foreach (bool ySigned in new[] { false, true })
                    foreach (var (m, za, zb, zy) in new[] { (0.0123f, 128, 3, 17), (1.7e-4f, 0, 0, 0), (0.5f, 200, 7, 128), (3e-2f, -5, 100, -20) })
                    {
                        int min = ySigned ? -128 : 0, max = ySigned ? 127 : 255;
                        int zA = aSigned ? Math.Clamp(za, -128, 127) : Math.Clamp(za, 0, 255);
                        int zB = bSigned ? Math.Clamp(zb, -128, 127) : Math.Clamp(zb, 0, 255);
                        int zY = Math.Clamp(zy, min, max);
                        for (int n = 0; n <= 257; n++)
                        {
                            var a = new byte[n + 1];
                            var b = new byte[n + 2];
                            rng.NextBytes(a);
                            rng.NextBytes(b);
                            if (n > 0) { a[1] = (byte)(aSigned ? 0x80 : 0xFF); b[2] = (byte)(bSigned ? 0x80 : 0xFF); }
                            var expected = new byte[n];
                            var actual = new byte[n];
                            Int8MulReference.Mul(a.AsSpan(1), aSigned, b.AsSpan(2), bSigned, expected, m, zA, zB, zY, min + 3, max);
                            Int8Mul.Mul(a.AsSpan(1), aSigned, b.AsSpan(2), bSigned, actual, m, zA, zB, zY, min + 3, max);
                            Assert.True(expected.AsSpan().SequenceEqual(actual), $"mul n={n} a{(aSigned ? "s" : "u")} b{(bSigned ? "s" : "u")} y{(ySigned ? "s" : "u")} m={m}");
                        }
                    }
    }
}
