using QuantSharp.Tensors;
using static QuantSharp.Tests.Operators.ShapeTestUtil;

namespace QuantSharp.Tests.Operators;

public class ShapePadResizeTests
{
    /// <summary>Source index of padded position i (pads smaller than the axis) for numpy's modes.</summary>
    private static int Src(string mode, int i, int n) => mode switch
    {
        "constant" => i < 0 || i >= n ? -1 : i,
        "edge" => Math.Clamp(i, 0, n - 1),
        "reflect" => i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i,
        "wrap" => i < 0 ? i + n : i >= n ? i - n : i,
        _ => throw new ArgumentException(mode),
    };

    private static float[] PadReference(Tensor<float> x, long[] pads, string mode, float value, out int[] shape)
    {
        int r = x.Rank;
        shape = Enumerable.Range(0, r).Select(d => x.Shape[d] + (int)pads[d] + (int)pads[d + r]).ToArray();
        var y = new float[shape.Aggregate(1, (a, b) => a * b)];
        for (int o = 0; o < y.Length; o++)
        {
            var oi = Unravel(o, shape);
            var ii = new int[r];
            bool outside = false;
            for (int d = 0; d < r; d++)
            {
                ii[d] = Src(mode, oi[d] - (int)pads[d], x.Shape[d]);
                outside |= ii[d] < 0;
            }
            y[o] = outside ? value : x.Data[Ravel(ii, x.Shape)];
        }
        return y;
    }

    [Theory]
    [InlineData("constant")]
    [InlineData("reflect")]
    [InlineData("edge")]
    [InlineData("wrap")]
    public void PadModesMatchReference(string mode)
    {
        var x = Seq(3, 4);
        long[] pads = [2, 1, 1, 3];
        var expected = PadReference(x, pads, mode, 2.5f, out var shape);
        var y = Run1("Pad", 19, [x, Longs(pads), Tensor<float>.Scalar(2.5f)], A("mode", mode));
        Assert.Equal(shape, y.Shape);
        Assert.Equal(expected, y.As<float>().Data);
    }

    [Fact]
    public void PadAttributeVersionsAxesAndCropping()
    {
        var x = Seq(3, 4);
        long[] pads = [1, 0, 0, 2];
        var expected = PadReference(x, pads, "constant", 7f, out _);
        Assert.Equal(expected, Run1("Pad", 2, [x], A("pads", pads), A("value", 7f)).As<float>().Data);
        Assert.Equal(expected, Run1("Pad", 1, [x], A("paddings", pads), A("value", 7f)).As<float>().Data);
        // Axes input (18+): pads only axis 1 → [b1, e1].
        var ya = Run1("Pad", 18, [x, Longs(0, 2), null, Longs(-1)], A("mode", "edge"));
        Assert.Equal(PadReference(x, [0, 0, 0, 2], "edge", 0, out _), ya.As<float>().Data);
        // Negative pads crop.
        var yc = Run1("Pad", 13, [x, Longs(-1, 0, 0, -2)]);
        Assert.Equal([2, 2], yc.Shape);
        Assert.Equal([5f, 6f, 9f, 10f], yc.As<float>().Data);
        // int64 data with an int64 constant value.
        var l = Of(new long[] { 1, 2 }, 2);
        Same<long>(Longs(9, 1, 2), Run1("Pad", 13, [l, Longs(1, 0), Tensor<long>.Scalar(9)]));
        // Reflect farther than the axis length keeps mirroring.
        var far = Run1("Pad", 13, [Of(new[] { 1f, 2f, 3f }, 3), Longs(4, 0)], A("mode", "reflect"));
        Assert.Equal([1f, 2f, 3f, 2f, 1f, 2f, 3f], far.As<float>().Data);
    }

    /// <summary>Direct bilinear sample of a 2-D image at (y, x), edge-clamped.</summary>
    private static float Bilinear(float[] img, int h, int w, double y, double x)
    {
        y = Math.Clamp(y, 0, h - 1);
        x = Math.Clamp(x, 0, w - 1);
        int y0 = (int)Math.Floor(y), x0 = (int)Math.Floor(x);
        int y1 = Math.Min(y0 + 1, h - 1), x1 = Math.Min(x0 + 1, w - 1);
        double fy = y - y0, fx = x - x0;
        return (float)((1 - fy) * ((1 - fx) * img[y0 * w + x0] + fx * img[y0 * w + x1])
            + fy * ((1 - fx) * img[y1 * w + x0] + fx * img[y1 * w + x1]));
    }

