using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;

namespace QuantSharp.Llm.HuggingFace;

/// <summary>The element types a safetensors tensor may have here.</summary>
public enum SafetensorsDtype
{
    F32,
    F16,
    BF16,
}

/// <summary>One tensor of a safetensors file: its data lies at [DataOffset, DataOffset + Bytes) of the file.</summary>
public sealed record SafetensorInfo(string Name, SafetensorsDtype Dtype, long[] Shape, long DataOffset, long Bytes)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
    public string ShapeText => "[" + string.Join(",", Shape) + "]";
}

/// <summary>
/// A safetensors file opened through a read-only memory map. Layout (the format's specification): an unsigned 64-bit
/// little-endian header length N, N bytes of UTF-8 JSON mapping each tensor name to {"dtype", "shape",
/// "data_offsets": [begin, end]} (offsets relative to the byte after the header) plus an optional "__metadata__"
/// object of strings, then the tensor bytes (row-major, little-endian). Every offset, size and dtype is checked
/// against the file before any tensor is used.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    // A header larger than this is not a plausible safetensors file (the reference implementation caps it at 100 MB).
    private const long MaxHeader = 100_000_000;

    private readonly MemoryMappedFile? _file;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _base;
    private readonly Dictionary<string, SafetensorInfo> _tensors;

    public string Path { get; }
    public string FileName => System.IO.Path.GetFileName(Path);
    public long FileBytes { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public IReadOnlyDictionary<string, SafetensorInfo> Tensors => _tensors;

    private SafetensorsFile(string path)
    {
        Path = path;
        FileBytes = new FileInfo(path).Length;
        string name = FileName;
        if (FileBytes < 8) throw new ModelFormatException($"{name}: {FileBytes} bytes is too short for a safetensors file (8-byte header length)");
        if (FileBytes > 8)
        {
            _file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref _base);
            _base += _view.PointerOffset;
        }
        try
        {
            (_tensors, Metadata) = ParseHeader(name);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Opens and validates <paramref name="path"/>; a bad header, offset or dtype raises <see cref="ModelFormatException"/> naming the file.</summary>
    public static SafetensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new QuantSharpException($"{path}: safetensors file not found");
        return new SafetensorsFile(path);
    }

    public static int ElementSize(SafetensorsDtype t) => t == SafetensorsDtype.F32 ? 4 : 2;

    private (Dictionary<string, SafetensorInfo>, Dictionary<string, string>) ParseHeader(string name)
    {
        if (_base == null) throw new ModelFormatException($"{name}: header length is missing");
        ulong n = *(ulong*)_base;
        if (n == 0 || n > MaxHeader || (long)n > FileBytes - 8)
            throw new ModelFormatException($"{name}: header length {n} does not fit the file ({FileBytes} bytes; not a safetensors file?)");
        long dataStart = 8 + (long)n, dataBytes = FileBytes - dataStart;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(new ReadOnlyMemory<byte>(new ReadOnlySpan<byte>(_base + 8, (int)n).ToArray()));
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{name}: the header is not valid JSON ({e.Message.Split('\n')[0]})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ModelFormatException($"{name}: the header is not a JSON object");
            var tensors = new Dictionary<string, SafetensorInfo>(StringComparer.Ordinal);
            var meta = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__")
                {
                    if (p.Value.ValueKind != JsonValueKind.Object) throw new ModelFormatException($"{name}: __metadata__ is not an object");
                    foreach (var m in p.Value.EnumerateObject())
                        meta[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                if (tensors.ContainsKey(p.Name)) throw new ModelFormatException($"{name}: tensor '{p.Name}' appears twice in the header");
                tensors.Add(p.Name, ParseTensor(name, p.Name, p.Value, dataBytes, dataStart));
            }
            // Tensors may not overlap (the format requires them to tile the data area).
            var sorted = tensors.Values.OrderBy(t => t.DataOffset).ToArray();
            for (int i = 1; i < sorted.Length; i++)
                if (sorted[i].DataOffset < sorted[i - 1].DataOffset + sorted[i - 1].Bytes)
                    throw new ModelFormatException($"{name}: tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap");
            return (tensors, meta);
        }
    }

    private static SafetensorInfo ParseTensor(string file, string tensor, JsonElement e, long dataBytes, long dataStart)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new ModelFormatException($"{file}: tensor '{tensor}': header entry is not an object");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new ModelFormatException($"{file}: tensor '{tensor}' has no dtype");
        var dtype = dt.GetString() switch
        {
            "F32" => SafetensorsDtype.F32,
            "F16" => SafetensorsDtype.F16,
            "BF16" => SafetensorsDtype.BF16,
            var other => throw new ModelFormatException($"{file}: tensor '{tensor}' has dtype {other}; only F32, F16 and BF16 are supported"),
        };
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new ModelFormatException($"{file}: tensor '{tensor}' has no shape");
        var shape = new long[sh.GetArrayLength()];
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0 || v > int.MaxValue)
                throw new ModelFormatException($"{file}: tensor '{tensor}' has an invalid dimension {d.GetRawText()}");
            shape[i++] = v;
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new ModelFormatException($"{file}: tensor '{tensor}' has no data_offsets [begin, end]");
        static long Offset(JsonElement e) => e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long v) ? v : -1;
        long begin = Offset(off[0]), end = Offset(off[1]);
        if (begin < 0 || end < begin || end > dataBytes)
            throw new ModelFormatException($"{file}: tensor '{tensor}' has data_offsets [{off[0].GetRawText()}, {off[1].GetRawText()}] outside the {dataBytes}-byte data area");
        // Each dimension is below 2³¹; the product is checked against the data size before it could overflow.
        long elements = 1;
        foreach (long d in shape)
        {
            if (d != 0 && elements > dataBytes / d) throw new ModelFormatException($"{file}: tensor '{tensor}' shape [{string.Join(",", shape)}] is larger than the file");
            elements *= d;
        }
        long expected = elements * ElementSize(dtype);
        if (end - begin != expected)
            throw new ModelFormatException($"{file}: tensor '{tensor}' ({dtype} [{string.Join(",", shape)}]) needs {expected} bytes, data_offsets give {end - begin}");
        return new SafetensorInfo(tensor, dtype, shape, dataStart + begin, expected);
    }

    /// <summary>The first byte of a tensor's data inside the mapping (valid until <see cref="Dispose"/>).</summary>
    public byte* Pointer(SafetensorInfo t) => _base + t.DataOffset;

    public ReadOnlySpan<byte> Bytes(SafetensorInfo t) => new(Pointer(t), checked((int)t.Bytes));

    /// <summary>A tensor's values converted to FP32 (a copy).</summary>
    public float[] ReadFloats(SafetensorInfo t)
    {
        var dst = new float[t.Elements];
        ConvertToSingle(Pointer(t), t.Dtype, dst);
        return dst;
    }

    /// <summary>Converts <paramref name="dst"/>.Length values of <paramref name="dtype"/> at <paramref name="src"/> to FP32.</summary>
    public static void ConvertToSingle(byte* src, SafetensorsDtype dtype, Span<float> dst)
    {
        switch (dtype)
        {
            case SafetensorsDtype.F32:
                new ReadOnlySpan<float>(src, dst.Length).CopyTo(dst);
                break;
            case SafetensorsDtype.F16:
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(src, dst.Length), dst);
                break;
            default:
                // bfloat16 is the high half of an IEEE float32: shift it back into place.
                var s = new ReadOnlySpan<ushort>(src, dst.Length);
                for (int i = 0; i < dst.Length; i++) dst[i] = BitConverter.Int32BitsToSingle(s[i] << 16);
                break;
        }
    }

    public void Dispose()
    {
        if (_base != null)
        {
            _view!.SafeMemoryMappedViewHandle.ReleasePointer();
            _base = null;
        }
        _view?.Dispose();
        _file?.Dispose();
    }
}

