using System.Globalization;
using QuantSharp.Onnx;
using QuantSharp.Tensors;

namespace QuantSharp.Data;

/// <summary>
/// ONNX test data: folders test_data_set_N holding input_K.pb (and output_K.pb) TensorProto files. The path is either
/// one such folder or a folder containing them (a model's test folder). Each set is one sample; its tensors already
/// carry the model's batch dimension (<see cref="SampleKind.Batched"/>). Sets and inputs are ordered by their number.
/// </summary>
public sealed class TensorProtoDataset : IMultiInputDataset
{
    private readonly List<string> _sets;

    public TensorProtoDataset(string path)
    {
        Name = path;
        if (!Directory.Exists(path)) throw new QuantSharpException($"{path}: ONNX test data directory not found");
        _sets = NumberedFiles(path, "input_", ".pb").Count > 0
            ? [path]
            : Directory.GetDirectories(path)
                .Select(d => (Dir: d, N: NumberAfter(Path.GetFileName(d), "test_data_set_", "")))
                .Where(t => t.N >= 0 && NumberedFiles(t.Dir, "input_", ".pb").Count > 0)
                .OrderBy(t => t.N).Select(t => t.Dir).ToList();
        if (_sets.Count == 0)
            throw new QuantSharpException($"{path}: no input_K.pb files and no test_data_set_N folders holding them");
        int inputs = NumberedFiles(_sets[0], "input_", ".pb").Count;
        foreach (var s in _sets)
        {
            var files = NumberedFiles(s, "input_", ".pb");
            if (files.Count != inputs)
                throw new QuantSharpException($"{s}: {files.Count} input files, but {_sets[0]} has {inputs}");
            for (int k = 0; k < files.Count; k++)
                if (files[k].N != k) throw new QuantSharpException($"{s}: input_{k}.pb is missing");
        }
        var first = NumberedFiles(_sets[0], "input_", ".pb")
            .Select(f => TensorProtoIO.ReadFile(f.Path).Name is { Length: > 0 } n ? n : Path.GetFileNameWithoutExtension(f.Path)).ToList();
        InputNames = first;
    }

    public string Name { get; }
    public int Count => _sets.Count;
    public SampleKind Kind => SampleKind.Batched;
    public IReadOnlyList<string> InputNames { get; }

    /// <summary>The folder of sample <paramref name="index"/>.</summary>
    public string SetDirectory(int index) => _sets[index];

    public (Tensor Input, int? Label) Get(int index) => (TensorProtoIO.ReadFile(InputFiles(index)[0]).Tensor, null);

    /// <summary>ONNX test data has no labels.</summary>
    public int? GetLabel(int index) => null;

    public IReadOnlyList<Tensor> GetInputs(int index) => InputFiles(index).Select(f => TensorProtoIO.ReadFile(f).Tensor).ToList();

    /// <summary>The expected outputs (output_K.pb, by K) of sample <paramref name="index"/>, with their names; empty when the set has none.</summary>
    public IReadOnlyList<(string Name, Tensor Tensor)> GetExpectedOutputs(int index) =>
        NumberedFiles(_sets[index], "output_", ".pb").Select(f => TensorProtoIO.ReadFile(f.Path)).ToList();

    private List<string> InputFiles(int index)
    {
        if ((uint)index >= (uint)_sets.Count) throw new ArgumentOutOfRangeException(nameof(index), $"{Name}: sample {index} of {Count}");
        return NumberedFiles(_sets[index], "input_", ".pb").Select(f => f.Path).ToList();
    }

    private static List<(string Path, int N)> NumberedFiles(string dir, string prefix, string suffix) =>
        Directory.GetFiles(dir).Select(f => (Path: f, N: NumberAfter(Path.GetFileName(f), prefix, suffix)))
            .Where(t => t.N >= 0).OrderBy(t => t.N).ToList();

    /// <summary>The integer between <paramref name="prefix"/> and <paramref name="suffix"/> in a file name, or −1.</summary>
    private static int NumberAfter(string name, string prefix, string suffix)
    {
        if (!name.StartsWith(prefix, StringComparison.Ordinal) || !name.EndsWith(suffix, StringComparison.Ordinal)) return -1;
        var digits = name.AsSpan(prefix.Length, name.Length - prefix.Length - suffix.Length);
        return digits.Length > 0 && int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : -1;
    }
}
