using QuantSharp.Graph;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Quantization.QuantGraph;

namespace QuantSharp.Tests.Quantization;

public class QuantizeLinearTests
{
    private static readonly DataType[] AllTypes =
        [DataType.UInt8, DataType.Int8, DataType.UInt16, DataType.Int16, DataType.UInt4, DataType.Int4];

    /// <summary>Reference parameter index of flat element i, from explicit multi-indices (independent of the library).</summary>
    private static int RefParamIndex(int[] shape, int[] paramShape, int axis, int blockSize, int i)
    {
        if (paramShape.Aggregate(1, (a, b) => a * b) == 1 && blockSize == 0) return 0;
        var idx = new int[shape.Length];
        for (int d = shape.Length - 1, rem = i; d >= 0; d--) { idx[d] = rem % shape[d]; rem /= shape[d]; }
        if (blockSize == 0) return idx[axis];
        int p = 0;
        for (int d = 0; d < shape.Length; d++) p = p * paramShape[d] + (d == axis ? idx[d] / blockSize : idx[d]);
        return p;
    }

    [Fact]
    public void TiesRoundToEven()
    {
        float[] x = [0.5f, 1.5f, 2.5f, 3.5f, -0.5f, -1.5f, -2.5f, -3.5f, 1.25f, 2.75f];
        foreach (var t in new[] { DataType.Int8, DataType.Int16, DataType.Int4 })
        {
            var y = Run1("QuantizeLinear", [F(x, x.Length), FScalar(1f), Ints(t, [0])]);
            Assert.Equal(t, y.DataType);
            Assert.Equal(x.Select(v => RefQuantize(v, 1f, 0, t)), IntsOf(y));
            // The reference rounds half to even: 0.5 → 0, 1.5 → 2, 2.5 → 2, −2.5 → −2.
            Assert.Equal([0, 2, 2], IntsOf(y)[..3].Select(v => v).ToArray());
        }
        // With a scale the tie is decided on the float32 quotient: 5 / 2 = 2.5 → 2, 7 / 2 = 3.5 → 4, plus zero point.
        var z = Run1("QuantizeLinear", [F([5f, 7f, -5f], 3), FScalar(2f), Ints(DataType.UInt8, [10])]);
        Assert.Equal(new[] { 5f, 7f, -5f }.Select(v => RefQuantize(v, 2f, 10, DataType.UInt8)), IntsOf(z));
    }

    [Fact]
    public void SaturatesAtBothEndsForEveryType()
    {
        float[] x = [-1e30f, -70000f, -129f, -9f, -1f, 0f, 1f, 8f, 16f, 256f, 70000f, 1e30f, float.NegativeInfinity, float.PositiveInfinity];
        foreach (var t in AllTypes)
        {
            var (lo, hi) = RangeOf(t);
            int zp = (lo + hi) / 2;
            var y = Run1("QuantizeLinear", [F(x, x.Length), FScalar(1f), Ints(t, [zp])]);
            Assert.Equal(t, y.DataType);
            var got = IntsOf(y);
            Assert.Equal(x.Select(v => RefQuantize(v, 1f, zp, t)), got);
            Assert.Equal(lo, got[0]);
            Assert.Equal(hi, got[11]);
            Assert.Equal(lo, got[12]);
            Assert.Equal(hi, got[13]);
        }
    }

    [Fact]
    public void DefaultOutputIsUInt8AndOutputDtypeSelectsTheType()
    {
        var x = F([-3f, 0.4f, 2.6f, 300f], 4);
        var y = Run1("QuantizeLinear", [x, FScalar(1f)], opset: 13);
        Assert.Equal(DataType.UInt8, y.DataType);
        Assert.Equal(x.Data.Select(v => RefQuantize(v, 1f, 0, DataType.UInt8)), IntsOf(y));
        foreach (var t in AllTypes)
        {
            var z = Run1("QuantizeLinear", [x, FScalar(0.5f)], [A("output_dtype", (long)t)]);
            Assert.Equal(t, z.DataType);
            Assert.Equal(x.Data.Select(v => RefQuantize(v, 0.5f, 0, t)), IntsOf(z));
        }
    }

    [Fact]
    public void PerAxisMatchesReference()
    {
        var r = new Random(1);
        int[] shape = [2, 3, 4];
        foreach (int axis in new[] { 0, 1, 2, -1 })
        {
            int a = axis < 0 ? axis + 3 : axis;
            var x = RandomFloats(r, 24, -20f, 20f);
            var s = RandomFloats(r, shape[a], 0.05f, 0.3f);
            var zp = RandomInts(r, shape[a], -10, 10);
            var y = Run1("QuantizeLinear", [F(x, shape), F(s, shape[a]), Ints(DataType.Int8, zp, shape[a])], [A("axis", axis)], opset: 13);
            var want = x.Select((v, i) => { int p = RefParamIndex(shape, [shape[a]], a, 0, i); return RefQuantize(v, s[p], zp[p], DataType.Int8); });
            Assert.Equal(want, IntsOf(y));
        }
    }

