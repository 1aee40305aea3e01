using QuantSharp.Graph;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Quantization.QuantGraph;

namespace QuantSharp.Tests.Quantization;

public class QLinearConvTests
{
    /// <summary>A 2-D conv case: shapes and attributes, with the geometry computed here independently of the library.</summary>
    private sealed record Conv2D(int N, int C, int H, int W, int M, int KH, int KW, int Group, int[] Strides, int[] Dilations, int[] Pads, string AutoPad)
    {
        public int OH, OW, PT, PL;

        public Conv2D Resolve()
        {
            int dkh = (KH - 1) * Dilations[0] + 1, dkw = (KW - 1) * Dilations[1] + 1;
            if (AutoPad == "SAME_UPPER" || AutoPad == "SAME_LOWER")
            {
                OH = (H + Strides[0] - 1) / Strides[0];
                OW = (W + Strides[1] - 1) / Strides[1];
                int th = Math.Max(0, (OH - 1) * Strides[0] + dkh - H), tw = Math.Max(0, (OW - 1) * Strides[1] + dkw - W);
                PT = AutoPad == "SAME_UPPER" ? th / 2 : th - th / 2;
                PL = AutoPad == "SAME_UPPER" ? tw / 2 : tw - tw / 2;
            }
            else
            {
                // VALID ignores pads.
                int[] p = AutoPad == "VALID" ? [0, 0, 0, 0] : Pads;
                OH = (H + p[0] + p[2] - dkh) / Strides[0] + 1;
                OW = (W + p[1] + p[3] - dkw) / Strides[1] + 1;
                PT = p[0];
                PL = p[1];
            }
            return this;
        }

        public NodeAttribute[] Attributes()
        {
            var a = new List<NodeAttribute> { A("group", Group), A("strides", Strides.Select(v => (long)v).ToArray()),
                A("dilations", Dilations.Select(v => (long)v).ToArray()), A("kernel_shape", new long[] { KH, KW }) };
            if (AutoPad.Length > 0) a.Add(A("auto_pad", AutoPad));
            else a.Add(A("pads", Pads.Select(v => (long)v).ToArray()));
            return a.ToArray();
        }

        /// <summary>Direct conv: Σ over the group's channels and the kernel of fx(n, c, ih, iw) · fw(m, c, kh, kw), padding skipped.</summary>
        public double[] Direct(Func<int, int, int, int, double> fx, Func<int, int, int, int, double> fw, Func<int, double> bias)
        {
            int cg = C / Group, mg = M / Group;
            var y = new double[N * M * OH * OW];
            for (int n = 0; n < N; n++)
                for (int m = 0; m < M; m++)
                    for (int oh = 0; oh < OH; oh++)
                        for (int ow = 0; ow < OW; ow++)
                        {
                            double s = bias(m);
                            for (int c = 0; c < cg; c++)
                                for (int kh = 0; kh < KH; kh++)
                                    for (int kw = 0; kw < KW; kw++)
                                    {
                                        int ih = oh * Strides[0] - PT + kh * Dilations[0], iw = ow * Strides[1] - PL + kw * Dilations[1];
                                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                        s += fx(n, (m / mg) * cg + c, ih, iw) * fw(m, c, kh, kw);
                                    }
                            y[((n * M + m) * OH + oh) * OW + ow] = s;
                        }
            return y;
        }
    }

    public static TheoryData<int, int, int, int, int, int, int, int, string> Cases() => new()
    {
        // n, c, h, w, m, k, group, stride/dilation code, auto_pad ("" = explicit pads)
        { 1, 3, 7, 6, 4, 3, 1, 0, "" },
        { 2, 4, 6, 6, 6, 3, 2, 1, "" },       // groups, stride 2, asymmetric pads
        { 1, 4, 5, 7, 4, 3, 4, 2, "" },       // depthwise, dilation 2
        { 1, 2, 6, 5, 3, 2, 1, 1, "SAME_UPPER" },
        { 1, 2, 6, 5, 3, 2, 1, 1, "SAME_LOWER" },
        { 1, 3, 5, 5, 2, 1, 1, 0, "VALID" },  // 1×1
    };

