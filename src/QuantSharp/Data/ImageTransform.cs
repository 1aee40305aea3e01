using QuantSharp.Tensors;

namespace QuantSharp.Data;

/// <summary>Turns one image [H, W, C] (uint8, or float32 on the 0..255 scale) into a model input sample.</summary>
public static class ImageTransform
{
    /// <summary>
    /// One preprocessed sample without a batch dimension: [C, H, W] for NCHW or [H, W, C] for NHWC, in
    /// <see cref="ImagePreprocessing.OutputType"/>. <paramref name="name"/> names the image in errors.
    /// </summary>
    public static Tensor Apply(Tensor image, ImagePreprocessing p, string name)
    {
        var (c, h, w) = OutputShape(image, p, name);
        var f = new float[c * h * w];
        Fill(image, p, f, name);
        int[] shape = p.Layout == ImageLayout.NCHW ? [c, h, w] : [h, w, c];
        return FromFloat(f, shape, p.OutputType);
    }

    /// <summary>The (channels, height, width) that <see cref="Apply"/> produces for this image.</summary>
    public static (int C, int H, int W) OutputShape(Tensor image, ImagePreprocessing p, string name)
    {
        var (h, w, cs) = ImageDims(image, name);
        int c = p.Channels ?? (cs <= 2 ? 1 : 3);
        return (c, p.Height ?? h, p.Width ?? w);
    }

    /// <summary>Writes the preprocessed sample into <paramref name="dst"/> (length C·H·W) in the output layout.</summary>
    public static void Fill(Tensor image, ImagePreprocessing p, Span<float> dst, string name)
    {
        p.Validate();
        var (h, w, cs) = ImageDims(image, name);
        var (c, oh, ow) = OutputShape(image, p, name);
        if (dst.Length != c * oh * ow) throw new ArgumentException("destination length does not match the output shape", nameof(dst));
        CheckPerChannel(p.Mean, c, "mean");
        CheckPerChannel(p.Std, c, "std");

        // 1. Channel conversion into planes [c][h·w], RGB(A) order.
        var planes = ToPlanes(image, h, w, cs, c);

        // 2. Bilinear resize of every plane when the size differs.
        if (oh != h || ow != w) planes = Resize(planes, h, w, oh, ow);

        // 3. Channel order: BGR swaps the first and third planes.
        if (p.ChannelOrder == ChannelOrder.BGR && c >= 3) (planes[0], planes[2]) = (planes[2], planes[0]);

        // 4. y = (x·scale − mean[c]) / std[c], 5. layout.
        int hw = oh * ow;
        for (int ch = 0; ch < c; ch++)
        {
            float mean = p.Mean is null ? 0f : p.Mean[p.Mean.Length == 1 ? 0 : ch];
            float std = p.Std is null ? 1f : p.Std[p.Std.Length == 1 ? 0 : ch];
            var plane = planes[ch];
            if (p.Layout == ImageLayout.NCHW)
            {
                var o = dst.Slice(ch * hw, hw);
                for (int i = 0; i < hw; i++) o[i] = (plane[i] * p.Scale - mean) / std;
            }
            else
            {
                for (int i = 0; i < hw; i++) dst[i * c + ch] = (plane[i] * p.Scale - mean) / std;
            }
        }
    }

    /// <summary>Height, width and channels of an image tensor [H, W, C] or [H, W].</summary>
    public static (int H, int W, int C) ImageDims(Tensor image, string name)
    {
        if (image is not (Tensor<byte> or Tensor<float>))
            throw new QuantSharpException($"{name}: image tensor is {DataTypes.Name(image.DataType)}; images are uint8 or float");
        if (image.Rank == 2) return (image.Shape[0], image.Shape[1], 1);
        if (image.Rank == 3 && image.Shape[2] is >= 1 and <= 4) return (image.Shape[0], image.Shape[1], image.Shape[2]);
        throw new QuantSharpException($"{name}: image shape {ShapeUtil.Format(image.Shape)} is not [H, W] or [H, W, C] with C in 1..4");
    }

