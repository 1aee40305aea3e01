using System.Runtime.InteropServices;
using Google.Protobuf;
using QuantSharp.Onnx.Proto;
using QuantSharp.Tensors;

namespace QuantSharp.Onnx;

/// <summary>
/// TensorProto ↔ <see cref="Tensor"/>. Reads raw_data (little-endian; 4-bit types two per byte, low nibble
/// first), the typed data fields and external data files; writes raw_data. Every size is checked against the
/// dims before anything is allocated, so a corrupt file gives a <see cref="ModelFormatException"/> naming the
/// tensor instead of a huge allocation.
/// </summary>
public static class TensorProtoIO
{
    static TensorProtoIO()
    {
        // raw_data is little-endian and is reinterpreted in place; .NET's supported platforms are all little-endian.
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX tensor I/O needs a little-endian host");
    }

    /// <summary>Dtypes a TensorProto can be decoded into (those the runtime holds).</summary>
    public static bool IsSupported(DataType t) => t is DataType.Float or DataType.Double or DataType.UInt8 or DataType.Int8
        or DataType.UInt16 or DataType.Int16 or DataType.Int32 or DataType.Int64 or DataType.UInt32 or DataType.UInt64
        or DataType.Bool or DataType.String or DataType.Float16 or DataType.BFloat16 or DataType.Int4 or DataType.UInt4;

    /// <summary>The tensor's name for messages.</summary>
    internal static string Describe(TensorProto p) => p.Name.Length > 0 ? $"tensor '{p.Name}'" : "unnamed tensor";

    /// <summary>
    /// Decodes a TensorProto. <paramref name="baseDir"/> is the folder external data locations are relative to
    /// (the model's folder); null when the tensor did not come from a file, which makes external data an error.
    /// </summary>
    public static Tensor ToTensor(TensorProto p, string? baseDir)
    {
        var what = Describe(p);
        var dt = (DataType)p.DataType;
        if (!Enum.IsDefined(dt) || dt == DataType.Undefined)
            throw new ModelFormatException($"{what}: invalid data type {p.DataType}");
        if (!IsSupported(dt))
            throw new QuantSharpException($"{what}: data type {DataTypes.Name(dt)} is not supported");
        if (p.Segment is not null)
            throw new ModelFormatException($"{what}: segmented tensors (TensorProto.segment) are not supported");
        int[] shape = CheckedShape(p.Dims, what);
        int count = ShapeUtil.Product(shape);

        if (p.DataLocation == TensorProto.Types.DataLocation.External)
        {
            if (dt == DataType.String) throw new ModelFormatException($"{what}: string tensors cannot use external data");
            return FromExternal(p, dt, shape, count, baseDir, what);
        }
        if (p.HasRawData)
        {
            if (dt == DataType.String) throw new ModelFormatException($"{what}: string tensors cannot use raw_data");
            var raw = p.RawData.Span;
            long need = ByteCount(dt, count);
            if (raw.Length != need)
                throw new ModelFormatException($"{what}: raw_data has {raw.Length} bytes but {DataTypes.Name(dt)}{ShapeUtil.Format(shape)} needs {need}");
            return FromBytes(raw, dt, shape, count);
        }
        return FromTypedFields(p, dt, shape, count, what);
    }

    /// <summary>Encodes a tensor as raw_data (4-bit types packed two per byte, low nibble first; strings in string_data).</summary>
    public static TensorProto FromTensor(Tensor t, string name)
    {
        var p = new TensorProto { Name = name, DataType = (int)t.DataType };
        foreach (int d in t.Shape) p.Dims.Add(d);
        if (t.DataType == DataType.String)
        {
            foreach (var s in t.As<string>().Data) p.StringData.Add(ByteString.CopyFromUtf8(s ?? ""));
            return p;
        }
        p.RawData = UnsafeByteOperations.UnsafeWrap(ToBytes(t, name));
        return p;
    }

