namespace QuantSharp.Onnx;

/// <summary>
/// Writes a file so that readers only ever see the old or the complete new content: the data goes to a temporary
/// file in the target folder (same file system, so the final rename is atomic), which then replaces the target.
/// On any failure the temporary file is deleted and the target is left untouched.
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var tmp = WriteTemporary(full, write);
        try
        {
            File.Move(tmp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(tmp);
            throw new QuantSharpException($"{path}: cannot write file: {e.Message}", e);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>A temporary file name in the folder of <paramref name="full"/>, hidden and unique to this call.</summary>
    public static string TemporaryNameFor(string full) =>
        Path.Combine(Path.GetDirectoryName(full) ?? ".", $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");

    /// <summary>Writes and syncs a temporary file beside <paramref name="full"/> and returns its path; deletes it on failure.</summary>
    public static string WriteTemporary(string full, Action<Stream> write)
    {
        if (Directory.Exists(full)) throw new QuantSharpException($"{full}: cannot write file: it is a folder");
        var tmp = TemporaryNameFor(full);
        try
        {
            using var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            write(fs);
            fs.Flush(flushToDisk: true);
            return tmp;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(tmp);
            throw new QuantSharpException($"{full}: cannot write file: {e.Message}", e);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    public static void TryDelete(string path)
    {
        try
        {
            if (File.Exists(path)) File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: the original error is the one worth reporting.
        }
    }
}
