using System.IO.MemoryMappedFiles;
using System.Text;

namespace QuantSharp.Llm.Gguf;

/// <summary>One tensor info of a GGUF file. <see cref="Dims"/> is ne[0..n): ne[0] varies fastest (a row of a matrix).</summary>
public sealed record GgufTensorInfo(string Name, long[] Dims, GgmlType Type, long Offset, long Bytes)
{
    public long Elements => Dims.Aggregate(1L, (a, b) => a * b);
    /// <summary>ne[0]: the length of one row.</summary>
    public long RowLength => Dims.Length == 0 ? 1 : Dims[0];
    public long RowCount => Dims.Length == 0 ? 1 : Elements / Dims[0];
    public string Shape => "[" + string.Join(", ", Dims) + "]";
}

/// <summary>
/// A GGUF v3 file opened read-only through a memory map (GGUF v2 is read too: same layout). Every count, string
/// length, tensor shape, offset and size is checked against the file before use, so a corrupt file raises
/// <see cref="ModelFormatException"/> naming the file (and the key or tensor) instead of allocating a huge buffer.
/// Tensor data stays in the mapping until <see cref="Dispose"/>.
/// </summary>
public sealed unsafe class GgufFile : IDisposable
{
    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    public const uint Magic = 0x46554747;
    public const uint CurrentVersion = 3;
    public const uint DefaultAlignment = 32;
    public const string AlignmentKey = "general.alignment";
    /// <summary>GGML_MAX_DIMS: ggml tensors have at most 4 dimensions.</summary>
    public const int MaxDims = 4;

    private readonly MemoryMappedFile? _file;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _base;
    private readonly Dictionary<string, GgufValue> _metadata = new(StringComparer.Ordinal);
    private readonly List<string> _keys = [];
    private readonly List<GgufTensorInfo> _tensors = [];
    private readonly Dictionary<string, GgufTensorInfo> _byName = new(StringComparer.Ordinal);

    public string Path { get; }
    public string FileName => System.IO.Path.GetFileName(Path);
    public long FileBytes { get; }
    public uint Version { get; }
    public uint Alignment { get; }
    /// <summary>Absolute offset of the tensor data section (tensor offsets are relative to it).</summary>
    public long DataOffset { get; }

    /// <summary>Metadata keys in file order.</summary>
    public IReadOnlyList<string> Keys => _keys;
    public IReadOnlyDictionary<string, GgufValue> Metadata => _metadata;
    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors => _tensors;

    private GgufFile(string path)
    {
        Path = path;
        FileBytes = new FileInfo(path).Length;
        if (FileBytes < 24) throw Error($"{FileBytes} bytes is too short for a GGUF header (24 bytes)");
        _file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try
        {
            _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref _base);
            _base += _view.PointerOffset;
            (Version, Alignment, DataOffset) = Parse();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Opens and validates a GGUF file.</summary>
    public static GgufFile Open(string path)
    {
        if (!File.Exists(path)) throw new QuantSharpException($"{path}: GGUF file not found");
        return new GgufFile(path);
    }

    private ModelFormatException Error(string message) => new($"{FileName}: {message}");

    // ---- bounded cursor over the mapping ----
    private long _pos;

    private void Need(long bytes, string what)
    {
        if (bytes < 0 || bytes > FileBytes - _pos)
            throw Error($"truncated at byte {_pos} reading {what} ({bytes} bytes needed, {FileBytes - _pos} left)");
    }

    private T Read<T>(string what) where T : unmanaged
    {
        Need(sizeof(T), what);
        // GGUF is little-endian; unaligned reads are fine on x64/ARM64.
        T v = *(T*)(_base + _pos);
        _pos += sizeof(T);
        return v;
    }

    private string ReadString(string what)
    {
        ulong len = Read<ulong>(what + " length");
        if (len > (ulong)(FileBytes - _pos)) throw Error($"{what}: string length {len} exceeds the {FileBytes - _pos} bytes left in the file");
        try
        {
            var s = new UTF8Encoding(false, true).GetString(_base + _pos, (int)len);
            _pos += (long)len;
            return s;
        }
        catch (DecoderFallbackException)
        {
            throw Error($"{what}: string at byte {_pos} is not valid UTF-8");
        }
        catch (ArgumentException)
        {
            throw Error($"{what}: string of {len} bytes is too long");
        }
    }

    private static int ScalarSize(GgufValueType t) => t switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
        _ => 0,
    };