/// <summary>
/// The tensors of a Hugging Face checkpoint directory: one model.safetensors, or the shards listed by
/// model.safetensors.index.json ({"weight_map": {tensor: shard file}}). Every shard stays memory-mapped until
/// <see cref="Dispose"/>.
/// </summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    private readonly List<SafetensorsFile> _files = [];
    private readonly Dictionary<string, SafetensorsFile> _owner = new(StringComparer.Ordinal);

    public string Directory { get; }
    public IReadOnlyList<SafetensorsFile> Files => _files;
    public long FileBytes => _files.Sum(f => f.FileBytes);
    public IEnumerable<string> TensorNames => _owner.Keys;

    private SafetensorsCheckpoint(string dir) => Directory = dir;

    public static SafetensorsCheckpoint Open(string dir)
    {
        var ck = new SafetensorsCheckpoint(dir);
        try
        {
            string index = System.IO.Path.Combine(dir, "model.safetensors.index.json");
            string single = System.IO.Path.Combine(dir, "model.safetensors");
            if (File.Exists(index)) ck.OpenSharded(index);
            else if (File.Exists(single)) ck.Add(SafetensorsFile.Open(single));
            else
            {
                var any = System.IO.Directory.GetFiles(dir, "*.safetensors").Order(StringComparer.Ordinal).ToArray();
                if (any.Length == 0) throw new QuantSharpException($"{dir}: no model.safetensors, model.safetensors.index.json or *.safetensors file");
                foreach (var f in any) ck.Add(SafetensorsFile.Open(f));
            }
            return ck;
        }
        catch
        {
            ck.Dispose();
            throw;
        }
    }

    private void OpenSharded(string index)
    {
        string name = System.IO.Path.GetFileName(index);
        Dictionary<string, string> map;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(index, Encoding.UTF8));
            if (!doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException($"{name}: no \"weight_map\" object");
            map = wm.EnumerateObject().ToDictionary(p => p.Name,
                p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : throw new ModelFormatException($"{name}: weight_map entry '{p.Name}' is not a file name"));
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{name}: not valid JSON ({e.Message.Split('\n')[0]})");
        }
        var shards = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        foreach (var shard in map.Values.Distinct().Order(StringComparer.Ordinal))
        {
            if (shard.Contains('/') || shard.Contains('\\') || shard == "..")
                throw new ModelFormatException($"{name}: shard name '{shard}' is not a plain file name");
            string path = System.IO.Path.Combine(Directory, shard);
            if (!File.Exists(path)) throw new QuantSharpException($"{name}: shard '{shard}' not found in {Directory}");
            var f = SafetensorsFile.Open(path);
            _files.Add(f);
            shards[shard] = f;
        }
        foreach (var (tensor, shard) in map)
        {
            var f = shards[shard];
            if (!f.Tensors.ContainsKey(tensor)) throw new ModelFormatException($"{name}: '{tensor}' is mapped to {shard}, which does not contain it");
            _owner[tensor] = f;
        }
    }

    private void Add(SafetensorsFile f)
    {
        _files.Add(f);
        foreach (var t in f.Tensors.Keys)
            if (!_owner.TryAdd(t, f)) throw new ModelFormatException($"{f.FileName}: tensor '{t}' also appears in {_owner[t].FileName}");
    }

    public bool Contains(string tensor) => _owner.ContainsKey(tensor);

    /// <summary>The tensor and the file holding it; a missing tensor is a <see cref="ModelFormatException"/>.</summary>
    public (SafetensorsFile File, SafetensorInfo Info) Get(string tensor)
    {
        if (!_owner.TryGetValue(tensor, out var f)) throw new ModelFormatException($"{Directory}: tensor '{tensor}' is missing from the checkpoint");
        return (f, f.Tensors[tensor]);
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
    }
}
