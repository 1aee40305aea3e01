using System.Text;

namespace QuantSharp.Llm.Gguf;

/// <summary>
/// Builds a GGUF v3 file: metadata in insertion order, tensor infos in insertion order, each tensor's data at the
/// next multiple of the alignment (zero padding, also after the last tensor). The same inputs always give the same
/// bytes. <see cref="Write"/> writes a temporary file beside the target and moves it into place, so a failed
/// write never leaves a half-written model under the final name.
/// </summary>
public sealed class GgufWriter
{
    private readonly List<(string Key, GgufValue Value)> _kv = [];
    private readonly List<(string Name, long[] Dims, GgmlType Type, byte[] Data)> _tensors = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <param name="alignment">Tensor data alignment (a power of two); other than 32 it is written as general.alignment.</param>
    public GgufWriter(uint alignment = GgufFile.DefaultAlignment)
    {
        if (alignment == 0 || (alignment & (alignment - 1)) != 0) throw new ArgumentException($"alignment {alignment} is not a power of two");
        Alignment = alignment;
        if (alignment != GgufFile.DefaultAlignment) Add(GgufFile.AlignmentKey, GgufValue.UInt32(alignment));
    }

    public uint Alignment { get; }

    public GgufWriter Add(string key, GgufValue value)
    {
        if (key == GgufFile.AlignmentKey && _keys.Count > 0 && (value.Type != GgufValueType.UInt32 || (uint)value.Value != Alignment))
            throw new ArgumentException($"{GgufFile.AlignmentKey} is set by the writer's alignment ({Alignment})");
        if (!_keys.Add(key)) throw new ArgumentException($"GGUF metadata key '{key}' added twice");
        _kv.Add((key, value));
        return this;
    }

    public GgufWriter Add(string key, string value) => Add(key, GgufValue.String(value));
    public GgufWriter Add(string key, uint value) => Add(key, GgufValue.UInt32(value));
    public GgufWriter Add(string key, float value) => Add(key, GgufValue.Float32(value));

    /// <summary>Adds a tensor whose bytes are already in <paramref name="type"/>'s layout; dims are ne[0] first.</summary>
    public GgufWriter AddTensor(string name, long[] dims, GgmlType type, byte[] data)
    {
        if (dims.Length is 0 or > GgufFile.MaxDims) throw new ArgumentException($"tensor '{name}': {dims.Length} dimensions (1..{GgufFile.MaxDims})");
        if (dims.Any(d => d <= 0)) throw new ArgumentException($"tensor '{name}': dimensions [{string.Join(", ", dims)}] must be positive");
        long expected = QuantSharpTypes.IsPrivate(type)
            ? QuantSharpTypes.TensorBytes(type, dims) ?? throw new ArgumentException($"tensor '{name}': dims [{string.Join(", ", dims)}] do not fit QuantSharp type {(uint)type}")
            : GgmlTypes.RowBytes(type, dims[0]) * dims.Skip(1).Aggregate(1L, (a, b) => a * b);
        if (data.Length != expected) throw new ArgumentException($"tensor '{name}': {data.Length} bytes, {type} {string.Join("x", dims)} needs {expected}");
        if (!_names.Add(name)) throw new ArgumentException($"tensor '{name}' added twice");
        _tensors.Add((name, (long[])dims.Clone(), type, data));
        return this;
    }

    /// <summary>Quantizes row-major FP32 values into <paramref name="type"/> and adds them.</summary>
    public GgufWriter AddTensor(string name, long[] dims, GgmlType type, ReadOnlySpan<float> values)
        => AddTensor(name, dims, type, GgmlBlocks.Quantize(type, values, dims[0]));