    private GgufValue ReadValue(GgufValueType type, string key, int depth)
    {
        switch (type)
        {
            case GgufValueType.UInt8: return GgufValue.UInt8(Read<byte>(key));
            case GgufValueType.Int8: return GgufValue.Int8(Read<sbyte>(key));
            case GgufValueType.UInt16: return GgufValue.UInt16(Read<ushort>(key));
            case GgufValueType.Int16: return GgufValue.Int16(Read<short>(key));
            case GgufValueType.UInt32: return GgufValue.UInt32(Read<uint>(key));
            case GgufValueType.Int32: return GgufValue.Int32(Read<int>(key));
            case GgufValueType.Float32: return GgufValue.Float32(Read<float>(key));
            case GgufValueType.UInt64: return GgufValue.UInt64(Read<ulong>(key));
            case GgufValueType.Int64: return GgufValue.Int64(Read<long>(key));
            case GgufValueType.Float64: return GgufValue.Float64(Read<double>(key));
            case GgufValueType.Bool:
                byte b = Read<byte>(key);
                if (b > 1) throw Error($"metadata '{key}': bool byte is {b}, expected 0 or 1");
                return GgufValue.Bool(b == 1);
            case GgufValueType.String: return GgufValue.String(ReadString($"metadata '{key}'"));
            case GgufValueType.Array: return ReadArray(key, depth);
            default: throw Error($"metadata '{key}': unknown value type {(uint)type}");
        }
    }

    private GgufValue ReadArray(string key, int depth)
    {
        if (depth > 8) throw Error($"metadata '{key}': arrays nested deeper than 8 levels");
        uint et = Read<uint>($"metadata '{key}' array type");
        var elem = (GgufValueType)et;
        ulong count = Read<ulong>($"metadata '{key}' array count");
        // Every element takes at least one byte (strings and arrays at least their 8-byte length/count), so a count
        // above the bytes left is corrupt: checked before anything is allocated.
        int min = elem switch { GgufValueType.String => 8, GgufValueType.Array => 12, _ => ScalarSize(elem) };
        if (min == 0) throw Error($"metadata '{key}': unknown array element type {et}");
        if (count > (ulong)((FileBytes - _pos) / min))
            throw Error($"metadata '{key}': array of {count} {elem} elements does not fit in the {FileBytes - _pos} bytes left");
        int n = (int)count;
        switch (elem)
        {
            case GgufValueType.UInt8: return GgufValue.Array(Block<byte>(n, key));
            case GgufValueType.Int8: return GgufValue.Array(Block<sbyte>(n, key));
            case GgufValueType.UInt16: return GgufValue.Array(Block<ushort>(n, key));
            case GgufValueType.Int16: return GgufValue.Array(Block<short>(n, key));
            case GgufValueType.UInt32: return GgufValue.Array(Block<uint>(n, key));
            case GgufValueType.Int32: return GgufValue.Array(Block<int>(n, key));
            case GgufValueType.Float32: return GgufValue.Array(Block<float>(n, key));
            case GgufValueType.UInt64: return GgufValue.Array(Block<ulong>(n, key));
            case GgufValueType.Int64: return GgufValue.Array(Block<long>(n, key));
            case GgufValueType.Float64: return GgufValue.Array(Block<double>(n, key));
            case GgufValueType.Bool:
                var raw = Block<byte>(n, key);
                if (raw.Any(x => x > 1)) throw Error($"metadata '{key}': bool array holds a byte other than 0 or 1");
                return GgufValue.Array(raw.Select(x => x == 1).ToArray());
            case GgufValueType.String:
                var s = new string[n];
                for (int i = 0; i < n; i++) s[i] = ReadString($"metadata '{key}'[{i}]");
                return GgufValue.Array(s);
            default:
                var a = new GgufValue[n];
                for (int i = 0; i < n; i++) a[i] = ReadArray(key, depth + 1);
                return GgufValue.Array(a);
        }
    }

    private T[] Block<T>(int n, string key) where T : unmanaged
    {
        Need((long)n * sizeof(T), $"metadata '{key}' array");
        var a = new ReadOnlySpan<T>(_base + _pos, n).ToArray();
        _pos += (long)n * sizeof(T);
        return a;
    }