    private static void CheckPerChannel(float[]? v, int c, string what)
    {
        if (v is not null && v.Length != 1 && v.Length != c)
            throw new QuantSharpException($"preprocessing {what} has {v.Length} values for {c} channels (give 1 or {c})");
    }

    private static float[][] ToPlanes(Tensor image, int h, int w, int cs, int c)
    {
        int hw = h * w;
        var planes = new float[c][];
        for (int i = 0; i < c; i++) planes[i] = new float[hw];
        byte[]? b = (image as Tensor<byte>)?.Data;
        float[]? f = (image as Tensor<float>)?.Data;
        bool hasAlpha = cs is 2 or 4;
        bool colour = cs >= 3;
        for (int i = 0; i < hw; i++)
        {
            int o = i * cs;
            float s0 = b is not null ? b[o] : f![o];
            float r = s0, g = s0, bl = s0;
            if (colour)
            {
                g = b is not null ? b[o + 1] : f![o + 1];
                bl = b is not null ? b[o + 2] : f![o + 2];
            }
            float a = hasAlpha ? (b is not null ? b[o + cs - 1] : f![o + cs - 1]) : 255f;
            if (c == 1)
            {
                // ITU-R BT.601 luma.
                planes[0][i] = colour ? 0.299f * r + 0.587f * g + 0.114f * bl : s0;
            }
            else
            {
                planes[0][i] = r;
                planes[1][i] = g;
                planes[2][i] = bl;
                if (c == 4) planes[3][i] = a;
            }
        }
        return planes;
    }

    /// <summary>
    /// Bilinear resampling with half-pixel centres: output pixel o samples the input at (o + 0.5)·in/out − 0.5,
    /// clamped to the edge (no anti-aliasing filter when shrinking).
    /// </summary>
    internal static float[][] Resize(float[][] planes, int h, int w, int oh, int ow)
    {
        var (y0, y1, wy) = Taps(h, oh);
        var (x0, x1, wx) = Taps(w, ow);
        var result = new float[planes.Length][];
        for (int ch = 0; ch < planes.Length; ch++)
        {
            var src = planes[ch];
            var dst = new float[oh * ow];
            for (int y = 0; y < oh; y++)
            {
                int r0 = y0[y] * w, r1 = y1[y] * w;
                float fy = wy[y];
                for (int x = 0; x < ow; x++)
                {
                    float top = src[r0 + x0[x]] + (src[r0 + x1[x]] - src[r0 + x0[x]]) * wx[x];
                    float bottom = src[r1 + x0[x]] + (src[r1 + x1[x]] - src[r1 + x0[x]]) * wx[x];
                    dst[y * ow + x] = top + (bottom - top) * fy;
                }
            }
            result[ch] = dst;
        }
        return result;
    }

    private static (int[] I0, int[] I1, float[] Frac) Taps(int inSize, int outSize)
    {
        var i0 = new int[outSize];
        var i1 = new int[outSize];
        var frac = new float[outSize];
        double ratio = (double)inSize / outSize;
        for (int o = 0; o < outSize; o++)
        {
            double s = Math.Clamp((o + 0.5) * ratio - 0.5, 0, inSize - 1);
            int a = (int)Math.Floor(s);
            i0[o] = a;
            i1[o] = Math.Min(a + 1, inSize - 1);
            frac[o] = (float)(s - a);
        }
        return (i0, i1, frac);
    }

    /// <summary>A tensor of <paramref name="type"/> (Float, Float16 or Double) from float values.</summary>
    internal static Tensor FromFloat(float[] f, int[] shape, DataType type)
    {
        switch (type)
        {
            case DataType.Float:
                return new Tensor<float>(f, shape);
            case DataType.Float16:
            {
                var h = new Half[f.Length];
                for (int i = 0; i < f.Length; i++) h[i] = (Half)f[i];
                return new Tensor<Half>(h, shape);
            }
            case DataType.Double:
            {
                var d = new double[f.Length];
                for (int i = 0; i < f.Length; i++) d[i] = f[i];
                return new Tensor<double>(d, shape);
            }
            default:
                throw new QuantSharpException($"preprocessing output type {DataTypes.Name(type)} is not float, float16 or double");
        }
    }
}