    private static Conv2D Make(int n, int c, int h, int w, int m, int k, int group, int code, string autoPad) => code switch
    {
        0 => new Conv2D(n, c, h, w, m, k, k, group, [1, 1], [1, 1], [1, 1, 1, 1], autoPad),
        1 => new Conv2D(n, c, h, w, m, k, k, group, [2, 2], [1, 1], [1, 0, 2, 1], autoPad),
        _ => new Conv2D(n, c, h, w, m, k, k, group, [1, 2], [2, 2], [2, 1, 2, 1], autoPad),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ConvIntegerMatchesDirectConvolution(int n, int c, int h, int w, int m, int k, int group, int code, string autoPad)
    {
        var cv = Make(n, c, h, w, m, k, group, code, autoPad).Resolve();
        var r = new Random(n * 100 + c * 10 + code);
        var x = RandomInts(r, n * c * h * w, 0, 255);
        var wt = RandomInts(r, m * (c / group) * k * k, -128, 127);
        var wzp = RandomInts(r, m, -20, 20);
        int xzp = 131;
        var y = Run1("ConvInteger", [Ints(DataType.UInt8, x, n, c, h, w), Ints(DataType.Int8, wt, m, c / group, k, k),
            Ints(DataType.UInt8, [xzp]), Ints(DataType.Int8, wzp, m)], cv.Attributes(), opset: 10, constants: [1, 3]);
        Assert.Equal(DataType.Int32, y.DataType);
        Assert.Equal([n, m, cv.OH, cv.OW], y.Shape);
        int cg = c / group;
        var want = cv.Direct((b, ch, ih, iw) => x[((b * c + ch) * h + ih) * w + iw] - xzp,
            (mm, ch, kh, kw) => wt[((mm * cg + ch) * k + kh) * k + kw] - wzp[mm], _ => 0);
        Assert.Equal(want.Select(v => (int)v), IntsOf(y));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void QLinearConvMatchesDequantizeConvQuantize(int n, int c, int h, int w, int m, int k, int group, int code, string autoPad)
    {
        var cv = Make(n, c, h, w, m, k, group, code, autoPad).Resolve();
        var r = new Random(n * 100 + c * 10 + code + 7);
        int cg = c / group;
        var x = RandomInts(r, n * c * h * w, -128, 127);
        var wt = RandomInts(r, m * cg * k * k, -128, 127);
        var wS = RandomFloats(r, m, 0.002f, 0.01f);
        var wZ = RandomInts(r, m, -5, 5);
        var bias = RandomInts(r, m, -2000, 2000);
        float xS = 0.05f, yS = 0.08f;
        int xZ = -3, yZ = 120;
        var y = Run1("QLinearConv", [Ints(DataType.Int8, x, n, c, h, w), FScalar(xS), Ints(DataType.Int8, [xZ]),
            Ints(DataType.Int8, wt, m, cg, k, k), F(wS, m), Ints(DataType.Int8, wZ, m), FScalar(yS), Ints(DataType.UInt8, [yZ]),
            Ints(DataType.Int32, bias, m)], cv.Attributes(), opset: 10, constants: [3, 4, 5, 8]);
        Assert.Equal(DataType.UInt8, y.DataType);
        Assert.Equal([n, m, cv.OH, cv.OW], y.Shape);
        var got = IntsOf(y);
        // Exact integer path: acc · (xS·wS[m]/yS) rounded half to even.
        var acc = cv.Direct((b, ch, ih, iw) => x[((b * c + ch) * h + ih) * w + iw] - xZ,
            (mm, ch, kh, kw) => wt[((mm * cg + ch) * k + kh) * k + kw] - wZ[mm], mm => bias[mm]);
        // Float path: dequantize, convolve in double, quantize.
        var real = cv.Direct((b, ch, ih, iw) => (x[((b * c + ch) * h + ih) * w + iw] - xZ) * (double)xS,
            (mm, ch, kh, kw) => (wt[((mm * cg + ch) * k + kh) * k + kw] - wZ[mm]) * (double)wS[mm], mm => bias[mm] * (double)xS * wS[mm]);
        int plane = cv.OH * cv.OW, off1 = 0;
        for (int i = 0; i < got.Length; i++)
        {
            int mm = i / plane % m;
            float mult = xS * wS[mm] / yS;
            int exact = (int)Math.Clamp(Math.Round(acc[i] * (double)mult, MidpointRounding.ToEven) + yZ, 0, 255);
            Assert.Equal(exact, got[i]);
            int viaFloat = (int)Math.Clamp(Math.Round(real[i] / yS, MidpointRounding.ToEven) + yZ, 0, 255);
            Assert.True(Math.Abs(got[i] - viaFloat) <= 1, $"element {i}: {got[i]} vs float reference {viaFloat}");
            if (got[i] != viaFloat) off1++;
        }
        Assert.True(off1 <= got.Length / 10 + 1, $"{off1} of {got.Length} differ by one from the float reference");
    }

    [Fact]
    public void PerTensorWeightScaleAndUInt8Weights()
    {
        var cv = Make(1, 2, 4, 4, 3, 3, 1, 0, "").Resolve();
        var r = new Random(77);
        var x = RandomInts(r, 32, 0, 255);
        var wt = RandomInts(r, 3 * 2 * 9, 0, 255);
        var y = Run1("QLinearConv", [Ints(DataType.UInt8, x, 1, 2, 4, 4), FScalar(0.02f), Ints(DataType.UInt8, [128]),
            Ints(DataType.UInt8, wt, 3, 2, 3, 3), FScalar(0.01f), Ints(DataType.UInt8, [120]), FScalar(0.1f), Ints(DataType.Int8, [-4])],
            cv.Attributes(), opset: 10);
        var acc = cv.Direct((b, ch, ih, iw) => x[(ch * 4 + ih) * 4 + iw] - 128, (mm, ch, kh, kw) => wt[((mm * 2 + ch) * 3 + kh) * 3 + kw] - 120, _ => 0);
        float mult = 0.02f * 0.01f / 0.1f;
        Assert.Equal(acc.Select(a => (int)Math.Clamp(Math.Round(a * (double)mult, MidpointRounding.ToEven) - 4, -128, 127)), IntsOf(y));
    }

    [Fact]
    public void InfersConvIntegerShape()
    {
        var t = Infer("ConvInteger", [TensorTypeInfo.FromShape(DataType.UInt8, [1, 3, 8, 8]), TensorTypeInfo.FromShape(DataType.UInt8, [5, 3, 3, 3])],
            [A("strides", new long[] { 2, 2 }), A("pads", new long[] { 1, 1, 1, 1 })], opset: 10)[0]!;
        Assert.Equal(DataType.Int32, t.ElementType);
        Assert.Equal([1, 5, 4, 4], t.ConcreteShape()!);
    }
}