    private (uint Version, uint Alignment, long DataOffset) Parse()
    {
        uint magic = Read<uint>("magic");
        if (magic != Magic) throw Error($"not a GGUF file (magic 0x{magic:x8}, expected 0x{Magic:x8} \"GGUF\")");
        uint version = Read<uint>("version");
        if (version is not (2 or 3)) throw Error($"GGUF version {version} is not supported (only 2 and 3)");
        ulong tensorCount = Read<ulong>("tensor_count");
        ulong kvCount = Read<ulong>("metadata_kv_count");
        // Minimal sizes: a key-value pair is key length 8 + type 4 + ≥1 byte; a tensor info is name length 8 +
        // n_dims 4 + type 4 + offset 8.
        if (kvCount > (ulong)((FileBytes - _pos) / 13)) throw Error($"metadata_kv_count {kvCount} cannot fit in a {FileBytes}-byte file");
        if (tensorCount > (ulong)((FileBytes - _pos) / 24)) throw Error($"tensor_count {tensorCount} cannot fit in a {FileBytes}-byte file");

        for (ulong i = 0; i < kvCount; i++)
        {
            string key = ReadString($"metadata key #{i}");
            uint t = Read<uint>($"metadata '{key}' type");
            var v = ReadValue((GgufValueType)t, key, 0);
            if (!_metadata.TryAdd(key, v)) throw Error($"metadata key '{key}' appears twice");
            _keys.Add(key);
        }

        uint alignment = DefaultAlignment;
        if (_metadata.TryGetValue(AlignmentKey, out var al))
        {
            if (al.Type != GgufValueType.UInt32) throw Error($"{AlignmentKey} has type {al.Type}, expected UInt32");
            alignment = (uint)al.Value;
            if (alignment == 0 || (alignment & (alignment - 1)) != 0) throw Error($"{AlignmentKey} = {alignment} is not a power of two");
        }

        var raw = new List<(string Name, long[] Dims, GgmlType Type, ulong Offset)>();
        for (ulong i = 0; i < tensorCount; i++)
        {
            string name = ReadString($"tensor #{i} name");
            uint nd = Read<uint>($"tensor '{name}' n_dims");
            if (nd > MaxDims) throw Error($"tensor '{name}' has {nd} dimensions (at most {MaxDims})");
            var dims = new long[nd];
            for (int d = 0; d < nd; d++)
            {
                ulong ne = Read<ulong>($"tensor '{name}' ne[{d}]");
                if (ne > long.MaxValue) throw Error($"tensor '{name}' ne[{d}] = {ne} is negative as int64");
                dims[d] = (long)ne;
            }
            uint type = Read<uint>($"tensor '{name}' type");
            ulong offset = Read<ulong>($"tensor '{name}' offset");
            raw.Add((name, dims, (GgmlType)type, offset));
        }

        long dataOffset = AlignUp(_pos, alignment);
        if (tensorCount > 0 && dataOffset > FileBytes) throw Error($"tensor data section starts at {dataOffset}, past the end of the {FileBytes}-byte file");
        long dataBytes = Math.Max(0, FileBytes - dataOffset);

        foreach (var (name, dims, type, offset) in raw)
        {
            if (QuantSharpTypes.IsPrivate(type))
            {
                // QuantSharp's own types (QuantSharpTypes): the size comes from the type's layout.
                long pbytes = QuantSharpTypes.TensorBytes(type, dims) ?? throw Error($"tensor '{name}': shape [{string.Join(", ", dims)}] does not fit QuantSharp type {(uint)type}");
                AddInfo(name, dims, type, offset, pbytes, alignment, dataBytes);
                continue;
            }
            if (!GgmlTypes.IsKnown(type)) throw Error($"tensor '{name}' has unknown ggml type {(uint)type}");
            long elements = 1;
            foreach (long ne in dims)
            {
                if (ne == 0) { elements = 0; break; }
                // Any tensor larger than the file is corrupt; checking against the file keeps the product from overflowing.
                if (elements > FileBytes * GgmlTypes.BlockSize(type) / ne) throw Error($"tensor '{name}' shape [{string.Join(", ", dims)}] is larger than the file");
                elements *= ne;
            }
            long ne0 = dims.Length == 0 ? 1 : dims[0];
            int bs = GgmlTypes.BlockSize(type);
            if (ne0 % bs != 0) throw Error($"tensor '{name}': ne[0] = {ne0} is not a multiple of the {type} block size {bs}");
            long bytes = elements == 0 ? 0 : elements / bs * GgmlTypes.TypeSize(type);
            AddInfo(name, dims, type, offset, bytes, alignment, dataBytes);
        }
        // Tensors may not share bytes: sorted by offset, each must end before the next begins.
        var sorted = _tensors.Where(t => t.Bytes > 0).OrderBy(t => t.Offset).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i - 1].Offset + sorted[i - 1].Bytes > sorted[i].Offset)
                throw Error($"tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap in the data section");
        return (version, alignment, dataOffset);
    }

    private void AddInfo(string name, long[] dims, GgmlType type, ulong offset, long bytes, uint alignment, long dataBytes)
    {
        if (offset % alignment != 0) throw Error($"tensor '{name}': offset {offset} is not a multiple of the alignment {alignment}");
        if (offset > (ulong)dataBytes || bytes > dataBytes - (long)offset)
            throw Error($"tensor '{name}' ({type} {string.Join("x", dims)}, {bytes} bytes at data offset {offset}) extends past the end of the file (data section holds {dataBytes} bytes)");
        var info = new GgufTensorInfo(name, dims, type, (long)offset, bytes);
        if (!_byName.TryAdd(name, info)) throw Error($"tensor '{name}' appears twice");
        _tensors.Add(info);
    }

    internal static long AlignUp(long x, long alignment) => (x + alignment - 1) / alignment * alignment;

    // ---- access ----

    public bool TryGetTensor(string name, out GgufTensorInfo info) => _byName.TryGetValue(name, out info!);

    public GgufTensorInfo Tensor(string name) =>
        _byName.TryGetValue(name, out var t) ? t : throw Error($"tensor '{name}' is missing");

    /// <summary>The stored bytes of <paramref name="tensor"/>, a view into the mapping.</summary>
    public ReadOnlySpan<byte> TensorBytes(GgufTensorInfo tensor)
    {
        if (_base == null) throw new ObjectDisposedException(FileName);
        if (tensor.Bytes > int.MaxValue) throw Error($"tensor '{tensor.Name}' ({tensor.Bytes} bytes) is too large for one span");
        return new ReadOnlySpan<byte>(_base + DataOffset + tensor.Offset, (int)tensor.Bytes);
    }

    /// <summary>The tensor's values as FP32 (dequantized for block types).</summary>
    public float[] ReadFloats(GgufTensorInfo tensor)
    {
        if (tensor.Elements > int.MaxValue) throw Error($"tensor '{tensor.Name}' has {tensor.Elements} elements, too many for one array");
        var dst = new float[tensor.Elements];
        if (QuantSharpTypes.IsPrivate(tensor.Type))
        {
            int cols = (int)tensor.RowLength, rows = (int)tensor.RowCount;
            var m = QuantSharpTypes.Decode(tensor.Name, tensor.Type, rows, cols, TensorBytes(tensor))!;
            for (int r = 0; r < rows; r++) m.DequantizeRow(r, dst.AsSpan(r * cols, cols));
            return dst;
        }
        try
        {
            GgmlBlocks.Dequantize(tensor.Type, TensorBytes(tensor), dst);
        }
        catch (QuantSharpException e) when (e is not ModelFormatException)
        {
            throw Error($"tensor '{tensor.Name}': {e.Message}");
        }
        return dst;
    }

    public bool Has(string key) => _metadata.ContainsKey(key);

    public GgufValue Get(string key) => _metadata.TryGetValue(key, out var v) ? v : throw Error($"metadata key '{key}' is missing");

    private GgufValue Get(string key, GgufValueType type)
    {
        var v = Get(key);
        if (v.Type != type) throw Error($"metadata '{key}' has type {v.Type}, expected {type}");
        return v;
    }

    public string GetString(string key) => (string)Get(key, GgufValueType.String).Value;
    public float GetFloat32(string key) => (float)Get(key, GgufValueType.Float32).Value;

    /// <summary>An unsigned or signed integer of any width that fits in int.</summary>
    public int GetInt(string key)
    {
        var v = Get(key);
        long x = v.Type switch
        {
            GgufValueType.UInt8 => (byte)v.Value,
            GgufValueType.Int8 => (sbyte)v.Value,
            GgufValueType.UInt16 => (ushort)v.Value,
            GgufValueType.Int16 => (short)v.Value,
            GgufValueType.UInt32 => (uint)v.Value,
            GgufValueType.Int32 => (int)v.Value,
            GgufValueType.UInt64 => (ulong)v.Value > int.MaxValue ? long.MaxValue : (long)(ulong)v.Value,
            GgufValueType.Int64 => (long)v.Value,
            _ => throw Error($"metadata '{key}' has type {v.Type}, expected an integer"),
        };
        if (x < int.MinValue || x > int.MaxValue) throw Error($"metadata '{key}' = {x} is out of range");
        return (int)x;
    }

    /// <summary>An array whose elements are of <paramref name="element"/> type, as its CLR array.</summary>
    public T[] GetArray<T>(string key, GgufValueType element)
    {
        var v = Get(key, GgufValueType.Array);
        if (v.ElementType != element) throw Error($"metadata '{key}' is an array of {v.ElementType}, expected {element}");
        return (T[])v.Value;
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
