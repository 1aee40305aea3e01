using QuantSharp.Tensors;

namespace QuantSharp.Data;

/// <summary>Where <see cref="DatasetSpec.Open"/> looks for installed data sets, and how relative paths resolve.</summary>
public sealed record DatasetSpecOptions
{
    /// <summary>Directory of Debian's dataset-fashion-mnist package.</summary>
    public string FashionMnistDirectory { get; init; } = "/usr/share/datasets/fashion-mnist";

    /// <summary>Base for relative paths in a spec; null means the current directory.</summary>
    public string? BaseDirectory { get; init; }
}

/// <summary>
/// Opens a dataset from a command-line spec "SCHEME:ARGUMENT":
/// <list type="bullet">
/// <item><c>fashion-mnist:test</c>, <c>fashion-mnist:train</c>: Fashion-MNIST from Debian's dataset-fashion-mnist.</item>
/// <item><c>mnist:DIR</c>, <c>mnist:DIR:train</c>: the t10k-* (or train-*) images-idx3-ubyte and labels-idx1-ubyte
/// files in DIR, gzip-compressed (.gz) or not; labels are optional.</item>
/// <item><c>idx:IMAGES[,LABELS]</c>: any IDX file; a uint8 [N, H, W] file is images, any other is tensor samples along axis 0.</item>
/// <item><c>npz:FILE[:INPUT[,LABEL]]</c>: inputs from the array named INPUT, or else the first of x, images, inputs, data
/// (or the only array); labels from LABEL, or else the first of y, labels, targets, when present. Samples are
/// slices along axis 0, as tensors (not images).</item>
/// <item><c>pb:DIR</c>: ONNX test data, either one test_data_set_N folder or a folder of them; each set is one
/// sample of input_K.pb tensors that already carry the batch dimension.</item>
/// <item><c>cifar10:FILE</c>, <c>cifar10:DIR</c>, <c>cifar10:DIR:train</c>: CIFAR-10 binary batches (DIR means
/// test_batch.bin, or data_batch_1..5.bin with :train).</item>
/// <item><c>images:DIR</c> or <c>images:FILE.png</c>: PNG images, labelled by subfolder (see <see cref="ImageFolderDataset"/>).</item>
/// </list>
/// An unknown scheme or a missing file is a <see cref="QuantSharpException"/> naming it.
/// </summary>
public static class DatasetSpec
{
    public static IReadOnlyList<string> Schemes { get; } = ["fashion-mnist", "mnist", "idx", "npz", "pb", "cifar10", "images"];

    /// <summary>Array names an npz spec takes the inputs from, in order of preference.</summary>
    public static IReadOnlyList<string> NpzInputKeys { get; } = ["x", "images", "inputs", "data"];

    /// <summary>Array names an npz spec takes the labels from, in order of preference.</summary>
    public static IReadOnlyList<string> NpzLabelKeys { get; } = ["y", "labels", "targets"];

    public static IDataset Open(string spec, DatasetSpecOptions? options = null)
    {
        options ??= new DatasetSpecOptions();
        int colon = spec.IndexOf(':');
        if (colon <= 0)
            throw new QuantSharpException($"dataset spec '{spec}' is not SCHEME:ARGUMENT (schemes: {string.Join(", ", Schemes)})");
        string scheme = spec[..colon].ToLowerInvariant();
        string arg = spec[(colon + 1)..];
        string Resolve(string p) => options.BaseDirectory is null || Path.IsPathRooted(p) ? p : Path.Combine(options.BaseDirectory, p);
        return scheme switch
        {
            "fashion-mnist" => OpenFashionMnist(arg, options.FashionMnistDirectory, spec),
            "mnist" => OpenMnist(arg, Resolve, spec),
            "idx" => OpenIdx(arg, Resolve, spec),
            "npz" => OpenNpz(arg, Resolve, spec),
            "pb" => OpenPb(Resolve(Required(arg, spec)), spec),
            "cifar10" => OpenCifar10(arg, Resolve, spec),
            "images" => new ImageFolderDataset(Resolve(Required(arg, spec))),
            _ => throw new QuantSharpException($"dataset spec '{spec}': unknown scheme '{scheme}' (known: {string.Join(", ", Schemes)})"),
        };
    }