    /// <summary>Reads a TensorProto .pb file (as in the ONNX test data); external data is relative to its folder.</summary>
    public static (string Name, Tensor Tensor) ReadFile(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QuantSharpException($"{path}: cannot read tensor file: {e.Message}", e);
        }
        TensorProto p;
        try
        {
            p = TensorProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new ModelFormatException($"{path}: not a valid TensorProto file: {e.Message}", e);
        }
        try
        {
            return (p.Name, ToTensor(p, Path.GetDirectoryName(Path.GetFullPath(path))));
        }
        catch (QuantSharpException e)
        {
            throw new ModelFormatException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>Writes a tensor as a TensorProto .pb file (raw_data), replacing the file atomically.</summary>
    public static void WriteFile(string path, string name, Tensor t)
    {
        var p = FromTensor(t, name);
        AtomicFile.Write(path, s => p.WriteTo(s));
    }

    /// <summary>Bytes the data of <paramref name="count"/> elements takes in raw_data or an external file.</summary>
    public static long ByteCount(DataType dt, long count) => DataTypes.BitsPerElement(dt) switch
    {
        4 => (count + 1) / 2,
        int bits => count * bits / 8,
    };

    /// <summary>Dims as int[], refusing negative dims and element counts a tensor cannot hold.</summary>
    internal static int[] CheckedShape(IList<long> dims, string what)
    {
        var shape = new int[dims.Count];
        long n = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            long d = dims[i];
            if (d < 0) throw new ModelFormatException($"{what}: negative dimension {d} in dims [{string.Join(",", dims)}]");
            // Divide rather than multiply so that the check itself cannot overflow.
            if (d > 0 && n > Array.MaxLength / d)
                throw new ModelFormatException($"{what}: dims [{string.Join(",", dims)}] describe more than {Array.MaxLength} elements");
            n *= d;
            shape[i] = (int)d;
        }
        return shape;
    }

    private static Tensor FromExternal(TensorProto p, DataType dt, int[] shape, int count, string? baseDir, string what)
    {
        string? location = null;
        long offset = 0, length = -1;
        foreach (var kv in p.ExternalData)
        {
            switch (kv.Key)
            {
                case "location": location = kv.Value; break;
                case "offset": offset = ParseNonNegative(kv.Value, "offset", what); break;
                case "length": length = ParseNonNegative(kv.Value, "length", what); break;
            }
        }
        if (string.IsNullOrEmpty(location)) throw new ModelFormatException($"{what}: external data has no 'location'");
        if (baseDir is null)
            throw new ModelFormatException($"{what}: uses external data '{location}' but the model was not read from a folder");
        var file = ResolveExternalPath(baseDir, location, what);
        if (!File.Exists(file))
            throw new ModelFormatException($"{what}: external data file '{location}' not found (looked for {file})");

        long need = ByteCount(dt, count);
        if (length >= 0 && length != need)
            throw new ModelFormatException($"{what}: external data length {length} but {DataTypes.Name(dt)}{ShapeUtil.Format(shape)} needs {need} bytes");
        try
        {
            using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            if (offset > fs.Length || fs.Length - offset < need)
                throw new ModelFormatException($"{what}: external data file '{location}' has {fs.Length} bytes, too few for {need} bytes at offset {offset}");
            fs.Position = offset;
            var t = Tensor.Zeros(dt, shape);
            if (dt is DataType.Bool or DataType.Int4 or DataType.UInt4)
            {
                // Stored form differs from the held form (bytes → bool; two nibbles → two bytes): read, then convert.
                var bytes = new byte[need];
                fs.ReadExactly(bytes);
                return FromBytes(bytes, dt, shape, count);
            }
            fs.ReadExactly(AsBytes(t));
            return t;
        }
        catch (IOException e)
        {
            throw new ModelFormatException($"{what}: cannot read external data file '{location}': {e.Message}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new ModelFormatException($"{what}: cannot read external data file '{location}': {e.Message}", e);
        }
    }

    /// <summary>
    /// The full path of an external data location. Only relative paths that stay inside the model's folder are
    /// accepted: a model file must not be able to make the reader open arbitrary files.
    /// </summary>
    internal static string ResolveExternalPath(string baseDir, string location, string what)
    {
        if (Path.IsPathRooted(location) || location.Contains(':') || location.IndexOf('\0') >= 0)
            throw new ModelFormatException($"{what}: external data location '{location}' must be a relative path inside the model's folder");
        var root = Path.GetFullPath(baseDir);
        var full = Path.GetFullPath(Path.Combine(root, location));
        if (!IsInside(root, full))
            throw new ModelFormatException($"{what}: external data location '{location}' leaves the model's folder");
        // A symbolic link inside the folder may still point outside it.
        var info = new FileInfo(full);
        if (info.Exists && info.LinkTarget is not null)
        {
            var target = info.ResolveLinkTarget(returnFinalTarget: true)?.FullName;
            if (target is null || !IsInside(root, Path.GetFullPath(target)))
                throw new ModelFormatException($"{what}: external data location '{location}' is a link leaving the model's folder");
        }
        return full;
    }

    /// <summary>Whether a normalised full path lies strictly below the folder <paramref name="root"/>.</summary>
    private static bool IsInside(string root, string full)
    {
        var rel = Path.GetRelativePath(root, full);
        if (rel == "." || Path.IsPathRooted(rel)) return false;
        var first = rel.Split(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar)[0];
        return first != "..";
    }

    private static long ParseNonNegative(string s, string key, string what)
    {
        if (!long.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long v))
            throw new ModelFormatException($"{what}: external data {key} '{s}' is not a non-negative integer");
        return v;
    }

