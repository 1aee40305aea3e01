using QuantSharp.Quantization.Math;
using System.Runtime.Intrinsics;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.QuantizationMath;

public class QuantMathTests
{
    private static IEnumerable<QuantScheme> AllUniformSchemes()
    {
        for (int bits = 2; bits <= 16; bits++)
            foreach (bool signed in new[] { true, false })
                foreach (bool sym in new[] { true, false })
                    foreach (bool reduce in new[] { false, true })
                        foreach (bool narrow in new[] { false, true })
                        {
                            if (reduce && bits < 3) continue;
                            if (reduce && narrow && bits < 4) continue;
                            yield return new QuantScheme { Bits = bits, Signed = signed, Symmetric = sym, ReduceRange = reduce, NarrowRange = narrow };
                        }
    }

    [Fact]
    public void IntegerRangesFollowTheFormulas()
    {
        foreach (var s in AllUniformSchemes())
        {
            int b = s.ReduceRange ? s.Bits - 1 : s.Bits;
            long lo = s.Signed ? -(long)System.Math.Pow(2, b - 1) : 0;
            long hi = s.Signed ? (long)System.Math.Pow(2, b - 1) - 1 : (long)System.Math.Pow(2, b) - 1;
            if (s.NarrowRange) lo++;
            Assert.Equal(lo, s.QMin);
            Assert.Equal(hi, s.QMax);
        }
        Assert.Equal((-127, 127), (QuantScheme.Int8Symmetric with { NarrowRange = true }).Apply(x => (x.QMin, x.QMax)));
        Assert.Equal((0, 127), (QuantScheme.UInt8Asymmetric with { ReduceRange = true }).Apply(x => (x.QMin, x.QMax)));
        Assert.Equal((-8, 7), QuantScheme.Int4Symmetric.Apply(x => (x.QMin, x.QMax)));
        Assert.Throws<QuantSharpException>(() => QuantScheme.Integer(1, true, true));
        Assert.Throws<QuantSharpException>(() => QuantScheme.Integer(17, true, true));
    }

    [Fact]
    public void ParametersMatchHandDerivedFormulas()
    {
        double[][] ranges = [[-1.3, 2.7], [0.5, 3.0], [-4.0, -0.25], [-1e-3, 1e-3], [-100, 7]];
        foreach (var s in AllUniformSchemes())
            foreach (var r in ranges)
            {
                var (scale, zp) = QuantParams.Compute(r[0], r[1], s);
                double lo = System.Math.Min(r[0], 0), hi = System.Math.Max(r[1], 0);
                double qmin = s.QMin, qmax = s.QMax;
                if (s.Symmetric)
                {
                    double a = System.Math.Max(-lo, hi);
                    Assert.Equal((float)(2 * a / (qmax - qmin)), scale);
                    Assert.Equal(System.Math.Round((qmin + qmax) / 2, MidpointRounding.ToEven), zp);
                }
                else
                {
                    float expScale = (float)((hi - lo) / (qmax - qmin));
                    Assert.Equal(expScale, scale);
                    Assert.Equal(System.Math.Clamp(System.Math.Round(qmin - lo / expScale, MidpointRounding.ToEven), qmin, qmax), zp);
                }
            }
        // Worked examples: int8 narrow symmetric max|x| = 2.54 → 2.54 / 127; uint8 symmetric → zero point 128;
        // uint8 asymmetric [−1, 3] → 4 / 255 and round(1 / (4/255)) = round(63.75) = 64.
        Assert.Equal((2.54f / 127, 0), QuantParams.Compute(-2.54, 1, QuantScheme.Int8Symmetric with { NarrowRange = true }).Apply(p => ((float)p.Scale, p.ZeroPoint)));
        Assert.Equal(128, QuantParams.Compute(-1, 1, QuantScheme.Integer(8, false, true)).ZeroPoint);
        Assert.Equal(8, QuantParams.Compute(-1, 1, QuantScheme.Integer(4, false, true)).ZeroPoint);
        var u8 = QuantParams.Compute(-1, 3, QuantScheme.UInt8Asymmetric);
        Assert.Equal(4f / 255, u8.Scale);
        Assert.Equal(64, u8.ZeroPoint);
    }

