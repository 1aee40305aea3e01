namespace QuantSharp.Tests;

/// <summary>Locations of test data: the repository, the shared models and data beside it, Debian's packages.</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>`../shared` beside the repository (override with QUANTSHARP_SHARED).</summary>
    public static string Shared { get; } =
        Environment.GetEnvironmentVariable("QUANTSHARP_SHARED") is { Length: > 0 } s ? s : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    public static string SharedFile(params string[] parts) => Path.Combine([Shared, .. parts]);

    /// <summary>Debian's libonnx-testdata operator tests.</summary>
    public const string LibOnnxTestData = "/usr/share/libonnx-testdata/data/node";

    /// <summary>Debian's dataset-fashion-mnist.</summary>
    public const string FashionMnist = "/usr/share/datasets/fashion-mnist";

    /// <summary>A fresh empty directory under the system temp folder.</summary>
    public static string NewTempDir(string prefix = "qs")
    {
        var d = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(d);
        return d;
    }

    private static string FindRepoRoot()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "QuantSharp.slnx"))) d = d.Parent;
        return d?.FullName ?? throw new InvalidOperationException("QuantSharp.slnx not found above the test assembly");
    }
}
