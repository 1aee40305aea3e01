using QuantSharp.Tensors;

namespace QuantSharp.Data;

/// <summary>What one sample of a dataset is, which decides how samples are batched.</summary>
public enum SampleKind
{
    /// <summary>An image [H, W, C] (uint8, or float32 on the 0..255 scale); batched through <see cref="ImagePreprocessing"/>.</summary>
    Image,

    /// <summary>A tensor without a batch dimension; a batch stacks samples into a new leading dimension.</summary>
    Tensor,

    /// <summary>A tensor that already carries the model's batch dimension (ONNX test data); a batch concatenates along axis 0.</summary>
    Batched,
}

/// <summary>A sequence of samples, each an input and an optional integer label.</summary>
public interface IDataset
{
    /// <summary>The spec or file the samples come from (used in messages).</summary>
    string Name { get; }

    int Count { get; }

    SampleKind Kind { get; }

    /// <summary>Sample <paramref name="index"/> (0 ≤ index &lt; Count); the first input when there are several.</summary>
    (Tensor Input, int? Label) Get(int index);
}

/// <summary>A dataset whose samples feed several model inputs at once.</summary>
public interface IMultiInputDataset : IDataset
{
    /// <summary>Names of the inputs, in order (from the files where they carry names).</summary>
    IReadOnlyList<string> InputNames { get; }

    /// <summary>All inputs of sample <paramref name="index"/>, in <see cref="InputNames"/> order.</summary>
    IReadOnlyList<Tensor> GetInputs(int index);

    /// <summary>The label of sample <paramref name="index"/>, without reading its inputs.</summary>
    int? GetLabel(int index);
}

/// <summary>
/// Samples held in memory as one tensor whose first dimension indexes them, with optional labels.
/// For <see cref="SampleKind.Image"/> the tensor is [N, H, W, C].
/// </summary>
public sealed class ArrayDataset : IDataset
{
    private readonly int _sampleLength;

    public ArrayDataset(string name, Tensor samples, int[]? labels, SampleKind kind)
    {
        if (samples.Rank == 0) throw new QuantSharpException($"{name}: a dataset array needs a leading sample dimension, got a scalar");
        if (labels is not null && labels.Length != samples.Shape[0])
            throw new QuantSharpException($"{name}: {samples.Shape[0]} samples but {labels.Length} labels");
        if (kind == SampleKind.Image && !(samples is Tensor<byte> or Tensor<float> && samples.Rank == 4 && samples.Shape[3] is >= 1 and <= 4))
            throw new QuantSharpException($"{name}: images must be uint8 or float [N, H, W, C] with C in 1..4, got {samples}");
        Name = name;
        Samples = samples;
        Labels = labels;
        Kind = kind;
        _sampleLength = samples.Shape[0] == 0 ? 0 : samples.Length / samples.Shape[0];
    }

    public string Name { get; }
    public Tensor Samples { get; }
    public int[]? Labels { get; }
    public SampleKind Kind { get; }
    public int Count => Samples.Shape[0];

    public (Tensor Input, int? Label) Get(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), $"{Name}: sample {index} of {Count}");
        var t = Tensor.Zeros(Samples.DataType, Samples.Shape[1..]);
        Array.Copy(Samples.Buffer, (long)index * _sampleLength, t.Buffer, 0, _sampleLength);
        return (t, Labels?[index]);
    }

    /// <summary>Labels from an integer tensor [N] or [N, 1]; a value outside int32 is an error naming <paramref name="name"/>.</summary>
    public static int[] LabelsFrom(Tensor labels, string name)
    {
        if (!DataTypes.IsInteger(labels.DataType) && labels.DataType != DataType.Bool)
            throw new QuantSharpException($"{name}: labels are {DataTypes.Name(labels.DataType)}, not integers");
        if (!(labels.Rank == 1 || (labels.Rank == 2 && labels.Shape[1] == 1)))
            throw new QuantSharpException($"{name}: labels have shape {ShapeUtil.Format(labels.Shape)}, not [N] or [N, 1]");
        var r = new int[labels.Shape[0]];
        for (int i = 0; i < r.Length; i++)
        {
            double v = labels.GetDouble(i);
            if (v < int.MinValue || v > int.MaxValue) throw new QuantSharpException($"{name}: label {v} at {i} does not fit int32");
            r[i] = (int)v;
        }
        return r;
    }
}

/// <summary>
/// PNG files in a directory. Files directly in it have no label; files in subfolders are labelled by the folder:
/// its number when every subfolder is named by a non-negative integer, otherwise its index among the subfolder
/// names sorted ordinally (see <see cref="ClassNames"/>). A single .png path is a one-image dataset.
/// </summary>
public sealed class ImageFolderDataset : IDataset
{
    private readonly List<(string Path, int? Label)> _files = [];

    public ImageFolderDataset(string path)
    {
        Name = path;
        if (File.Exists(path))
        {
            _files.Add((path, null));
            ClassNames = [];
            return;
        }
        if (!Directory.Exists(path)) throw new QuantSharpException($"{path}: image directory not found");
        foreach (var f in PngFiles(path)) _files.Add((f, null));
        var classDirs = Directory.GetDirectories(path).Where(d => PngFiles(d).Count > 0)
            .OrderBy(d => Path.GetFileName(d), StringComparer.Ordinal).ToList();
        var names = classDirs.Select(d => Path.GetFileName(d)!).ToList();
        bool numeric = names.Count > 0 && names.All(n => int.TryParse(n, System.Globalization.NumberStyles.None,
            System.Globalization.CultureInfo.InvariantCulture, out _));
        for (int i = 0; i < classDirs.Count; i++)
        {
            int label = numeric ? int.Parse(names[i], System.Globalization.CultureInfo.InvariantCulture) : i;
            foreach (var f in PngFiles(classDirs[i])) _files.Add((f, label));
        }
        ClassNames = names;
        if (_files.Count == 0) throw new QuantSharpException($"{path}: no .png files in the directory or its subfolders");
    }

    public string Name { get; }
    public int Count => _files.Count;
    public SampleKind Kind => SampleKind.Image;

    /// <summary>Subfolder names in label order (empty when no subfolders hold images).</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The file behind sample <paramref name="index"/>.</summary>
    public string FileAt(int index) => _files[index].Path;

    public (Tensor Input, int? Label) Get(int index)
    {
        var (file, label) = _files[index];
        return (PngDecoder.Decode(file).ToTensor(), label);
    }

    private static List<string> PngFiles(string dir) =>
        Directory.GetFiles(dir).Where(f => f.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
            .OrderBy(f => f, StringComparer.Ordinal).ToList();
}
