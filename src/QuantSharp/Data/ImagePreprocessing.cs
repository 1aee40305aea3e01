using System.Globalization;
using QuantSharp.Tensors;

namespace QuantSharp.Data;

/// <summary>Memory layout of a batch of images.</summary>
public enum ImageLayout
{
    /// <summary>[N, C, H, W] (ONNX and PyTorch convention).</summary>
    NCHW,

    /// <summary>[N, H, W, C] (TensorFlow convention).</summary>
    NHWC,
}

/// <summary>Order of the colour channels in the model's input.</summary>
public enum ChannelOrder
{
    RGB,
    BGR,
}

/// <summary>
/// How images (uint8 or float32 [H, W, C] on the 0..255 scale, C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) become a
/// model input. Steps, in order: channel conversion to <see cref="Channels"/> (gray = 0.299·R + 0.587·G + 0.114·B,
/// ITU-R BT.601; alpha is dropped unless 4 channels are asked for), bilinear resize to
/// <see cref="Height"/>×<see cref="Width"/> when the size differs, channel order, then y = (x·Scale − Mean[c]) / Std[c],
/// then the layout and the element type. Mean and Std are given in the model's channel order (after the RGB/BGR
/// swap) and hold one value or one per channel.
/// </summary>
public sealed record ImagePreprocessing
{
    /// <summary>Multiplies the 0..255 pixel values first (1/255 maps them to 0..1).</summary>
    public float Scale { get; init; } = 1f;

    /// <summary>Subtracted after scaling; one value for all channels or one per channel. Null means 0.</summary>
    public float[]? Mean { get; init; }

    /// <summary>Divides after the mean is subtracted; one value or one per channel. Null means 1.</summary>
    public float[]? Std { get; init; }

    public ImageLayout Layout { get; init; } = ImageLayout.NCHW;

    public ChannelOrder ChannelOrder { get; init; } = ChannelOrder.RGB;

    /// <summary>Output channels: 1 (grayscale), 3 (colour) or 4 (colour and alpha); null keeps 1 for gray images and 3 for colour.</summary>
    public int? Channels { get; init; }

    /// <summary>Output height; null keeps the image's. Images of another size are resized bilinearly.</summary>
    public int? Height { get; init; }

    /// <summary>Output width; null keeps the image's.</summary>
    public int? Width { get; init; }

    /// <summary>Element type of the result: Float (default), Float16 or Double.</summary>
    public DataType OutputType { get; init; } = DataType.Float;

    /// <summary>
    /// Fills channels, height and width from a model input shape (rank 4 in <paramref name="layout"/>, or rank 3
    /// without the batch dimension); dimensions that are unknown (≤ 0) are left unset.
    /// </summary>
    public ImagePreprocessing ForInputShape(IReadOnlyList<int> shape, ImageLayout layout)
    {
        int off = shape.Count switch
        {
            4 => 1,
            3 => 0,
            _ => throw new QuantSharpException($"model input shape [{string.Join(",", shape)}] is not an image shape (rank 3 or 4)"),
        };
        int c = layout == ImageLayout.NCHW ? shape[off] : shape[off + 2];
        int hh = layout == ImageLayout.NCHW ? shape[off + 1] : shape[off];
        int ww = layout == ImageLayout.NCHW ? shape[off + 2] : shape[off + 1];
        if (c > 0 && c is not (1 or 3 or 4))
            throw new QuantSharpException($"model input shape [{string.Join(",", shape)}] has {c} channels in {layout}; images give 1, 3 or 4");
        return this with
        {
            Layout = layout,
            Channels = c > 0 ? c : Channels,
            Height = hh > 0 ? hh : Height,
            Width = ww > 0 ? ww : Width,
        };
    }