    public void Write(string path)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                WriteTo(fs);
                fs.Flush(true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            if (File.Exists(tmp)) File.Delete(tmp);
            throw;
        }
    }

    /// <summary>Writes the whole file to <paramref name="stream"/>.</summary>
    public void WriteTo(Stream stream)
    {
        var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        long start = stream.Position;
        w.Write(GgufFile.Magic);
        w.Write(GgufFile.CurrentVersion);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_kv.Count);
        foreach (var (key, value) in _kv)
        {
            WriteString(w, key);
            w.Write((uint)value.Type);
            WriteValue(w, value);
        }
        long offset = 0;
        foreach (var (name, dims, type, data) in _tensors)
        {
            WriteString(w, name);
            w.Write((uint)dims.Length);
            foreach (long d in dims) w.Write((ulong)d);
            w.Write((uint)type);
            w.Write((ulong)offset);
            offset = GgufFile.AlignUp(offset + data.Length, Alignment);
        }
        w.Flush();
        Pad(w, stream.Position - start);
        foreach (var t in _tensors)
        {
            w.Write(t.Data);
            Pad(w, t.Data.Length);
        }
        w.Flush();
    }

    // Zero bytes up to the next multiple of the alignment after a section of `written` bytes.
    private void Pad(BinaryWriter w, long written)
    {
        long pad = GgufFile.AlignUp(written, Alignment) - written;
        for (long i = 0; i < pad; i++) w.Write((byte)0);
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var b = new UTF8Encoding(false, true).GetBytes(s);
        w.Write((ulong)b.Length);
        w.Write(b);
    }

    private static void WriteValue(BinaryWriter w, GgufValue v)
    {
        switch (v.Type)
        {
            case GgufValueType.UInt8: w.Write((byte)v.Value); break;
            case GgufValueType.Int8: w.Write((sbyte)v.Value); break;
            case GgufValueType.UInt16: w.Write((ushort)v.Value); break;
            case GgufValueType.Int16: w.Write((short)v.Value); break;
            case GgufValueType.UInt32: w.Write((uint)v.Value); break;
            case GgufValueType.Int32: w.Write((int)v.Value); break;
            case GgufValueType.Float32: w.Write((float)v.Value); break;
            case GgufValueType.Bool: w.Write((byte)((bool)v.Value ? 1 : 0)); break;
            case GgufValueType.String: WriteString(w, (string)v.Value); break;
            case GgufValueType.UInt64: w.Write((ulong)v.Value); break;
            case GgufValueType.Int64: w.Write((long)v.Value); break;
            case GgufValueType.Float64: w.Write((double)v.Value); break;
            case GgufValueType.Array:
                var a = (Array)v.Value;
                w.Write((uint)v.ElementType);
                w.Write((ulong)a.Length);
                if (a is float[] fa) { foreach (float f in fa) w.Write(f); break; }
                if (a is int[] ia) { foreach (int i in ia) w.Write(i); break; }
                foreach (var e in a)
                {
                    if (v.ElementType == GgufValueType.Array) WriteValue(w, (GgufValue)e);
                    else WriteValue(w, Scalar(v.ElementType, e));
                }
                break;
            default: throw new ArgumentException($"unknown GGUF value type {v.Type}");
        }
    }

    private static GgufValue Scalar(GgufValueType t, object e) => t switch
    {
        GgufValueType.UInt8 => GgufValue.UInt8((byte)e),
        GgufValueType.Int8 => GgufValue.Int8((sbyte)e),
        GgufValueType.UInt16 => GgufValue.UInt16((ushort)e),
        GgufValueType.Int16 => GgufValue.Int16((short)e),
        GgufValueType.UInt32 => GgufValue.UInt32((uint)e),
        GgufValueType.Int32 => GgufValue.Int32((int)e),
        GgufValueType.Float32 => GgufValue.Float32((float)e),
        GgufValueType.Bool => GgufValue.Bool((bool)e),
        GgufValueType.String => GgufValue.String((string)e),
        GgufValueType.UInt64 => GgufValue.UInt64((ulong)e),
        GgufValueType.Int64 => GgufValue.Int64((long)e),
        GgufValueType.Float64 => GgufValue.Float64((double)e),
        _ => throw new ArgumentException($"unknown GGUF element type {t}"),
    };
}
