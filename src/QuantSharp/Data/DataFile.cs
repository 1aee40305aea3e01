using System.IO.Compression;

namespace QuantSharp.Data;

/// <summary>Reading whole data files, gzip-compressed or not, with errors that name the file.</summary>
public static class DataFile
{
    /// <summary>True when <paramref name="head"/> starts with the gzip magic bytes 1f 8b (RFC 1952).</summary>
    public static bool IsGzip(ReadOnlySpan<byte> head) => head.Length >= 2 && head[0] == 0x1f && head[1] == 0x8b;

    /// <summary>
    /// The file's bytes; a gzip file (detected by its magic bytes, not its name) is decompressed.
    /// A missing file, an unreadable one or a corrupt gzip stream is a <see cref="QuantSharpException"/> naming it.
    /// </summary>
    public static byte[] ReadAllBytes(string path)
    {
        byte[] raw = ReadRaw(path);
        if (!IsGzip(raw)) return raw;
        try
        {
            using var input = new MemoryStream(raw, writable: false);
            using var gz = new GZipStream(input, CompressionMode.Decompress);
            using var output = new MemoryStream((int)Math.Min(raw.Length * 4L, 1 << 28));
            gz.CopyTo(output);
            return output.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new QuantSharpException($"{path}: corrupt gzip data ({e.Message})", e);
        }
        catch (IOException e)
        {
            throw new QuantSharpException($"{path}: cannot decompress gzip data ({e.Message})", e);
        }
    }

    /// <summary>The file's bytes as stored, with a <see cref="QuantSharpException"/> naming a missing or unreadable file.</summary>
    public static byte[] ReadRaw(string path)
    {
        if (!File.Exists(path)) throw new QuantSharpException($"{path}: file not found");
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QuantSharpException($"{path}: cannot read file ({e.Message})", e);
        }
    }

    /// <summary>Big-endian unsigned 32-bit integer at <paramref name="offset"/>.</summary>
    internal static uint ReadUInt32BE(ReadOnlySpan<byte> b, int offset) =>
        (uint)b[offset] << 24 | (uint)b[offset + 1] << 16 | (uint)b[offset + 2] << 8 | b[offset + 3];

    /// <summary>
    /// Writes a file atomically: the content goes to a temporary file in the same directory, which is flushed
    /// to disk and then renamed over <paramref name="path"/>, so readers never see a half-written file.
    /// </summary>
    public static void WriteAtomically(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? ".";
        if (!Directory.Exists(dir)) throw new QuantSharpException($"{path}: directory {dir} does not exist");
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(tmp);
            throw new QuantSharpException($"{path}: cannot write file ({e.Message})", e);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (File.Exists(path)) File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The original error is the one worth reporting; a leftover temporary file is harmless.
        }
    }
}