    private static double Coord(string mode, int o, double scale, int inLen, int outLen) => mode switch
    {
        "half_pixel" => (o + 0.5) / scale - 0.5,
        "pytorch_half_pixel" => outLen > 1 ? (o + 0.5) / scale - 0.5 : 0,
        "align_corners" => outLen == 1 ? 0 : o * (inLen - 1.0) / (outLen - 1),
        "asymmetric" => o / scale,
        _ => throw new ArgumentException(mode),
    };

    [Theory]
    [InlineData("half_pixel", 4, 6)]
    [InlineData("half_pixel", 2, 3)]
    [InlineData("pytorch_half_pixel", 5, 1)]
    [InlineData("align_corners", 7, 5)]
    [InlineData("asymmetric", 8, 2)]
    public void LinearResizeOfSizesMatchesBilinearReference(string mode, int oh, int ow)
    {
        int h = 3, w = 4;
        var x = Seq(2, 1, h, w);
        var y = Run1("Resize", 13, [x, null, null, Longs(2, 1, oh, ow)], A("mode", "linear"), A("coordinate_transformation_mode", mode));
        Assert.Equal([2, 1, oh, ow], y.Shape);
        var expected = new float[2 * oh * ow];
        for (int n = 0; n < 2; n++)
        {
            var img = x.Data.AsSpan(n * h * w, h * w).ToArray();
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                    expected[(n * oh + i) * ow + j] = Bilinear(img, h, w,
                        Coord(mode, i, (double)oh / h, h, oh), Coord(mode, j, (double)ow / w, w, ow));
        }
        Close(expected, y);
    }

    [Fact]
    public void NearestResizeModes()
    {
        var x = Seq(1, 1, 2, 2);
        // Scales [1,1,2,3] with asymmetric + floor repeat each pixel (the Upsample behaviour).
        var y = Run1("Resize", 13, [x, null, Of(new[] { 1f, 1f, 2f, 3f }, 4)],
            A("mode", "nearest"), A("coordinate_transformation_mode", "asymmetric"), A("nearest_mode", "floor"));
        Assert.Equal([1, 1, 4, 6], y.Shape);
        for (int o = 0; o < y.Length; o++)
        {
            var oi = Unravel(o, [1, 1, 4, 6]);
            Assert.Equal(x.Data[oi[2] / 2 * 2 + oi[3] / 3], y.As<float>().Data[o]);
        }
        var up = Run1("Upsample", 9, [x, Of(new[] { 1f, 1f, 2f, 3f }, 4)]);
        Assert.Equal(y.As<float>().Data, up.As<float>().Data);
        var up7 = Run1("Upsample", 7, [x], A("scales", new[] { 1f, 1f, 2f, 3f }));
        Assert.Equal(y.As<float>().Data, up7.As<float>().Data);

        // 1-D check of each nearest_mode on half_pixel coordinates, 4 → 3 (x = (o+0.5)·4/3 - 0.5).
        var v = Of(new[] { 10f, 20f, 30f, 40f }, 4);
        foreach (var nm in new[] { "round_prefer_floor", "round_prefer_ceil", "floor", "ceil" })
        {
            var r = Run1("Resize", 13, [v, null, null, Longs(3)], A("mode", "nearest"), A("nearest_mode", nm));
            var expected = new float[3];
            for (int o = 0; o < 3; o++)
            {
                double c = (o + 0.5) * 4 / 3 - 0.5;
                double fl = Math.Floor(c), fr = c - fl;
                double pick = nm switch
                {
                    "round_prefer_floor" => fr <= 0.5 ? fl : fl + 1,
                    "round_prefer_ceil" => fr < 0.5 ? fl : fl + 1,
                    "floor" => fl,
                    _ => Math.Ceiling(c),
                };
                expected[o] = v.Data[(int)Math.Clamp(pick, 0, 3)];
            }
            Assert.Equal(expected, r.As<float>().Data);
        }
        // Nearest works for integer and bool data too.
        var b = Run1("Resize", 13, [Of(new[] { true, false }, 2), null, Of(new[] { 2f }, 1)], A("mode", "nearest"));
        Same<bool>(Of(new[] { true, true, false, false }, 4), b);
    }

