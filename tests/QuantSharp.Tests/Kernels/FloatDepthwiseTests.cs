using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Runtime.Operators;

namespace QuantSharp.Tests.Kernels;

/// <summary>
/// The stride-phase float depthwise kernel against the scalar convolution reference plus the clamp, over odd plane
/// sizes, kernels, strides, dilations and asymmetric padding. Tolerance: 1e-5 · (Σ|w·x| + |b|) per output (the
/// kernel sums with fused multiply-adds, the reference multiplies then adds).
/// </summary>
public class FloatDepthwiseTests
{
    private static float[] Values(Random rnd, int n)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(rnd.NextDouble() * 4 - 2);
        return v;
    }

    private static ConvGeometry Geometry(int n, int c, int ih, int iw, int kh, int kw, int sh, int sw, int dh, int dw, int[] pads)
    {
        var attrs = new WindowAttributes
        {
            Group = c, Strides = [sh, sw], Dilations = [dh, dw], Pads = pads.Select(p => (long)p).ToArray(),
        };
        return ConvGeometry.ForConv(attrs, [n, c, ih, iw], [c, 1, kh, kw]);
    }

    private static void Check(Random rnd, ConvGeometry geo, bool clamp, float lo, float hi)
    {
        var win = new Window3D(geo);
        int c = geo.InputChannels, planes = geo.Batch * c, outS = win.OutputSize;
        var x = Values(rnd, planes * win.InputSize);
        var w = Values(rnd, c * win.KernelSize);
        var b = Values(rnd, c);
        var expected = new float[planes * outS];
        ConvReference.Conv(geo, x, w, b, expected);
        var bound = new float[planes * outS];
        ConvReference.Conv(geo, x.Select(Math.Abs).ToArray(), w.Select(Math.Abs).ToArray(), b.Select(Math.Abs).ToArray(), bound);
        // One guard element past the output: the kernel must not write it.
        var actual = new float[planes * outS + 1];
        actual[^1] = 1234.5f;
        var scratch = new float[FloatDepthwise.ScratchLength(win)];
        Array.Fill(scratch, float.NaN);
        // Two calls over a split of the planes, as two threads would run them.
        int split = planes / 2;
        FloatDepthwise.Run(win, c, 1, x, w, b, clamp, lo, hi, actual, 0, split, scratch);
        FloatDepthwise.Run(win, c, 1, x, w, b, clamp, lo, hi, actual, split, planes, scratch);
        Assert.Equal(1234.5f, actual[^1]);
        for (int i = 0; i < expected.Length; i++)
        {
            float e = clamp ? Math.Min(Math.Max(expected[i], lo), hi) : expected[i];
            Assert.True(Math.Abs(e - actual[i]) <= 1e-5f * (bound[i] + 1e-3f),
                $"{Describe(geo)}: element {i}: expected {e}, got {actual[i]}");
        }
    }

    private static string Describe(ConvGeometry g) =>
        $"x [{g.Batch},{g.InputChannels},{string.Join(",", g.InputSpatial)}] k {string.Join("x", g.Kernel)} s {string.Join(",", g.Strides)} d {string.Join(",", g.Dilations)} pads {string.Join(",", g.Pads())}";

    [Fact]
    public void MatchesReferenceOverOddSizes()
    {
        var rnd = new Random(5);
        foreach (int s in new[] { 1, 2 })
            foreach (int k in new[] { 1, 3 })
                foreach (int ih in new[] { 1, 2, 3, 5, 7, 8, 13, 14, 17 })
                    foreach (int iw in new[] { 1, 4, 7, 14, 15, 16, 17, 28, 33 })
                    {
                        int p = k / 2;
                        int[] pads = rnd.Next(3) == 0 ? [p, 0, 0, p] : [p, p, p, p];
                        var geo = Geometry(rnd.Next(1, 3), rnd.Next(1, 18), ih, iw, k, k, s, s, 1, 1, pads);
                        if (geo.OutputSpatialSize == 0) continue;
                        Check(rnd, geo, rnd.Next(2) == 0, 0f, 6f);
                    }
    }

    [Fact]
    public void MatchesReferenceForUnusualWindows()
    {
        var rnd = new Random(6);
        // Rectangular kernels, stride 3, dilations, pads larger than the kernel, unbounded clamp sides, 1-row inputs.
        (int c, int ih, int iw, int kh, int kw, int sh, int sw, int dh, int dw, int[] pads)[] cases =
        [
            (3, 9, 11, 5, 3, 1, 1, 1, 1, [2, 1, 2, 1]),
            (2, 10, 9, 3, 3, 3, 3, 1, 1, [1, 1, 1, 1]),
            (4, 12, 13, 3, 3, 1, 2, 2, 1, [2, 0, 1, 3]),
            (5, 7, 7, 3, 5, 2, 1, 1, 2, [1, 4, 0, 4]),
            (1, 1, 17, 1, 3, 1, 2, 1, 1, [0, 1, 0, 1]),
            (6, 5, 5, 3, 3, 1, 1, 1, 1, [4, 4, 4, 4]),
            (17, 4, 3, 2, 2, 2, 2, 1, 1, [0, 0, 1, 1]),
        ];
        foreach (var t in cases)
        {
            var geo = Geometry(2, t.c, t.ih, t.iw, t.kh, t.kw, t.sh, t.sw, t.dh, t.dw, t.pads);
            Check(rnd, geo, false, 0f, 0f);
            Check(rnd, geo, true, float.NegativeInfinity, 0.5f);
            Check(rnd, geo, true, -0.25f, float.PositiveInfinity);
        }
    }

    /// <summary>
    /// Several output channels per input channel (group = C, M = C·mult; mult = M with C = 1 is a one-channel stem):
    /// output plane (n, m) reads input plane (n, m / mult), against the reference with the same tolerance.
    /// </summary>
    [Theory]
    [InlineData(1, 4, 28, 28, 1)]
    [InlineData(1, 16, 9, 13, 2)]
    [InlineData(3, 6, 7, 5, 1)]
    [InlineData(2, 8, 14, 15, 2)]
    public void ChannelMultipliersMatchReference(int c, int m, int ih, int iw, int stride)
    {
        var rnd = new Random(c * 100 + m);
        var attrs = new WindowAttributes { Group = c, Strides = [stride, stride], Pads = [1, 1, 1, 1] };
        var geo = ConvGeometry.ForConv(attrs, [2, c, ih, iw], [m, 1, 3, 3]);
        var win = new Window3D(geo);
        int planes = 2 * m, outS = win.OutputSize;
        var x = Values(rnd, 2 * c * win.InputSize);
        var w = Values(rnd, m * 9);
        var b = Values(rnd, m);
        var expected = new float[planes * outS];
        ConvReference.Conv(geo, x, w, b, expected);
        var bound = new float[planes * outS];
        ConvReference.Conv(geo, x.Select(Math.Abs).ToArray(), w.Select(Math.Abs).ToArray(), b.Select(Math.Abs).ToArray(), bound);
        var actual = new float[planes * outS];
        var scratch = new float[FloatDepthwise.ScratchLength(win)];
        FloatDepthwise.Run(win, m, m / c, x, w, b, true, -1f, 1f, actual, 0, 3, scratch);
        FloatDepthwise.Run(win, m, m / c, x, w, b, true, -1f, 1f, actual, 3, planes, scratch);
        for (int i = 0; i < expected.Length; i++)
        {
            float e = Math.Min(Math.Max(expected[i], -1f), 1f);
            Assert.True(Math.Abs(e - actual[i]) <= 1e-5f * (bound[i] + 1e-3f), $"element {i}: expected {e}, got {actual[i]}");
        }
    }

    [Fact]
    public void ClampCopyLimitsEveryLength()
    {
        var rnd = new Random(7);
        for (int n = 0; n <= 40; n++)
        {
            var src = Values(rnd, n);
            var dst = new float[n + 1];
            dst[^1] = 99f;
            unsafe
            {
                fixed (float* ps = src) fixed (float* pd = dst) FloatDepthwise.ClampCopy(ps, pd, n, true, -0.5f, 1f);
            }
            for (int i = 0; i < n; i++) Assert.Equal(Math.Min(Math.Max(src[i], -0.5f), 1f), dst[i]);
            Assert.Equal(99f, dst[^1]);
        }
    }

    /// <summary>
    /// Requantization of integer-valued float sums to bytes equals <see cref="Int8ChannelGemmReference.Requantize"/>
    /// bit for bit, for contiguous runs of every length and for rows WS apart with masked row tails.
    /// </summary>
    [Fact]
    public unsafe void RequantizationMatchesScalarReference()
    {
        var rnd = new Random(8);
        foreach (var (zp, min, max) in new[] { (3, 0, 255), (-7, -128, 127), (0, 0, 255) })
            for (int n = 0; n <= 40; n++)
            {
                float mul = (float)(rnd.NextDouble() * 0.02), off = (float)(rnd.NextDouble() * 40 - 20);
                var sums = Enumerable.Range(0, n).Select(_ => (float)rnd.Next(-70000, 70000)).ToArray();
                if (n > 2) { sums[0] = 16777215f; sums[1] = -16777215f; }
                var dst = new byte[n + 1];
                dst[^1] = 77;
                fixed (float* ps = sums) fixed (byte* pd = dst) FloatDepthwise.RequantizeToBytes(ps, n, mul, off, zp, min, max, pd);
                for (int i = 0; i < n; i++) Assert.Equal((byte)Int8ChannelGemmReference.Requantize((int)sums[i], mul, off, zp, min, max), dst[i]);
                Assert.Equal(77, dst[^1]);
            }
        // Rows: a 3×3 depthwise window over odd widths, outputs OW apart from sums WS apart.
        foreach (int iw in new[] { 1, 5, 7, 14, 15, 16, 17, 33 })
            foreach (int stride in new[] { 1, 2 })
            {
                var geo = Geometry(1, 1, 4, iw, 3, 3, stride, stride, 1, 1, [1, 1, 1, 1]);
                var win = new Window3D(geo);
                var l = new DepthwiseLayout(win);
                var scratch = new float[l.Total];
                var acc = Enumerable.Range(0, l.AccCap).Select(_ => (float)rnd.Next(-5000, 5000)).ToArray();
                var dst = new byte[win.OutputSize + 1];
                dst[^1] = 77;
                fixed (float* pa = acc) fixed (float* ps = scratch) fixed (byte* pd = dst)
                    FloatDepthwise.RequantizeRows(win, l, pa, ps, 0.01f, 3.5f, 5, 0, 255, pd);
                for (int oh = 0; oh < win.OH; oh++)
                    for (int ow = 0; ow < win.OW; ow++)
                        Assert.Equal((byte)Int8ChannelGemmReference.Requantize((int)acc[oh * l.WS + ow], 0.01f, 3.5f, 5, 0, 255), dst[oh * win.OW + ow]);
                Assert.Equal(77, dst[^1]);
            }
    }
}