    /// <summary>
    /// Parses "key=value" pairs separated by commas: scale=1/255 (a number or a fraction), mean=0.485:0.456:0.406,
    /// std=0.229:0.224:0.225, layout=nchw|nhwc, order=rgb|bgr, channels=1|3|4, size=HxW (or one number for both),
    /// dtype=float|float16|double. An empty string gives the defaults.
    /// </summary>
    public static ImagePreprocessing Parse(string text)
    {
        var p = new ImagePreprocessing();
        foreach (string part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = part.IndexOf('=');
            if (eq <= 0) throw new QuantSharpException($"preprocessing option '{part}' is not key=value");
            string key = part[..eq].Trim().ToLowerInvariant(), value = part[(eq + 1)..].Trim();
            p = key switch
            {
                "scale" => p with { Scale = ParseNumber(value, key) },
                "mean" => p with { Mean = value.Split(':').Select(v => ParseNumber(v, key)).ToArray() },
                "std" => p with { Std = value.Split(':').Select(v => ParseNumber(v, key)).ToArray() },
                "layout" => p with
                {
                    Layout = value.ToLowerInvariant() switch
                    {
                        "nchw" => ImageLayout.NCHW,
                        "nhwc" => ImageLayout.NHWC,
                        _ => throw new QuantSharpException($"preprocessing layout '{value}' is not nchw or nhwc"),
                    },
                },
                "order" => p with
                {
                    ChannelOrder = value.ToLowerInvariant() switch
                    {
                        "rgb" => ChannelOrder.RGB,
                        "bgr" => ChannelOrder.BGR,
                        _ => throw new QuantSharpException($"preprocessing channel order '{value}' is not rgb or bgr"),
                    },
                },
                "channels" => p with { Channels = ParseInt(value, key) },
                "size" => ParseSize(p, value),
                "dtype" => p with
                {
                    OutputType = value.ToLowerInvariant() switch
                    {
                        "float" or "float32" => DataType.Float,
                        "float16" or "half" => DataType.Float16,
                        "double" or "float64" => DataType.Double,
                        _ => throw new QuantSharpException($"preprocessing dtype '{value}' is not float, float16 or double"),
                    },
                },
                _ => throw new QuantSharpException($"unknown preprocessing option '{key}'"),
            };
        }
        p.Validate();
        return p;
    }

    /// <summary>Throws a <see cref="QuantSharpException"/> for an option value that cannot work.</summary>
    public void Validate()
    {
        if (!float.IsFinite(Scale)) throw new QuantSharpException($"preprocessing scale {Scale} is not finite");
        if (Channels is { } c && c is not (1 or 3 or 4)) throw new QuantSharpException($"preprocessing channels {c} is not 1, 3 or 4");
        if (Height is <= 0 || Width is <= 0) throw new QuantSharpException($"preprocessing size {Height}x{Width} is not positive");
        if (Mean is { Length: 0 }) throw new QuantSharpException("preprocessing mean is empty");
        if (Std is { Length: 0 }) throw new QuantSharpException("preprocessing std is empty");
        if (Std is not null && Std.Any(s => s == 0 || !float.IsFinite(s))) throw new QuantSharpException("preprocessing std has a zero or non-finite value");
        if (OutputType is not (DataType.Float or DataType.Float16 or DataType.Double))
            throw new QuantSharpException($"preprocessing output type {DataTypes.Name(OutputType)} is not float, float16 or double");
    }

    /// <summary>Whether the value transform y = (x·Scale − Mean) / Std is the identity.</summary>
    public bool IsIdentityTransform =>
        Scale == 1f && (Mean is null || Mean.All(m => m == 0)) && (Std is null || Std.All(s => s == 1));

    private static ImagePreprocessing ParseSize(ImagePreprocessing p, string value)
    {
        var parts = value.ToLowerInvariant().Split('x');
        return parts.Length switch
        {
            1 => p with { Height = ParseInt(parts[0], "size"), Width = ParseInt(parts[0], "size") },
            2 => p with { Height = ParseInt(parts[0], "size"), Width = ParseInt(parts[1], "size") },
            _ => throw new QuantSharpException($"preprocessing size '{value}' is not HxW"),
        };
    }

    private static int ParseInt(string s, string key) =>
        int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v)
            ? v
            : throw new QuantSharpException($"preprocessing {key} '{s}' is not an integer");

    private static float ParseNumber(string s, string key)
    {
        s = s.Trim();
        int slash = s.IndexOf('/');
        if (slash > 0)
            return ParseNumber(s[..slash], key) / ParseNumber(s[(slash + 1)..], key);
        return float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out float v)
            ? v
            : throw new QuantSharpException($"preprocessing {key} '{s}' is not a number");
    }
}