    [Fact]
    public void TfCropAndResizeExtrapolatesOutsideTheRoi()
    {
        var x = Seq(1, 1, 4, 4);
        // roi from 0.4..0.6 on H and -0.1..1.1 on W (W partly outside).
        var roi = Of(new[] { 0f, 0f, 0.4f, -0.1f, 1f, 1f, 0.6f, 1.1f }, 8);
        var y = Run1("Resize", 13, [x, roi, null, Longs(1, 1, 3, 3)], A("mode", "linear"),
            A("coordinate_transformation_mode", "tf_crop_and_resize"), A("extrapolation_value", 10f));
        var expected = new float[9];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
            {
                double cy = 0.4f * 3 + i * (0.6f - 0.4f) * 3 / 2.0;
                double cx = -0.1f * 3 + j * (1.1f - -0.1f) * 3 / 2.0;
                expected[i * 3 + j] = cx < 0 || cx > 3 || cy < 0 || cy > 3 ? 10f : Bilinear(x.Data, 4, 4, cy, cx);
            }
        Close(expected, y, 1e-4f);
        Assert.Equal(10f, y.As<float>().Data[0]);
    }

    [Fact]
    public void CubicResizeOfALinearRampStaysLinearInside()
    {
        // Cubic convolution reproduces linear functions exactly away from the borders (weights sum to 1, first moment 0).
        var x = Of(Enumerable.Range(0, 8).Select(i => (float)i).ToArray(), 1, 8);
        var y = Run1("Resize", 13, [x, null, Of(new[] { 1f, 2f }, 2)], A("mode", "cubic"), A("coordinate_transformation_mode", "asymmetric"));
        Assert.Equal([1, 16], y.Shape);
        var d = y.As<float>().Data;
        for (int o = 2; o < 12; o++) Assert.Equal(o / 2.0, d[o], 4);
        // exclude_outside renormalises at the borders but keeps the interior.
        var ye = Run1("Resize", 13, [x, null, Of(new[] { 1f, 2f }, 2)], A("mode", "cubic"), A("exclude_outside", 1L),
            A("coordinate_transformation_mode", "asymmetric"));
        for (int o = 2; o < 12; o++) Assert.Equal(o / 2.0, ye.As<float>().Data[o], 4);
    }

    [Fact]
    public void ResizeAxesAndAspectRatioPolicy()
    {
        var x = Seq(1, 1, 4, 6);
        // sizes only for H and W (axes attribute, opset 18), keep aspect ratio within 2x2: scale = min(2/4, 2/6).
        var y = Run1("Resize", 18, [x, null, null, Longs(2, 2)], A("axes", new long[] { 2, 3 }),
            A("keep_aspect_ratio_policy", "not_larger"), A("mode", "nearest"));
        Assert.Equal([1, 1, 1, 2], y.Shape);
        var z = Run1("Resize", 19, [x, null, null, Longs(2, 2)], A("axes", new long[] { -2, -1 }),
            A("keep_aspect_ratio_policy", "not_smaller"), A("mode", "linear"));
        Assert.Equal([1, 1, 2, 3], z.Shape);
        // Linear antialias downsampling averages more than two taps: the mean of a constant image is preserved.
        var c = new Tensor<float>([1, 1, 8, 8]);
        Array.Fill(c.Data, 3f);
        var aa = Run1("Resize", 18, [c, null, Of(new[] { 1f, 1f, 0.25f, 0.25f }, 4)], A("mode", "linear"), A("antialias", 1L));
        Assert.Equal([1, 1, 2, 2], aa.Shape);
        Assert.All(aa.As<float>().Data, v => Assert.Equal(3f, v, 5));
    }

    [Fact]
    public void ResizeLinearOnUInt8RoundsAndKeepsType()
    {
        var x = Of(new byte[] { 0, 255 }, 1, 2);
        var y = Run1("Resize", 13, [x, null, null, Longs(1, 3)], A("mode", "linear"), A("coordinate_transformation_mode", "align_corners"));
        Same<byte>(Of(new byte[] { 0, 128, 255 }, 1, 3), y);
    }
}
