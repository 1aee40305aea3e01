using System.Formats.Tar;
using System.IO.Compression;

namespace QuantSharp.Tests.TestData;

/// <summary>One ONNX operator conformance test: a folder with model.onnx and test_data_set_*/ folders.</summary>
public sealed record ConformanceCase(string Set, string Name, string Dir)
{
    public string ModelPath => Path.Combine(Dir, "model.onnx");

    /// <summary>The test_data_set_N folders in numeric order, each with its input_*.pb and output_*.pb files.</summary>
    public IReadOnlyList<ConformanceDataSet> DataSets()
    {
        var sets = new List<ConformanceDataSet>();
        foreach (var d in Directory.GetDirectories(Dir, "test_data_set_*").OrderBy(NumericSuffix))
            sets.Add(new ConformanceDataSet(d, PbFiles(d, "input_"), PbFiles(d, "output_")));
        return sets;
    }

    private static string[] PbFiles(string dir, string prefix) =>
        Directory.GetFiles(dir, prefix + "*.pb").OrderBy(NumericSuffix).ToArray();

    /// <summary>The N of "…_N" or "…_N.pb", so that input_10 sorts after input_9.</summary>
    private static int NumericSuffix(string path)
    {
        var name = Path.GetFileNameWithoutExtension(path);
        int us = name.LastIndexOf('_');
        return us >= 0 && int.TryParse(name.AsSpan(us + 1), out int n) ? n : int.MaxValue;
    }

    public override string ToString() => $"{Set}/{Name}";
}

/// <summary>One test_data_set_N folder: input and output TensorProto files in index order.</summary>
public sealed record ConformanceDataSet(string Dir, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs);

/// <summary>
/// The ONNX node conformance tests: three archives in the shared folder (extracted once per machine into a cache
/// under the temp folder) and Debian's libonnx-testdata when installed.
/// </summary>
public static class ConformanceData
{
    public const string Onnx122 = "onnx-1.22";
    public const string Onnx112 = "onnx-1.12";
    public const string Onnx16 = "onnx-1.6";
    public const string LibOnnx = "libonnx-testdata";

    /// <summary>Every set name, newest ONNX release first.</summary>
    public static IReadOnlyList<string> Sets { get; } = [Onnx122, Onnx112, Onnx16, LibOnnx];

    private static readonly Dictionary<string, string> Archives = new(StringComparer.Ordinal)
    {
        [Onnx122] = "onnx-node-tests-v1.22.0-selected.tar.gz",
        [Onnx112] = "onnx-node-tests-v1.12.0-opset17-selected.tar.gz",
        [Onnx16] = "onnx-node-tests-v1.6.0-opset11-selected.tar.gz",
    };

    /// <summary>Path of the node test folders inside each archive.</summary>
    private static readonly string[] NodeDirInArchive = ["onnx", "backend", "test", "data", "node"];

    private static readonly object Gate = new();
    private static readonly Dictionary<string, string?> Roots = new(StringComparer.Ordinal);

    /// <summary>Folder under the temp folder where the archives are extracted (one sub-folder per archive).</summary>
    public static string CacheRoot => Path.Combine(Path.GetTempPath(), "quantsharp-conformance");

    /// <summary>
    /// The folder holding a set's test case folders, extracting the archive first if needed; null for
    /// libonnx-testdata when the package is not installed. A missing archive is an error.
    /// </summary>
    public static string? SetRoot(string set)
    {
        lock (Gate)
        {
            if (Roots.TryGetValue(set, out var cached)) return cached;
            string? root;
            if (set == LibOnnx) root = Directory.Exists(TestPaths.LibOnnxTestData) ? TestPaths.LibOnnxTestData : null;
            else if (Archives.TryGetValue(set, out var archive)) root = Path.Combine([ExtractOnce(archive), .. NodeDirInArchive]);
            else throw new ArgumentException($"unknown conformance set '{set}'; known: {string.Join(", ", Sets)}", nameof(set));
            Roots[set] = root;
            return root;
        }
    }

    /// <summary>Test cases of one set in name order (empty when the set is unavailable).</summary>
    public static IReadOnlyList<ConformanceCase> Cases(string set)
    {
        var root = SetRoot(set);
        if (root is null || !Directory.Exists(root)) return [];
        return Directory.GetDirectories(root)
            .Where(d => File.Exists(Path.Combine(d, "model.onnx")))
            .Select(d => new ConformanceCase(set, Path.GetFileName(d), d))
            .OrderBy(c => c.Name, StringComparer.Ordinal)
            .ToArray();
    }

    /// <summary>Test cases of every available set.</summary>
    public static IReadOnlyList<ConformanceCase> Cases() => Sets.SelectMany(Cases).ToArray();

    /// <summary>One named case ("test_add") of a set, or null when absent.</summary>
    public static ConformanceCase? Find(string set, string name) =>
        Cases(set).FirstOrDefault(c => c.Name == name);

    /// <summary>
    /// Extracts an archive into CacheRoot/&lt;archive name&gt;/ unless already there. Extraction goes to a private
    /// temporary folder that is then renamed into place; a rename is atomic, so concurrent test processes either
    /// see the complete folder or none, and the loser of a race discards its copy.
    /// </summary>
    private static string ExtractOnce(string archiveName)
    {
        var archive = TestPaths.SharedFile("onnx-conformance", archiveName);
        var dest = Path.Combine(CacheRoot, archiveName);
        if (Directory.Exists(dest)) return dest;
        if (!File.Exists(archive)) throw new FileNotFoundException($"conformance archive not found: {archive}", archive);
        Directory.CreateDirectory(CacheRoot);
        var tmp = Path.Combine(CacheRoot, $".{archiveName}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(tmp);
        try
        {
            using (var file = File.OpenRead(archive))
            using (var gz = new GZipStream(file, CompressionMode.Decompress))
                TarFile.ExtractToDirectory(gz, tmp, overwriteFiles: false);
            try
            {
                Directory.Move(tmp, dest);
            }
            catch (IOException) when (Directory.Exists(dest))
            {
                // Another process finished first; its copy is identical.
            }
        }
        finally
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        }
        return dest;
    }
}