    [Fact]
    public void ZeroIsExactlyRepresentableForRandomRanges()
    {
        var rng = new Random(11);
        foreach (var s in AllUniformSchemes())
            for (int t = 0; t < 20; t++)
            {
                double a = (rng.NextDouble() - 0.5) * System.Math.Pow(10, rng.Next(-6, 6));
                double b = (rng.NextDouble() - 0.3) * System.Math.Pow(10, rng.Next(-6, 6));
                var p = QuantParams.FromRange(System.Math.Min(a, b), System.Math.Max(a, b), s);
                int q = QuantOps.QuantizeValue(0f, p.Scale[0], p.ZeroPoint[0], s.QMin, s.QMax);
                Assert.Equal(p.ZeroPoint[0], q);
                Assert.Equal(0f, QuantOps.DequantizeValue(q, p.Scale[0], p.ZeroPoint[0]));
                Assert.InRange(p.ZeroPoint[0], s.QMin, s.QMax);
                Assert.True(p.Scale[0] > 0 && float.IsFinite(p.Scale[0]));
            }
    }

    [Fact]
    public void TiesRoundToEven()
    {
        float[] x = [0.5f, 1.5f, 2.5f, 3.5f, -0.5f, -1.5f, -2.5f, -3.5f, 0.25f, 0.75f];
        int[] expected = [0, 2, 2, 4, 0, -2, -2, -4, 0, 1];
        var q = new int[x.Length];
        QuantOps.Quantize(x, q, 1f, 0, -128, 127);
        Assert.Equal(expected, q);
        // With a zero point the tie is broken before it is added: 2.5 / 1 → 2, + 3 → 5.
        Assert.Equal(5, QuantOps.QuantizeValue(2.5f, 1f, 3, 0, 255));
        Assert.Equal(2, QuantOps.QuantizeValue(1.25f, 0.5f, 0, -8, 7));
    }

    [Fact]
    public void ValuesSaturateAndNonFiniteHaveDefinedCodes()
    {
        float[] x = [1000f, -1000f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 126.6f, -128.4f];
        var q = new int[x.Length];
        QuantOps.Quantize(x, q, 1f, 0, -128, 127);
        Assert.Equal([127, -128, 127, -128, 0, 127, -128], q);
        QuantOps.Quantize(x, q, 1f, 100, 0, 255);
        Assert.Equal([255, 0, 255, 0, 100, 227, 0], q);
    }

    [Fact]
    public void VectorisedLoopsAreBitExactWithTheScalarReference()
    {
        var rng = new Random(5);
        foreach (int n in new[] { 0, 1, 7, 8, 15, 16, 17, 31, 33, 64, 100, 1000 })
        {
            var x = new float[n];
            for (int i = 0; i < n; i++)
                x[i] = (rng.Next(8)) switch
                {
                    0 => rng.Next(-300, 300) * 0.5f * 0.1f, // many exact ties for scale 0.1 in float? mostly near-ties
                    1 => rng.Next(-300, 300) + 0.5f,
                    2 => float.NaN,
                    3 => (rng.Next(2) == 0 ? 1 : -1) * float.PositiveInfinity,
                    _ => (float)((rng.NextDouble() - 0.5) * 1e4),
                };
            foreach (var (scale, zp, qmin, qmax) in new[] { (1f, 0, -128, 127), (0.1f, 3, 0, 255), (7.3f, -5, -8, 7), (1e-3f, 0, -32768, 32767), (0.5f, 32768, 0, 65535) })
            {
                var a = new int[n];
                var b = new int[n];
                QuantOps.Quantize(x, a, scale, zp, qmin, qmax);
                QuantOps.QuantizeScalar(x, b, scale, zp, qmin, qmax);
                Assert.Equal(b, a);
                // Both vector widths explicitly, whichever the dispatcher picks on this machine.
                foreach (var body in new Func<int[], int>[]
                         {
                             d => Vector512.IsHardwareAccelerated ? QuantOps.Quantize512(x, d, scale, zp, qmin, qmax) : 0,
                             d => Vector256.IsHardwareAccelerated ? QuantOps.Quantize256(x, d, scale, zp, qmin, qmax) : 0,
                         })
                {
                    var c = new int[n];
                    int done = body(c);
                    Assert.Equal(b.AsSpan(0, done).ToArray(), c.AsSpan(0, done).ToArray());
                    var yd = new float[n];
                    int dd = Vector256.IsHardwareAccelerated ? QuantOps.Dequantize256(b, yd, scale, zp) : 0;
                    for (int i = 0; i < dd; i++) Assert.Equal(QuantOps.DequantizeValue(b[i], scale, zp), yd[i]);
                    dd = Vector512.IsHardwareAccelerated ? QuantOps.Dequantize512(b, yd, scale, zp) : 0;
                    for (int i = 0; i < dd; i++) Assert.Equal(QuantOps.DequantizeValue(b[i], scale, zp), yd[i]);
                }
                for (int i = 0; i < n; i++)
                    if (!float.IsNaN(x[i])) Assert.Equal(QuantMath.Quantize(x[i], scale, zp, qmin, qmax), a[i]);
                var ya = new float[n];
                var yb = new float[n];
                QuantOps.Dequantize(a, ya, scale, zp);
                QuantOps.DequantizeScalar(a, yb, scale, zp);
                for (int i = 0; i < n; i++) Assert.Equal(BitConverter.SingleToInt32Bits(yb[i]), BitConverter.SingleToInt32Bits(ya[i]));
            }
        }
    }