    [Theory]
    [InlineData(1, 4)] // 10 = 4 + 4 + 2: the last block is shorter
    [InlineData(1, 5)]
    [InlineData(0, 2)] // 5 = 2 + 2 + 1
    [InlineData(-1, 3)]
    public void BlockedMatchesReference(int axis, int blockSize)
    {
        var r = new Random(axis * 10 + blockSize);
        int[] shape = [5, 10];
        int a = axis < 0 ? axis + 2 : axis;
        int[] pshape = (int[])shape.Clone();
        pshape[a] = (shape[a] + blockSize - 1) / blockSize;
        int pn = pshape[0] * pshape[1];
        foreach (var t in new[] { DataType.Int4, DataType.UInt4, DataType.Int16 })
        {
            var (lo, hi) = RangeOf(t);
            var x = RandomFloats(r, 50, -3f, 3f);
            var s = RandomFloats(r, pn, 0.1f, 0.5f);
            var zp = RandomInts(r, pn, lo / 2, hi / 2);
            var y = Run1("QuantizeLinear", [F(x, shape), F(s, pshape), Ints(t, zp, pshape)], [A("axis", axis), A("block_size", blockSize)]);
            var want = x.Select((v, i) => { int p = RefParamIndex(shape, pshape, a, blockSize, i); return RefQuantize(v, s[p], zp[p], t); });
            Assert.Equal(want, IntsOf(y));
            var back = Run1("DequantizeLinear", [y, F(s, pshape), Ints(t, zp, pshape)], [A("axis", axis), A("block_size", blockSize)]);
            var wantBack = IntsOf(y).Select((q, i) => { int p = RefParamIndex(shape, pshape, a, blockSize, i); return (float)(q - zp[p]) * s[p]; });
            Assert.Equal(wantBack, FloatsOf(back));
        }
    }

    [Fact]
    public void BlockedRejectsInconsistentScaleShape()
    {
        var x = F(new float[20], 2, 10);
        var ex = Assert.Throws<QuantSharpException>(() =>
            Run1("QuantizeLinear", [x, F(new float[4], 2, 2), Ints(DataType.Int8, new int[4], 2, 2)], [A("axis", 1), A("block_size", 4)]));
        Assert.Contains("block_size", ex.Message);
        Assert.Contains("'n'", ex.Message);
        Assert.Throws<QuantSharpException>(() => Run1("QuantizeLinear", [x, F(new float[3], 3)], [A("axis", 1)]));
    }

    [Fact]
    public void Float16AndBFloat16AndInt32Inputs()
    {
        var r = new Random(3);
        var xs = RandomFloats(r, 40, -50f, 50f);
        // float16 x and scale: the quotient is rounded to float16 before rounding to an integer (the session computes
        // float16 models in float32 but keeps QuantizeLinear's division precision), as a graph input or a constant.
        var xh = new Tensor<Half>(xs.Select(v => (Half)v).ToArray(), [40]);
        var sh = new Tensor<Half>([(Half)0.3f], []);
        var wantH = xh.Data.Select(v => { var q = (double)(Half)((float)v / (float)sh.Data[0]); return (int)Math.Clamp(Math.Round(q, MidpointRounding.ToEven) + 3, -128, 127); }).ToArray();
        Assert.Equal(wantH, IntsOf(Run1("QuantizeLinear", [xh, sh, Ints(DataType.Int8, [3])])));
        Assert.Equal(wantH, IntsOf(Run1("QuantizeLinear", [xh, sh, Ints(DataType.Int8, [3])], constants: [1, 2])));
        Assert.Equal(wantH, IntsOf(Run1("QuantizeLinear", [xh, sh, Ints(DataType.Int8, [3])], [A("precision", (long)DataType.Float16)], opset: 25)));
        // float16 x with a float scale divides in float32.
        var yhf = Run1("QuantizeLinear", [xh, FScalar(0.3f), Ints(DataType.Int8, [3])]);
        Assert.Equal(xh.Data.Select(v => RefQuantize((float)v, 0.3f, 3, DataType.Int8)), IntsOf(yhf));
        // bfloat16.
        var xb = new Tensor<BFloat16>(xs.Select(v => (BFloat16)v).ToArray(), [40]);
        var sb = new Tensor<BFloat16>([(BFloat16)0.25f], []);
        var yb = Run1("QuantizeLinear", [xb, sb, Ints(DataType.UInt8, [128])]);
        Assert.Equal(xb.Data.Select(v => RefQuantize((float)v, 0.25f, 128, DataType.UInt8)), IntsOf(yb));
        // int32 x.
        var xi = Ints(DataType.Int32, [-1000, -5, 0, 5, 7, 1000], 6);
        var yi = Run1("QuantizeLinear", [xi, FScalar(2f), Ints(DataType.Int8, [1])], opset: 10);
        Assert.Equal(IntsOf(xi).Select(v => RefQuantize(v, 2f, 1, DataType.Int8)), IntsOf(yi));
    }