    /// <summary>The tensor's elements viewed as bytes (for dtypes whose held form equals the stored form).</summary>
    private static Span<byte> AsBytes(Tensor t) => t switch
    {
        Tensor<float> x => MemoryMarshal.AsBytes(x.Span),
        Tensor<double> x => MemoryMarshal.AsBytes(x.Span),
        Tensor<byte> x => x.Span,
        Tensor<sbyte> x => MemoryMarshal.AsBytes(x.Span),
        Tensor<ushort> x => MemoryMarshal.AsBytes(x.Span),
        Tensor<short> x => MemoryMarshal.AsBytes(x.Span),
        Tensor<int> x => MemoryMarshal.AsBytes(x.Span),
        Tensor<long> x => MemoryMarshal.AsBytes(x.Span),
        Tensor<uint> x => MemoryMarshal.AsBytes(x.Span),
        Tensor<ulong> x => MemoryMarshal.AsBytes(x.Span),
        Tensor<Half> x => MemoryMarshal.AsBytes(x.Span),
        Tensor<BFloat16> x => MemoryMarshal.AsBytes(x.Span),
        _ => throw new QuantSharpException($"{t} has no fixed-size byte form"),
    };

    /// <summary>Decodes stored bytes whose length the caller has checked against the element count.</summary>
    private static Tensor FromBytes(ReadOnlySpan<byte> raw, DataType dt, int[] shape, int count)
    {
        switch (dt)
        {
            case DataType.Bool:
            {
                var d = new bool[count];
                for (int i = 0; i < count; i++) d[i] = raw[i] != 0;
                return new Tensor<bool>(d, shape);
            }
            case DataType.Int4:
            {
                var d = new sbyte[count];
                for (int i = 0; i < count; i++) d[i] = SignExtend4(Nibble(raw[i >> 1], i));
                return new Tensor<sbyte>(d, shape, DataType.Int4);
            }
            case DataType.UInt4:
            {
                var d = new byte[count];
                for (int i = 0; i < count; i++) d[i] = Nibble(raw[i >> 1], i);
                return new Tensor<byte>(d, shape, DataType.UInt4);
            }
            default:
            {
                var t = Tensor.Zeros(dt, shape);
                raw.CopyTo(AsBytes(t));
                return t;
            }
        }
    }

    /// <summary>Element i of packed 4-bit data: even indices are the low nibble, odd ones the high nibble.</summary>
    private static byte Nibble(byte packed, int i) => (byte)((i & 1) == 0 ? packed & 0x0F : packed >> 4);

    /// <summary>Two's-complement 4-bit value to sbyte: shift the nibble to the top of the byte, then back arithmetically.</summary>
    private static sbyte SignExtend4(int nibble) => (sbyte)((sbyte)(nibble << 4) >> 4);