    [Fact]
    public void PerAxisMatchesIndependentIndexing()
    {
        var rng = new Random(3);
        int[] shape = [3, 4, 5];
        var x = Enumerable.Range(0, 60).Select(_ => (float)(rng.NextDouble() * 6 - 2) * (1 + rng.Next(4))).ToArray();
        foreach (var scheme in new[] { QuantScheme.Int8Symmetric.PerAxis(1), QuantScheme.UInt8Asymmetric.PerAxis(-2), QuantScheme.Int4Symmetric.PerAxis(0) })
        {
            var p = QuantParams.FromData(x, shape, scheme);
            int axis = scheme.Axis < 0 ? scheme.Axis + 3 : scheme.Axis;
            Assert.Equal([shape[axis]], p.ParamShape);
            var q = new int[60];
            QuantOps.Quantize(x, shape, p, q);
            var y = new float[60];
            QuantOps.Dequantize(q, shape, p, y);
            for (int c = 0; c < shape[axis]; c++)
            {
                var members = Enumerable.Range(0, 60).Where(i => Index(i, shape)[axis] == c).ToArray();
                var (s, z) = QuantParams.Compute(members.Min(i => x[i]), members.Max(i => x[i]), scheme.PerTensor());
                Assert.Equal(s, p.Scale[c]);
                Assert.Equal(z, p.ZeroPoint[c]);
                foreach (int i in members)
                {
                    Assert.Equal(QuantOps.QuantizeValue(x[i], s, z, scheme.QMin, scheme.QMax), q[i]);
                    Assert.Equal((q[i] - z) * s, y[i]);
                }
            }
        }
    }