    [Fact]
    public void PrecisionAttributeRoundsTheQuotient()
    {
        var r = new Random(6);
        var x = RandomFloats(r, 64, -100f, 100f);
        var y = Run1("QuantizeLinear", [F(x, 64), FScalar(0.37f), Ints(DataType.Int16, [0])], [A("precision", (long)DataType.Float16)], opset: 25);
        // Division in float16: both operands are rounded to float16, then the quotient.
        float s16 = (float)(Half)0.37f;
        var want = x.Select(v => (int)Math.Round((double)(Half)((float)(Half)v / s16), MidpointRounding.ToEven));
        Assert.Equal(want, IntsOf(y));
    }

    [Fact]
    public void QdqRoundTripErrorIsAtMostHalfAScale()
    {
        var r = new Random(4);
        foreach (var t in AllTypes)
        {
            var (lo, hi) = RangeOf(t);
            float s = 0.037f;
            int zp = lo + (hi - lo) / 3;
            // Values inside the representable range [(lo − zp)·s, (hi − zp)·s].
            var x = RandomFloats(r, 200, (lo - zp) * s, (hi - zp) * s);
            var q = Run1("QuantizeLinear", [F(x, 200), FScalar(s), Ints(t, [zp])]);
            var back = FloatsOf(Run1("DequantizeLinear", [q, FScalar(s), Ints(t, [zp])]));
            for (int i = 0; i < x.Length; i++)
                Assert.True(Math.Abs(back[i] - x[i]) <= s / 2 * (1 + 1e-5f), $"{t}: {x[i]} → {back[i]}");
        }
    }

    [Fact]
    public void Float8IsRefusedClearly()
    {
        var ex = Assert.Throws<QuantSharpException>(() =>
            Run1("QuantizeLinear", [F([1f], 1), FScalar(1f)], [A("output_dtype", (long)DataType.Float8E4M3FN)]));
        Assert.Contains("float8", ex.Message);
    }

    [Fact]
    public void LargeTensorsSplitOverThreadsGiveTheSameResult()
    {
        var r = new Random(5);
        var x = RandomFloats(r, 70000, -10f, 10f);
        var s = RandomFloats(r, 7, 0.01f, 0.1f);
        var single = Run("QuantizeLinear", [F(x, 10000, 7), F(s, 7), Ints(DataType.Int8, new int[7], 7)], [A("axis", 1)], threads: 1)[0];
        var multi = Run("QuantizeLinear", [F(x, 10000, 7), F(s, 7), Ints(DataType.Int8, new int[7], 7)], [A("axis", 1)], threads: 4)[0];
        Assert.Equal(IntsOf(single), IntsOf(multi));
        Assert.Equal(x.Select((v, i) => RefQuantize(v, s[i % 7], 0, DataType.Int8)), IntsOf(multi));
        var pt = Run("QuantizeLinear", [F(x, 70000), FScalar(0.05f)], threads: 4)[0];
        Assert.Equal(x.Select(v => RefQuantize(v, 0.05f, 0, DataType.UInt8)), IntsOf(pt));
    }

    [Fact]
    public void InfersOutputTypes()
    {
        var x = new TensorTypeInfo(DataType.Float, [new Dimension(null, "N"), 4]);
        var s = TensorTypeInfo.FromShape(DataType.Float, []);
        Assert.Equal(DataType.UInt8, Infer("QuantizeLinear", [x, s])[0]!.ElementType);
        Assert.Equal(DataType.Int4, Infer("QuantizeLinear", [x, s, TensorTypeInfo.FromShape(DataType.Int4, [])])[0]!.ElementType);
        var o = Infer("QuantizeLinear", [x, s], [A("output_dtype", (long)DataType.Int16)])[0]!;
        Assert.Equal(DataType.Int16, o.ElementType);
        Assert.Equal("N", o.Shape![0].Symbol);
        Assert.Equal(DataType.Float16, Infer("DequantizeLinear", [TensorTypeInfo.FromShape(DataType.Int8, [3]), TensorTypeInfo.FromShape(DataType.Float16, [])])[0]!.ElementType);
    }
}