    /// <summary>An IDX dataset: images (uint8 [N, H, W] → image samples [H, W, 1]) or any IDX tensor, with optional uint8 labels.</summary>
    public static ArrayDataset OpenIdx(string images, string? labels, string name)
    {
        var x = IdxReader.Read(images);
        int[]? y = null;
        if (labels is not null)
        {
            var l = IdxReader.ReadLabels(labels);
            y = ArrayDataset.LabelsFrom(l, labels);
            if (y.Length != x.Shape[0]) throw new QuantSharpException($"{labels}: {y.Length} labels for the {x.Shape[0]} samples of {images}");
        }
        if (x is Tensor<byte> b && x.Rank == 3)
            return new ArrayDataset(name, new Tensor<byte>(b.Data, [x.Shape[0], x.Shape[1], x.Shape[2], 1]), y, SampleKind.Image);
        return new ArrayDataset(name, x, y, SampleKind.Tensor);
    }

    /// <summary>CIFAR-10 batches as images [32, 32, 3] (HWC, RGB) with labels 0..9.</summary>
    public static ArrayDataset OpenCifar10(string name, params string[] files)
    {
        var (chw, labels) = Cifar10Reader.Read(files);
        int n = chw.Shape[0];
        const int plane = Cifar10Reader.Side * Cifar10Reader.Side;
        var hwc = new byte[chw.Length];
        var src = chw.Data;
        for (int i = 0; i < n; i++)
        {
            int o = i * Cifar10Reader.ImageBytes;
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < plane; p++) hwc[o + p * 3 + c] = src[o + c * plane + p];
        }
        return new ArrayDataset(name, new Tensor<byte>(hwc, [n, Cifar10Reader.Side, Cifar10Reader.Side, 3]),
            ArrayDataset.LabelsFrom(labels, name), SampleKind.Image);
    }

    private static string Required(string arg, string spec) =>
        arg.Length > 0 ? arg : throw new QuantSharpException($"dataset spec '{spec}' needs a path after the scheme");

    private static (string Path, string? Split) SplitSuffix(string arg)
    {
        foreach (string s in new[] { "train", "test" })
            if (arg.EndsWith(":" + s, StringComparison.OrdinalIgnoreCase)) return (arg[..^(s.Length + 1)], s);
        return (arg, null);
    }

    private static IDataset OpenFashionMnist(string arg, string dir, string spec)
    {
        string split = arg.Length == 0 ? "test" : arg.ToLowerInvariant();
        if (split is not ("test" or "train")) throw new QuantSharpException($"dataset spec '{spec}': split '{arg}' is not test or train");
        if (!Directory.Exists(dir))
            throw new QuantSharpException($"dataset spec '{spec}': {dir} not found (install Debian's dataset-fashion-mnist)");
        return OpenMnistDirectory(dir, split, spec);
    }

    private static IDataset OpenMnist(string arg, Func<string, string> resolve, string spec)
    {
        var (dir, split) = SplitSuffix(Required(arg, spec));
        dir = resolve(dir);
        if (!Directory.Exists(dir)) throw new QuantSharpException($"dataset spec '{spec}': directory {dir} not found");
        return OpenMnistDirectory(dir, split ?? "test", spec);
    }

    private static IDataset OpenMnistDirectory(string dir, string split, string spec)
    {
        string prefix = split == "train" ? "train" : "t10k";
        string images = FindIdx(dir, prefix, "images", "idx3")
            ?? throw new QuantSharpException($"dataset spec '{spec}': no {prefix}-images-idx3-ubyte[.gz] in {dir}");
        string? labels = FindIdx(dir, prefix, "labels", "idx1");
        return OpenIdx(images, labels, spec);
    }

    /// <summary>MNIST files are named "t10k-images-idx3-ubyte" or "t10k-images.idx3-ubyte", optionally with ".gz".</summary>
    private static string? FindIdx(string dir, string prefix, string what, string idx)
    {
        foreach (string sep in new[] { "-", "." })
            foreach (string ext in new[] { "", ".gz" })
            {
                string p = Path.Combine(dir, $"{prefix}-{what}{sep}{idx}-ubyte{ext}");
                if (File.Exists(p)) return p;
            }
        return null;
    }

    private static IDataset OpenIdx(string arg, Func<string, string> resolve, string spec)
    {
        var parts = Required(arg, spec).Split(',');
        if (parts.Length > 2) throw new QuantSharpException($"dataset spec '{spec}' is not idx:IMAGES[,LABELS]");
        return OpenIdx(resolve(parts[0]), parts.Length == 2 ? resolve(parts[1]) : null, spec);
    }

    private static IDataset OpenNpz(string arg, Func<string, string> resolve, string spec)
    {
        string file = resolve(Required(arg, spec));
        string? inputKey = null, labelKey = null;
        if (!File.Exists(file))
        {
            int c = arg.LastIndexOf(':');
            if (c > 0)
            {
                file = resolve(arg[..c]);
                var keys = arg[(c + 1)..].Split(',');
                if (keys.Length > 2 || keys[0].Length == 0) throw new QuantSharpException($"dataset spec '{spec}' is not npz:FILE[:INPUT[,LABEL]]");
                inputKey = keys[0];
                labelKey = keys.Length == 2 ? keys[1] : null;
            }
        }
        using var npz = NpzArchive.Open(file);
        inputKey ??= NpzInputKeys.FirstOrDefault(npz.Contains)
            ?? (npz.Names.Count == 1 ? npz.Names[0]
                : throw new QuantSharpException(
                    $"{file}: no input array named {string.Join("/", NpzInputKeys)} (it has: {string.Join(", ", npz.Names)}); name one as npz:FILE:INPUT"));
        labelKey ??= NpzLabelKeys.FirstOrDefault(npz.Contains);
        var x = npz.Read(inputKey);
        int[]? y = null;
        if (labelKey is not null)
        {
            y = ArrayDataset.LabelsFrom(npz.Read(labelKey), $"{file}:{labelKey}");
            if (x.Rank == 0 || y.Length != x.Shape[0])
                throw new QuantSharpException($"{file}: {y.Length} labels in '{labelKey}' for {(x.Rank == 0 ? 0 : x.Shape[0])} samples in '{inputKey}'");
        }
        if (x.Rank == 0) throw new QuantSharpException($"{file}:{inputKey}: a scalar has no sample dimension");
        return new ArrayDataset(spec, x, y, SampleKind.Tensor);
    }

    private static IDataset OpenPb(string dir, string spec)
    {
        if (!Directory.Exists(dir)) throw new QuantSharpException($"dataset spec '{spec}': directory {dir} not found");
        return new TensorProtoDataset(dir);
    }

    private static IDataset OpenCifar10(string arg, Func<string, string> resolve, string spec)
    {
        var (path, split) = SplitSuffix(Required(arg, spec));
        path = resolve(path);
        if (File.Exists(path))
        {
            if (split is not null) throw new QuantSharpException($"dataset spec '{spec}': a split applies to a directory, not a file");
            return OpenCifar10(spec, path);
        }
        if (!Directory.Exists(path)) throw new QuantSharpException($"dataset spec '{spec}': {path} not found");
        string[] files = split == "train"
            ? Enumerable.Range(1, 5).Select(i => Path.Combine(path, $"data_batch_{i}.bin")).ToArray()
            : [Path.Combine(path, "test_batch.bin")];
        foreach (var f in files)
            if (!File.Exists(f)) throw new QuantSharpException($"dataset spec '{spec}': {f} not found");
        return OpenCifar10(spec, files);
    }
}