    [Fact]
    public void PerBlockHandlesAPartialLastBlock()
    {
        var rng = new Random(4);
        int[] shape = [2, 7, 3];
        const int block = 3;
        int n = 42;
        var x = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 10 - 5)).ToArray();
        var scheme = QuantScheme.Int4Symmetric.PerBlock(1, block);
        var p = QuantParams.FromData(x, shape, scheme);
        Assert.Equal([2, 3, 3], p.ParamShape);
        var q = new int[n];
        QuantOps.Quantize(x, shape, p, q);
        var y = new float[n];
        QuantOps.FakeQuantize(x, shape, p, y);
        for (int a = 0; a < 2; a++)
            for (int blk = 0; blk < 3; blk++)
                for (int k = 0; k < 3; k++)
                {
                    int pIndex = (a * 3 + blk) * 3 + k;
                    var members = Enumerable.Range(0, n).Where(i => { var id = Index(i, shape); return id[0] == a && id[1] / block == blk && id[2] == k; }).ToArray();
                    Assert.Equal(blk == 2 ? 1 : 3, members.Length);
                    var (s, z) = QuantParams.Compute(members.Min(i => x[i]), members.Max(i => x[i]), scheme.PerTensor());
                    Assert.Equal(s, p.Scale[pIndex]);
                    Assert.Equal(z, p.ZeroPoint[pIndex]);
                    foreach (int i in members)
                    {
                        Assert.Equal(QuantOps.QuantizeValue(x[i], s, z, -8, 7), q[i]);
                        Assert.Equal((q[i] - z) * s, y[i]);
                    }
                }
        Assert.Throws<QuantSharpException>(() => QuantOps.Quantize(x, [2, 21], p, q));
    }

    [Fact]
    public void ZeroRangeAndNonFiniteInputsHaveDocumentedResults()
    {
        foreach (var s in AllUniformSchemes())
        {
            var p = QuantParams.FromData(new float[] { 0, 0, 0 }, [3], s);
            Assert.Equal(1f, p.Scale[0]);
            Assert.Equal(s.Symmetric ? s.MidPoint : System.Math.Clamp(0, s.QMin, s.QMax), p.ZeroPoint[0]);
            var nan = QuantParams.FromData(new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity }, [3], s);
            Assert.Equal(p.Scheme, nan.Scheme);
            Assert.Equal(1f, nan.Scale[0]);
            Assert.Equal(p.ZeroPoint[0], nan.ZeroPoint[0]);
            Assert.Equal(QuantParams.Compute(0, 0, s), QuantParams.Compute(double.NaN, double.NaN, s));
        }
        // NaN/Inf elements are ignored by the range but still get codes: NaN → zero point, ±∞ saturate.
        var mixed = new[] { 1f, float.NaN, -2f, float.PositiveInfinity };
        var pm = QuantParams.FromData(mixed, [4], QuantScheme.Int8Symmetric);
        Assert.Equal((float)(4.0 / 255), pm.Scale[0]);
        var q = new int[4];
        QuantOps.Quantize(mixed, [4], pm, q);
        Assert.Equal(0, q[1]);
        Assert.Equal(127, q[3]);
        // A subnormal range cannot produce a subnormal (or zero) scale.
        Assert.Equal(QuantParams.MinScale, QuantParams.Compute(-1e-44, 1e-44, QuantScheme.Int8Symmetric).Scale);
    }

    [Fact]
    public void PackUnpackRoundTrips()
    {
        var rng = new Random(9);
        foreach (int bits in new[] { 1, 2, 4, 8 })
            foreach (bool signed in new[] { true, false })
                foreach (int n in new[] { 0, 1, 3, 5, 7, 9, 13, 64, 101 })
                {
                    int lo = signed ? -(1 << (bits - 1)) : 0, hi = signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
                    var codes = Enumerable.Range(0, n).Select(_ => rng.Next(lo, hi + 1)).ToArray();
                    var packed = CodePacking.Pack(codes, bits, signed);
                    Assert.Equal((n * bits + 7) / 8, packed.Length);
                    var back = new int[n];
                    CodePacking.Unpack(packed, bits, signed, back);
                    Assert.Equal(codes, back);
                    // Low bits first: code i sits at bit offset i·bits.
                    for (int i = 0; i < n; i++)
                        Assert.Equal(codes[i] & ((1 << bits) - 1), (packed[i * bits / 8] >> (i * bits % 8)) & ((1 << bits) - 1));
                    Assert.Throws<QuantSharpException>(() => CodePacking.Pack([hi + 1], bits, signed));
                }
        // Same layout as the existing int4 packer.
        var i4 = new[] { -8, 7, 3, -1, 0 };
        Assert.Equal(Int4.PackInt4(i4.Select(v => (sbyte)v).ToArray()), CodePacking.Pack(i4, 4, true));
        foreach (int n in new[] { 1, 5, 8, 9, 23 })
        {
            var bin = Enumerable.Range(0, n).Select(_ => rng.Next(2) == 0 ? -1 : 1).ToArray();
            var back = new int[n];
            CodePacking.UnpackBinary(CodePacking.PackBinary(bin), back);
            Assert.Equal(bin, back);
            var ter = Enumerable.Range(0, n).Select(_ => rng.Next(-1, 2)).ToArray();
            var packedT = CodePacking.Pack(ter, QuantScheme.Ternary());
            Assert.Equal((2 * n + 7) / 8, packedT.Length);
            CodePacking.Unpack(packedT, QuantScheme.Ternary(), back);
            Assert.Equal(ter, back);
        }
        Assert.Throws<QuantSharpException>(() => CodePacking.PackBinary([0]));
        Assert.Throws<QuantSharpException>(() => CodePacking.PackTernary([2]));
    }

    [Fact]
    public void BinaryAndTernaryCodes()
    {
        float[] x = [0.9f, -0.2f, 0f, -3f, 0.3f, 2f];
        var pb = QuantParams.FromData(x, [6], QuantScheme.Binary);
        Assert.Equal(3f, pb.Scale[0]);
        var q = new int[6];
        QuantOps.Quantize(x, [6], pb, q);
        Assert.Equal([1, -1, 1, -1, 1, 1], q);
        var pt = QuantParams.FromData(x, [6], QuantScheme.Ternary(0.25f));
        QuantOps.Quantize(x, [6], pt, q);
        // threshold 0.25 · 3 = 0.75
        Assert.Equal([1, 0, 0, -1, 0, 1], q);
        var y = new float[6];
        QuantOps.Dequantize(q, [6], pt, y);
        Assert.Equal([3f, 0f, 0f, -3f, 0f, 3f], y);
    }

    [Fact]
    public void FakeQuantErrorIsAtMostHalfAStepInsideTheRange()
    {
        var rng = new Random(21);
        foreach (var s in new[] { QuantScheme.Int8Symmetric, QuantScheme.UInt8Asymmetric, QuantScheme.Int4Symmetric, QuantScheme.Integer(2, true, false), QuantScheme.Integer(16, false, false) })
        {
            var x = Enumerable.Range(0, 5000).Select(_ => (float)(rng.NextDouble() * 7 - 2.5)).ToArray();
            var p = QuantParams.FromData(x, [x.Length], s);
            var y = new float[x.Length];
            QuantOps.FakeQuantize(x, [x.Length], p, y);
            float scale = p.Scale[0];
            double lo = (s.QMin - p.ZeroPoint[0]) * (double)scale, hi = (s.QMax - p.ZeroPoint[0]) * (double)scale;
            // Half a step, plus the float32 rounding of x / scale and of (q − zp) · scale (a few ulps of x).
            for (int i = 0; i < x.Length; i++)
                if (x[i] >= lo && x[i] <= hi)
                    Assert.True(System.Math.Abs(x[i] - y[i]) <= scale / 2 + 4 * MathF.BitIncrement(MathF.Abs(x[i])) - 4 * MathF.Abs(x[i]), $"{s}: {x[i]} → {y[i]}");
        }
    }

    [Fact]
    public void RoundingNoiseOfAWideUniformInputIsScaleSquaredOverTwelve()
    {
        var rng = new Random(8);
        var x = Enumerable.Range(0, 200_000).Select(_ => (float)(rng.NextDouble() * 20 - 10)).ToArray();
        var t = new Tensor<float>(x, [x.Length]);
        var p = QuantParams.FromData(x, t.Shape, QuantScheme.Int8Symmetric with { NarrowRange = true });
        var y = QuantOps.FakeQuantize(t, p);
        double mse = 0;
        for (int i = 0; i < x.Length; i++) mse += (x[i] - (double)y.Data[i]) * (x[i] - (double)y.Data[i]);
        mse /= x.Length;
        double model = (double)p.Scale[0] * p.Scale[0] / 12;
        Assert.InRange(mse / model, 0.97, 1.03);
    }

    [Fact]
    public void StorageTensorsHoldTheCodes()
    {
        var x = new Tensor<float>([-1f, 0f, 0.5f, 1f], [2, 2]);
        var p = QuantParams.FromData(x.Data, x.Shape, QuantScheme.Int4Symmetric);
        var st = QuantOps.ToStorage(QuantOps.Quantize(x, p), p.Scheme);
        Assert.Equal(DataType.Int4, st.DataType);
        Assert.Equal([-7, 0, 4, 7], st.As<sbyte>().Data.Select(v => (int)v));
        Assert.Equal(DataType.UInt8, QuantOps.ToStorage(QuantOps.Quantize(x, QuantParams.FromData(x.Data, x.Shape, QuantScheme.UInt8Asymmetric)), QuantScheme.UInt8Asymmetric).DataType);
        Assert.Throws<QuantSharpException>(() => QuantOps.ToStorage(new Tensor<int>([1], [1]), QuantScheme.Integer(6, true, true)));
    }

    private static int[] Index(int flat, int[] shape)
    {
        var idx = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--) { idx[d] = flat % shape[d]; flat /= shape[d]; }
        return idx;
    }
}

internal static class FunctionalExtensions
{
    public static TOut Apply<TIn, TOut>(this TIn value, Func<TIn, TOut> f) => f(value);
}
