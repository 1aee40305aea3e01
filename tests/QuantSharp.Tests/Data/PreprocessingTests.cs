using QuantSharp.Data;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Data;

public class PreprocessingTests
{
    /// <summary>An H×W×C uint8 image with pixel (y, x, c) = 10·y + 3·x + 50·c + 1.</summary>
    private static Tensor<byte> Image(int h, int w, int c)
    {
        var t = new Tensor<byte>([h, w, c]);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++) t.Data[(y * w + x) * c + ch] = (byte)(10 * y + 3 * x + 50 * ch + 1);
        return t;
    }

    private static float Px(Tensor<byte> img, int y, int x, int c) => img.Data[(y * img.Shape[1] + x) * img.Shape[2] + c];

    [Fact]
    public void ScaleMeanStdAndLayouts()
    {
        var img = Image(2, 3, 3);
        float[] mean = [0.5f, 0.4f, 0.3f], std = [0.2f, 0.25f, 0.5f];
        var p = new ImagePreprocessing { Scale = 1f / 255, Mean = mean, Std = std };
        var nchw = ImageTransform.Apply(img, p, "img").As<float>();
        var nhwc = ImageTransform.Apply(img, p with { Layout = ImageLayout.NHWC }, "img").As<float>();
        Assert.Equal([3, 2, 3], nchw.Shape);
        Assert.Equal([2, 3, 3], nhwc.Shape);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 2; y++)
                for (int x = 0; x < 3; x++)
                {
                    float expected = (Px(img, y, x, c) * (1f / 255) - mean[c]) / std[c];
                    Assert.Equal(expected, nchw.Data[(c * 2 + y) * 3 + x], 6);
                    Assert.Equal(expected, nhwc.Data[(y * 3 + x) * 3 + c], 6);
                }
    }

    [Fact]
    public void BgrSwapsFirstAndThirdChannel()
    {
        var img = Image(2, 2, 3);
        var rgb = ImageTransform.Apply(img, new ImagePreprocessing(), "i").As<float>().Data;
        var bgr = ImageTransform.Apply(img, new ImagePreprocessing { ChannelOrder = ChannelOrder.BGR, Mean = [1, 2, 3] }, "i").As<float>().Data;
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(rgb[8 + i] - 1, bgr[i]);
            Assert.Equal(rgb[4 + i] - 2, bgr[4 + i]);
            Assert.Equal(rgb[i] - 3, bgr[8 + i]);
        }
    }

    [Fact]
    public void ChannelConversions()
    {
        var rgba = Image(2, 2, 4);
        var gray = ImageTransform.Apply(rgba, new ImagePreprocessing { Channels = 1 }, "g").As<float>();
        Assert.Equal([1, 2, 2], gray.Shape);
        for (int i = 0; i < 4; i++)
        {
            float r = rgba.Data[4 * i], g = rgba.Data[4 * i + 1], b = rgba.Data[4 * i + 2];
            Assert.Equal(0.299f * r + 0.587f * g + 0.114f * b, gray.Data[i], 4);
        }
        // Default: colour images give 3 channels, alpha dropped.
        var three = ImageTransform.Apply(rgba, new ImagePreprocessing(), "c").As<float>();
        Assert.Equal([3, 2, 2], three.Shape);
        Assert.Equal(rgba.Data[4 * 3 + 2], three.Data[2 * 4 + 3]);
        var four = ImageTransform.Apply(rgba, new ImagePreprocessing { Channels = 4 }, "c").As<float>();
        Assert.Equal(rgba.Data[4 * 1 + 3], four.Data[3 * 4 + 1]);

        // Gray (and gray + alpha) replicate into 3 channels; 4 channels add an opaque alpha.
        var g1 = Image(2, 2, 1);
        var rep = ImageTransform.Apply(g1, new ImagePreprocessing { Channels = 4, Layout = ImageLayout.NHWC }, "r").As<float>().Data;
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal([g1.Data[i], g1.Data[i], g1.Data[i], 255f], rep[(4 * i)..(4 * i + 4)]);
        }
        var ga = Image(1, 2, 2);
        Assert.Equal([1, 1, 2], ImageTransform.Apply(ga, new ImagePreprocessing(), "ga").Shape);
        var twoD = new Tensor<byte>([1, 2, 3, 4], [2, 2]);
        Assert.Equal([1f, 2, 3, 4], ImageTransform.Apply(twoD, new ImagePreprocessing(), "2d").As<float>().Data);
    }

    [Fact]
    public void BilinearResizeUsesHalfPixelCentres()
    {
        var row = new Tensor<byte>([0, 100], [1, 2, 1]);
        var up = ImageTransform.Apply(row, new ImagePreprocessing { Height = 1, Width = 4 }, "r").As<float>().Data;
        // Output x samples input (x + 0.5)·2/4 − 0.5 = −0.25, 0.25, 0.75, 1.25, clamped to [0, 1].
        Assert.Equal([0f, 25f, 75f, 100f], up);

        var img = Image(5, 7, 3);
        var same = ImageTransform.Apply(img, new ImagePreprocessing { Height = 5, Width = 7 }, "s").As<float>().Data;
        Assert.Equal(ImageTransform.Apply(img, new ImagePreprocessing(), "s").As<float>().Data, same);

        // Pixel values are linear in x and y, so bilinear interpolation reproduces the plane exactly inside.
        var down = ImageTransform.Apply(img, new ImagePreprocessing { Height = 3, Width = 4, Layout = ImageLayout.NHWC }, "d").As<float>();
        Assert.Equal([3, 4, 3], down.Shape);
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 4; x++)
            {
                double sy = Math.Clamp((y + 0.5) * 5 / 3 - 0.5, 0, 4), sx = Math.Clamp((x + 0.5) * 7 / 4 - 0.5, 0, 6);
                Assert.Equal(10 * sy + 3 * sx + 1, down.Data[(y * 4 + x) * 3], 3);
            }

        var constant = new Tensor<byte>(Enumerable.Repeat((byte)77, 9 * 3).ToArray(), [3, 3, 3]);
        Assert.All(ImageTransform.Apply(constant, new ImagePreprocessing { Height = 8, Width = 5 }, "c").As<float>().Data, v => Assert.Equal(77f, v));
    }

    [Fact]
    public void OutputTypesAndFloatImages()
    {
        var img = Image(2, 2, 3);
        var h = ImageTransform.Apply(img, new ImagePreprocessing { OutputType = DataType.Float16, Scale = 0.5f }, "h").As<Half>();
        var f = ImageTransform.Apply(img, new ImagePreprocessing { Scale = 0.5f }, "f").As<float>();
        for (int i = 0; i < f.Length; i++) Assert.Equal((Half)f.Data[i], h.Data[i]);
        var d = ImageTransform.Apply(img, new ImagePreprocessing { OutputType = DataType.Double }, "d");
        Assert.Equal(DataType.Double, d.DataType);
        var asFloat = new Tensor<float>(img.Data.Select(b => (float)b).ToArray(), img.Shape);
        Assert.Equal(ImageTransform.Apply(img, new ImagePreprocessing(), "u").As<float>().Data,
            ImageTransform.Apply(asFloat, new ImagePreprocessing(), "f").As<float>().Data);
    }

    [Fact]
    public void ForInputShapeAndParse()
    {
        var p = new ImagePreprocessing().ForInputShape([1, 3, 224, 224], ImageLayout.NCHW);
        Assert.Equal((3, 224, 224), (p.Channels, p.Height, p.Width));
        var q = new ImagePreprocessing().ForInputShape([-1, 28, 28, 1], ImageLayout.NHWC);
        Assert.Equal((1, 28, 28, ImageLayout.NHWC), (q.Channels, q.Height, q.Width, q.Layout));
        var dyn = new ImagePreprocessing().ForInputShape([-1, 3, -1, -1], ImageLayout.NCHW);
        Assert.Null(dyn.Height);
        Assert.Throws<QuantSharpException>(() => new ImagePreprocessing().ForInputShape([1, 5, 8, 8], ImageLayout.NCHW));

        var parsed = ImagePreprocessing.Parse("scale=1/255, mean=0.485:0.456:0.406, std=0.229:0.224:0.225, layout=nhwc, order=bgr, size=32x48, channels=3, dtype=float16");
        Assert.Equal(1f / 255, parsed.Scale);
        Assert.Equal([0.485f, 0.456f, 0.406f], parsed.Mean!);
        Assert.Equal([0.229f, 0.224f, 0.225f], parsed.Std!);
        Assert.Equal((ImageLayout.NHWC, ChannelOrder.BGR, 32, 48, 3, DataType.Float16),
            (parsed.Layout, parsed.ChannelOrder, parsed.Height, parsed.Width, parsed.Channels, parsed.OutputType));
        Assert.Equal(new ImagePreprocessing().Scale, ImagePreprocessing.Parse("").Scale);
        Assert.Throws<QuantSharpException>(() => ImagePreprocessing.Parse("scale=abc"));
        Assert.Throws<QuantSharpException>(() => ImagePreprocessing.Parse("colour=red"));
        Assert.Throws<QuantSharpException>(() => ImagePreprocessing.Parse("std=0"));
        Assert.Throws<QuantSharpException>(() => ImagePreprocessing.Parse("channels=2"));
        var e = Assert.Throws<QuantSharpException>(() => ImageTransform.Apply(Image(2, 2, 3), new ImagePreprocessing { Mean = [1, 2] }, "m"));
        Assert.Contains("2 values for 3 channels", e.Message);
    }

    [Fact]
    public void BatcherStacksImagesWithLabels()
    {
        int n = 5;
        var imgs = new byte[n * 4 * 4 * 3];
        for (int i = 0; i < imgs.Length; i++) imgs[i] = (byte)(i * 13);
        var ds = new ArrayDataset("mem", new Tensor<byte>(imgs, [n, 4, 4, 3]), [3, 1, 4, 1, 5], SampleKind.Image);
        var p = new ImagePreprocessing { Scale = 2f };
        var batches = Batcher.Batches(ds, 2, p).ToList();
        Assert.Equal([2, 2, 1], batches.Select(b => b.Size));
        Assert.Equal([2, 3, 4, 4], batches[0].Input.Shape);
        Assert.Equal([1, 3, 4, 4], batches[2].Input.Shape);
        Assert.Equal(new int?[] { 4, 1 }, batches[1].Labels);
        for (int i = 0; i < n; i++)
        {
            var sample = ImageTransform.Apply(ds.Get(i).Input, p, "s").As<float>().Data;
            var batch = batches[i / 2].Input.As<float>().Data;
            Assert.Equal(sample, batch[((i % 2) * sample.Length)..((i % 2 + 1) * sample.Length)]);
        }
        Assert.Equal(2, Batcher.Batches(ds, 4, p, limit: 5).Count());
        Assert.Throws<QuantSharpException>(() => Batcher.Stack(ds, 4, 2));
    }

    [Fact]
    public void BatcherOnTensorSamples()
    {
        var x = new Tensor<byte>([0, 51, 102, 153, 204, 255], [3, 2]);
        var ds = new ArrayDataset("t", x, null, SampleKind.Tensor);
        var raw = Batcher.Stack(ds, 0, 3);
        Assert.Same(typeof(Tensor<byte>), raw.Input.GetType());
        Assert.Equal(x.Data, raw.Input.As<byte>().Data);
        // Integer tensors stay as they are under an identity transform …
        Assert.Equal(DataType.UInt8, Batcher.Stack(ds, 0, 2, new ImagePreprocessing()).Input.DataType);
        // … and become float with a scale.
        var scaled = Batcher.Stack(ds, 1, 2, new ImagePreprocessing { Scale = 1f / 255, Mean = [0.5f], Std = [0.5f] }).Input.As<float>();
        Assert.Equal([2, 2], scaled.Shape);
        for (int i = 0; i < 4; i++) Assert.Equal((x.Data[2 + i] / 255f - 0.5f) / 0.5f, scaled.Data[i], 6);
        Assert.Throws<QuantSharpException>(() => Batcher.Stack(ds, 0, 1, new ImagePreprocessing { Mean = [1, 2, 3] }));

        var f = new ArrayDataset("f", new Tensor<float>([1, 2, 3, 4], [4]), null, SampleKind.Tensor);
        var half = Batcher.Stack(f, 0, 4, new ImagePreprocessing { OutputType = DataType.Float16 }).Input;
        Assert.Equal(DataType.Float16, half.DataType);
        Assert.Equal([4], half.Shape);

        var concat = Batcher.ConcatBatches([new Tensor<int>([1, 2], [1, 2]), new Tensor<int>([3, 4, 5, 6], [2, 2])], "c");
        Assert.Equal([3, 2], concat.Shape);
        Assert.Equal([1, 2, 3, 4, 5, 6], concat.As<int>().Data);
        var e = Assert.Throws<QuantSharpException>(() => Batcher.StackTensors([new Tensor<int>([2]), new Tensor<int>([3])], "mix"));
        Assert.Contains("mix sample 1", e.Message);
    }

    [Fact]
    public void DifferentImageSizesNeedAResize()
    {
        var a = Image(2, 2, 3);
        var b = Image(3, 3, 3);
        var e = Assert.Throws<QuantSharpException>(() => Batcher.StackImages([a, b], new ImagePreprocessing(), "set"));
        Assert.Contains("set sample 1", e.Message);
        var ok = Batcher.StackImages([a, b], new ImagePreprocessing { Height = 4, Width = 4 }, "set");
        Assert.Equal([2, 3, 4, 4], ok.Shape);
    }
}