    private static byte[] ToBytes(Tensor t, string name)
    {
        switch (t.DataType)
        {
            case DataType.Bool:
            {
                var s = t.As<bool>().Data;
                var b = new byte[s.Length];
                for (int i = 0; i < s.Length; i++) b[i] = s[i] ? (byte)1 : (byte)0;
                return b;
            }
            case DataType.Int4:
            {
                var s = t.As<sbyte>().Data;
                var b = new byte[ByteCount(DataType.Int4, s.Length)];
                for (int i = 0; i < s.Length; i++)
                {
                    if (s[i] < -8 || s[i] > 7) throw new QuantSharpException($"tensor '{name}': int4 element {i} is {s[i]}, outside [-8, 7]");
                    b[i >> 1] |= (byte)((s[i] & 0x0F) << ((i & 1) * 4));
                }
                return b;
            }
            case DataType.UInt4:
            {
                var s = t.As<byte>().Data;
                var b = new byte[ByteCount(DataType.UInt4, s.Length)];
                for (int i = 0; i < s.Length; i++)
                {
                    if (s[i] > 15) throw new QuantSharpException($"tensor '{name}': uint4 element {i} is {s[i]}, outside [0, 15]");
                    b[i >> 1] |= (byte)(s[i] << ((i & 1) * 4));
                }
                return b;
            }
            default:
                return AsBytes(t).ToArray();
        }
    }

    private static Tensor FromTypedFields(TensorProto p, DataType dt, int[] shape, int count, string what)
    {
        void Expect(int have, long need, string field)
        {
            if (have != need)
                throw new ModelFormatException(have == 0 && need > 0
                    ? $"{what}: {DataTypes.Name(dt)}{ShapeUtil.Format(shape)} has no data (no raw_data, {field} or external data)"
                    : $"{what}: {field} has {have} elements but {DataTypes.Name(dt)}{ShapeUtil.Format(shape)} needs {need}");
        }

        switch (dt)
        {
            case DataType.Float:
                Expect(p.FloatData.Count, count, "float_data");
                return new Tensor<float>(p.FloatData.ToArray(), shape);
            case DataType.Double:
                Expect(p.DoubleData.Count, count, "double_data");
                return new Tensor<double>(p.DoubleData.ToArray(), shape);
            case DataType.Int64:
                Expect(p.Int64Data.Count, count, "int64_data");
                return new Tensor<long>(p.Int64Data.ToArray(), shape);
            case DataType.UInt64:
                Expect(p.Uint64Data.Count, count, "uint64_data");
                return new Tensor<ulong>(p.Uint64Data.ToArray(), shape);
            case DataType.UInt32:
            {
                Expect(p.Uint64Data.Count, count, "uint64_data");
                var d = new uint[count];
                for (int i = 0; i < count; i++) d[i] = (uint)p.Uint64Data[i];
                return new Tensor<uint>(d, shape);
            }
            case DataType.String:
            {
                Expect(p.StringData.Count, count, "string_data");
                var d = new string[count];
                for (int i = 0; i < count; i++) d[i] = p.StringData[i].ToStringUtf8();
                return new Tensor<string>(d, shape);
            }
            case DataType.Int4 or DataType.UInt4:
            {
                // Each int32_data element holds one packed byte: two 4-bit values, low nibble first.
                var src = p.Int32Data;
                Expect(src.Count, ByteCount(dt, count), "int32_data");
                var packed = new byte[src.Count];
                for (int i = 0; i < packed.Length; i++) packed[i] = (byte)src[i];
                return FromBytes(packed, dt, shape, count);
            }
            default:
            {
                // int32_data carries int32, the narrower integers, bool, and float16/bfloat16 as their bit patterns.
                var src = p.Int32Data;
                Expect(src.Count, count, "int32_data");
                var t = Tensor.Zeros(dt, shape);
                switch (t)
                {
                    case Tensor<int> x: src.CopyTo(x.Data, 0); break;
                    case Tensor<short> x: for (int i = 0; i < count; i++) x.Data[i] = (short)src[i]; break;
                    case Tensor<ushort> x: for (int i = 0; i < count; i++) x.Data[i] = (ushort)src[i]; break;
                    case Tensor<sbyte> x: for (int i = 0; i < count; i++) x.Data[i] = (sbyte)src[i]; break;
                    case Tensor<byte> x: for (int i = 0; i < count; i++) x.Data[i] = (byte)src[i]; break;
                    case Tensor<bool> x: for (int i = 0; i < count; i++) x.Data[i] = src[i] != 0; break;
                    case Tensor<Half> x: for (int i = 0; i < count; i++) x.Data[i] = BitConverter.UInt16BitsToHalf((ushort)src[i]); break;
                    case Tensor<BFloat16> x: for (int i = 0; i < count; i++) x.Data[i] = BFloat16.FromBits((ushort)src[i]); break;
                    default: throw new ModelFormatException($"{what}: {DataTypes.Name(dt)} data cannot be read from int32_data");
                }
                return t;
            }
        }
    }
}
