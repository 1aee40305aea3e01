using System.IO.Compression;
using QuantSharp.Tensors;

namespace QuantSharp.Data;

/// <summary>
/// NumPy .npz files: a zip archive holding one .npy file per array, named "NAME.npy". Entries may be stored
/// (np.savez) or deflated (np.savez_compressed); zip64 archives are read too.
/// </summary>
public static class Npz
{
    /// <summary>Every array in the file, in archive order; the key is the entry name without ".npy".</summary>
    public static IReadOnlyList<(string Name, Tensor Tensor)> Read(string path)
    {
        using var archive = NpzArchive.Open(path);
        var result = new List<(string, Tensor)>(archive.Names.Count);
        foreach (string n in archive.Names) result.Add((n, archive.Read(n)));
        return result;
    }

    /// <summary>
    /// Writes the arrays atomically: into a temporary file in the same directory that is then renamed over
    /// <paramref name="path"/>. <paramref name="compress"/> deflates entries (like np.savez_compressed);
    /// otherwise they are stored (like np.savez). Names must be unique and non-empty.
    /// </summary>
    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> arrays, bool compress = false)
    {
        var list = arrays.ToList();
        CheckNames(list, path);
        DataFile.WriteAtomically(path, s => Write(s, list, compress, path));
    }

    /// <summary>Writes the archive to <paramref name="stream"/>; <paramref name="name"/> is used in error messages.</summary>
    public static void Write(Stream stream, IEnumerable<(string Name, Tensor Tensor)> arrays, bool compress, string name)
    {
        var list = arrays.ToList();
        CheckNames(list, name);
        using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
        foreach (var (n, t) in list)
        {
            var entry = zip.CreateEntry(n + ".npy", compress ? CompressionLevel.Optimal : CompressionLevel.NoCompression);
            using var es = entry.Open();
            Npy.Write(es, t, $"{name}:{n}");
        }
    }

    private static void CheckNames(List<(string Name, Tensor Tensor)> list, string file)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (n, _) in list)
        {
            if (string.IsNullOrEmpty(n)) throw new QuantSharpException($"{file}: an .npz array needs a non-empty name");
            if (!seen.Add(n)) throw new QuantSharpException($"{file}: .npz array name '{n}' is used twice");
        }
    }
}

/// <summary>An open .npz file whose arrays are read one at a time, on demand.</summary>
public sealed class NpzArchive : IDisposable
{
    private readonly FileStream _file;
    private readonly ZipArchive _zip;
    private readonly Dictionary<string, ZipArchiveEntry> _entries = new(StringComparer.Ordinal);
    private readonly List<string> _names = [];

    private NpzArchive(string path, FileStream file, ZipArchive zip)
    {
        Path = path;
        _file = file;
        _zip = zip;
        foreach (var e in zip.Entries)
        {
            if (e.FullName.EndsWith('/')) continue;
            // np.load strips ".npy" from entry names; entries without it keep their full name.
            string n = e.FullName.EndsWith(".npy", StringComparison.Ordinal) ? e.FullName[..^4] : e.FullName;
            if (_entries.TryAdd(n, e)) _names.Add(n);
        }
    }

    public string Path { get; }

    /// <summary>Array names in archive order.</summary>
    public IReadOnlyList<string> Names => _names;

    public bool Contains(string name) => _entries.ContainsKey(name);

    public static NpzArchive Open(string path)
    {
        if (!File.Exists(path)) throw new QuantSharpException($"{path}: file not found");
        FileStream? fs = null;
        try
        {
            fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            var zip = new ZipArchive(fs, ZipArchiveMode.Read);
            return new NpzArchive(path, fs, zip);
        }
        catch (InvalidDataException e)
        {
            fs?.Dispose();
            throw new QuantSharpException($"{path}: not a valid .npz (zip) file ({e.Message})", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            fs?.Dispose();
            throw new QuantSharpException($"{path}: cannot read file ({e.Message})", e);
        }
    }

    /// <summary>Reads the array called <paramref name="name"/> (without ".npy").</summary>
    public Tensor Read(string name)
    {
        if (!_entries.TryGetValue(name, out var entry))
            throw new QuantSharpException($"{Path}: no array '{name}' (it has: {string.Join(", ", _names)})");
        try
        {
            using var s = entry.Open();
            return Npy.Read(s, $"{Path}:{name}", entry.Length);
        }
        catch (InvalidDataException e)
        {
            throw new QuantSharpException($"{Path}:{name}: corrupt zip entry ({e.Message})", e);
        }
        catch (IOException e)
        {
            throw new QuantSharpException($"{Path}:{name}: cannot read zip entry ({e.Message})", e);
        }
    }

    public void Dispose()
    {
        _zip.Dispose();
        _file.Dispose();
    }
}
