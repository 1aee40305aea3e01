using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using QuantSharp.Tensors;

namespace QuantSharp.Data;

/// <summary>
/// NumPy .npy files, format versions 1.0, 2.0 and 3.0. A file is the magic "\x93NUMPY", a major and minor version
/// byte, the header length (uint16 little-endian in 1.0, uint32 in 2.0/3.0), a Python dict literal header
/// {'descr': …, 'fortran_order': …, 'shape': (…)} (latin-1 in 1.0/2.0, UTF-8 in 3.0) padded with spaces and a
/// newline, then the raw elements.
/// </summary>
/// <remarks>
/// Element types read: '&lt;f2' '&lt;f4' '&lt;f8' '|u1' '|i1' '&lt;i2' '&lt;u2' '&lt;i4' '&lt;u4' '&lt;i8' '&lt;u8' '|b1', in
/// either byte order ('&gt;' data is converted). Fortran-order arrays are transposed into C order on reading.
/// Written files are always C order in the host's byte order. Tensors whose dtype NumPy lacks are widened without
/// changing any value: int4 → '|i1', uint4 → '|u1', bfloat16 → '&lt;f4'. String tensors cannot be written.
/// </remarks>
public static class Npy
{
    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Header sizes are padded so that the data starts at a multiple of this (NumPy uses 64).</summary>
    private const int Alignment = 64;

    /// <summary>Reads a .npy file.</summary>
    public static Tensor Read(string path)
    {
        if (!File.Exists(path)) throw new QuantSharpException($"{path}: file not found");
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            return Read(fs, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QuantSharpException($"{path}: cannot read file ({e.Message})", e);
        }
    }

    /// <summary>Reads one array from the current position of <paramref name="stream"/> (which need not be seekable).</summary>
    public static Tensor Read(Stream stream, string name) =>
        Read(stream, name, stream.CanSeek ? stream.Length - stream.Position : null);

    /// <summary>
    /// Reads one array; <paramref name="available"/> is the number of bytes the array may span when known, so that a
    /// header claiming more data than the file holds is rejected before anything is allocated.
    /// </summary>
    internal static Tensor Read(Stream stream, string name, long? available)
    {
        Span<byte> pre = stackalloc byte[10];
        ReadExact(stream, pre[..8], name, "header");
        if (!pre[..6].SequenceEqual(Magic)) throw new QuantSharpException($"{name}: not a .npy file (bad magic)");
        byte major = pre[6], minor = pre[7];
        int headerLength;
        if (major == 1)
        {
            ReadExact(stream, pre[8..10], name, "header");
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(pre[8..10]);
        }
        else if (major is 2 or 3)
        {
            Span<byte> len = stackalloc byte[4];
            ReadExact(stream, len, name, "header");
            uint l = BinaryPrimitives.ReadUInt32LittleEndian(len);
            if (l > 1 << 24) throw new QuantSharpException($"{name}: .npy header length {l} is absurd");
            headerLength = (int)l;
        }
        else
        {
            throw new QuantSharpException($"{name}: .npy format version {major}.{minor} is not supported (1.0, 2.0, 3.0 are)");
        }
        var headerBytes = new byte[headerLength];
        ReadExact(stream, headerBytes, name, "header");
        string header = major == 3 ? Encoding.UTF8.GetString(headerBytes) : Encoding.Latin1.GetString(headerBytes);
        var (descr, fortran, shape) = ParseHeader(header, name);
        var (dtype, bigEndian) = ParseDescr(descr, name);
        bool swap = bigEndian == BitConverter.IsLittleEndian && DataTypes.BitsPerElement(dtype) > 8;
        long prefixLength = (major == 1 ? 10 : 12) + headerLength;
        long elements = 1;
        foreach (int d in shape) elements = Math.Min(elements * d, (long)Array.MaxLength + 1);
        if (elements > Array.MaxLength) throw new QuantSharpException($"{name}: .npy shape {ShapeUtil.Format(shape)} has more than {Array.MaxLength} elements");
        long dataBytes = elements * (DataTypes.BitsPerElement(dtype) / 8);
        if (available is { } avail && avail - prefixLength < dataBytes)
            throw new QuantSharpException($"{name}: .npy file is truncated in its data ({avail - prefixLength} bytes for {ShapeUtil.Format(shape)} of '{descr}', which needs {dataBytes})");
        return dtype switch
        {
            DataType.Float => ReadData<float>(stream, shape, fortran, swap, name),
            DataType.Double => ReadData<double>(stream, shape, fortran, swap, name),
            DataType.Float16 => ReadData<Half>(stream, shape, fortran, swap, name),
            DataType.UInt8 => ReadData<byte>(stream, shape, fortran, swap, name),
            DataType.Int8 => ReadData<sbyte>(stream, shape, fortran, swap, name),
            DataType.Int16 => ReadData<short>(stream, shape, fortran, swap, name),
            DataType.UInt16 => ReadData<ushort>(stream, shape, fortran, swap, name),
            DataType.Int32 => ReadData<int>(stream, shape, fortran, swap, name),
            DataType.UInt32 => ReadData<uint>(stream, shape, fortran, swap, name),
            DataType.Int64 => ReadData<long>(stream, shape, fortran, swap, name),
            DataType.UInt64 => ReadData<ulong>(stream, shape, fortran, swap, name),
            _ => ReadBool(stream, shape, fortran, name),
        };
    }

    /// <summary>Writes a .npy file atomically (temporary file, then rename).</summary>
    public static void Write(string path, Tensor tensor) =>
        DataFile.WriteAtomically(path, s => Write(s, tensor, path));

    /// <summary>Writes one array (format 1.0, or 2.0 if the header does not fit) to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, Tensor tensor, string name)
    {
        string order = BitConverter.IsLittleEndian ? "<" : ">";
        string descr = tensor.DataType switch
        {
            DataType.Float or DataType.BFloat16 => order + "f4",
            DataType.Double => order + "f8",
            DataType.Float16 => order + "f2",
            DataType.UInt8 or DataType.UInt4 => "|u1",
            DataType.Int8 or DataType.Int4 => "|i1",
            DataType.Int16 => order + "i2",
            DataType.UInt16 => order + "u2",
            DataType.Int32 => order + "i4",
            DataType.UInt32 => order + "u4",
            DataType.Int64 => order + "i8",
            DataType.UInt64 => order + "u8",
            DataType.Bool => "|b1",
            _ => throw new QuantSharpException($"{name}: a {DataTypes.Name(tensor.DataType)} tensor cannot be written as .npy"),
        };
        string shape = tensor.Rank switch
        {
            0 => "()",
            1 => $"({tensor.Shape[0]},)",
            _ => "(" + string.Join(", ", tensor.Shape) + ")",
        };
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        int major = 6 + 2 + 2 + dict.Length + 1 <= ushort.MaxValue ? 1 : 2;
        int prefix = 6 + 2 + (major == 1 ? 2 : 4);
        // The header is padded with spaces and ends in '\n' so that prefix + header is a multiple of 64.
        int total = (prefix + dict.Length + 1 + Alignment - 1) / Alignment * Alignment;
        int headerLength = total - prefix;
        var head = new byte[total];
        Magic.CopyTo(head);
        head[6] = (byte)major;
        head[7] = 0;
        if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(head.AsSpan(8), (ushort)headerLength);
        else BinaryPrimitives.WriteUInt32LittleEndian(head.AsSpan(8), (uint)headerLength);
        Encoding.Latin1.GetBytes(dict, head.AsSpan(prefix));
        head.AsSpan(prefix + dict.Length, headerLength - dict.Length - 1).Fill((byte)' ');
        head[^1] = (byte)'\n';
        stream.Write(head);
        switch (tensor)
        {
            case Tensor<float> t: WriteData<float>(stream, t.Data); break;
            case Tensor<double> t: WriteData<double>(stream, t.Data); break;
            case Tensor<Half> t: WriteData<Half>(stream, t.Data); break;
            case Tensor<byte> t: WriteData<byte>(stream, t.Data); break;
            case Tensor<sbyte> t: WriteData<sbyte>(stream, t.Data); break;
            case Tensor<short> t: WriteData<short>(stream, t.Data); break;
            case Tensor<ushort> t: WriteData<ushort>(stream, t.Data); break;
            case Tensor<int> t: WriteData<int>(stream, t.Data); break;
            case Tensor<uint> t: WriteData<uint>(stream, t.Data); break;
            case Tensor<long> t: WriteData<long>(stream, t.Data); break;
            case Tensor<ulong> t: WriteData<ulong>(stream, t.Data); break;
            case Tensor<bool> t:
            {
                var b = new byte[t.Length];
                for (int i = 0; i < b.Length; i++) b[i] = t.Data[i] ? (byte)1 : (byte)0;
                stream.Write(b);
                break;
            }
            case Tensor<BFloat16> t:
            {
                var f = new float[t.Length];
                for (int i = 0; i < f.Length; i++) f[i] = (float)t.Data[i];
                WriteData<float>(stream, f);
                break;
            }
            default:
                throw new QuantSharpException($"{name}: a {DataTypes.Name(tensor.DataType)} tensor cannot be written as .npy");
        }
    }

    private static void WriteData<T>(Stream stream, T[] data) where T : unmanaged
    {
        const int chunk = 1 << 18;
        for (int start = 0; start < data.Length; start += chunk)
        {
            int n = Math.Min(chunk, data.Length - start);
            stream.Write(MemoryMarshal.AsBytes(data.AsSpan(start, n)));
        }
    }

    private static Tensor<T> ReadData<T>(Stream stream, int[] shape, bool fortran, bool swap, string name) where T : unmanaged
    {
        int count = ShapeUtil.Product(shape);
        var data = count == 0 ? [] : new T[count];
        const int chunk = 1 << 18;
        for (int start = 0; start < count; start += chunk)
        {
            int n = Math.Min(chunk, count - start);
            ReadExact(stream, MemoryMarshal.AsBytes(data.AsSpan(start, n)), name, "data");
        }
        if (swap) SwapBytes(data);
        if (fortran && shape.Length > 1) data = FortranToC(data, shape);
        return new Tensor<T>(data, shape);
    }

    private static Tensor<bool> ReadBool(Stream stream, int[] shape, bool fortran, string name)
    {
        int count = ShapeUtil.Product(shape);
        var bytes = new byte[count];
        ReadExact(stream, bytes, name, "data");
        var data = new bool[count];
        for (int i = 0; i < count; i++) data[i] = bytes[i] != 0;
        if (fortran && shape.Length > 1) data = FortranToC(data, shape);
        return new Tensor<bool>(data, shape);
    }

    private static void SwapBytes<T>(T[] data) where T : unmanaged
    {
        int size = Marshal.SizeOf<T>();
        if (size == 2)
        {
            var s = MemoryMarshal.Cast<T, ushort>(data.AsSpan());
            BinaryPrimitives.ReverseEndianness(s, s);
        }
        else if (size == 4)
        {
            var s = MemoryMarshal.Cast<T, uint>(data.AsSpan());
            BinaryPrimitives.ReverseEndianness(s, s);
        }
        else if (size == 8)
        {
            var s = MemoryMarshal.Cast<T, ulong>(data.AsSpan());
            BinaryPrimitives.ReverseEndianness(s, s);
        }
    }

    /// <summary>
    /// Fortran order stores element (i0, …, ik) at Σ i_j·Π_{m&lt;j} shape[m]; this walks the C-order indices and
    /// gathers each element from that offset.
    /// </summary>
    private static T[] FortranToC<T>(T[] src, int[] shape)
    {
        int rank = shape.Length;
        var dst = new T[src.Length];
        if (src.Length == 0) return dst;
        var fstride = new int[rank];
        int acc = 1;
        for (int j = 0; j < rank; j++)
        {
            fstride[j] = acc;
            acc *= shape[j];
        }
        var idx = new int[rank];
        int f = 0;
        for (int c = 0; c < dst.Length; c++)
        {
            dst[c] = src[f];
            for (int j = rank - 1; j >= 0; j--)
            {
                idx[j]++;
                f += fstride[j];
                if (idx[j] < shape[j]) break;
                f -= fstride[j] * shape[j];
                idx[j] = 0;
            }
        }
        return dst;
    }

    private static void ReadExact(Stream stream, Span<byte> buffer, string name, string what)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n;
            try
            {
                n = stream.Read(buffer[total..]);
            }
            catch (InvalidDataException e)
            {
                throw new QuantSharpException($"{name}: corrupt compressed .npy {what} ({e.Message})", e);
            }
            if (n == 0) throw new QuantSharpException($"{name}: .npy file is truncated in its {what}");
            total += n;
        }
    }

    /// <summary>Maps a NumPy type string such as '&lt;f4' to a dtype and whether its bytes are big-endian.</summary>
    internal static (DataType Type, bool BigEndian) ParseDescr(string descr, string name)
    {
        string s = descr;
        bool big = !BitConverter.IsLittleEndian;
        if (s.Length > 0 && s[0] is '<' or '>' or '|' or '=')
        {
            if (s[0] == '<') big = false;
            else if (s[0] == '>') big = true;
            s = s[1..];
        }
        DataType? t = s switch
        {
            "f2" => DataType.Float16,
            "f4" => DataType.Float,
            "f8" => DataType.Double,
            "u1" => DataType.UInt8,
            "i1" => DataType.Int8,
            "i2" => DataType.Int16,
            "u2" => DataType.UInt16,
            "i4" => DataType.Int32,
            "u4" => DataType.UInt32,
            "i8" => DataType.Int64,
            "u8" => DataType.UInt64,
            "b1" => DataType.Bool,
            _ => null,
        };
        return t is { } dt ? (dt, big) : throw new QuantSharpException($"{name}: .npy dtype '{descr}' is not supported");
    }

    /// <summary>Parses the header dict; every one of descr, fortran_order and shape must be present.</summary>
    internal static (string Descr, bool Fortran, int[] Shape) ParseHeader(string header, string name)
    {
        var p = new HeaderParser(header, name);
        var dict = p.ParseDict();
        if (!dict.TryGetValue("descr", out var d)) throw p.Error("has no 'descr'");
        if (d is not string descr) throw p.Error("'descr' is not a simple type string (structured dtypes are not supported)");
        if (!dict.TryGetValue("fortran_order", out var f) || f is not bool fortran) throw p.Error("has no boolean 'fortran_order'");
        if (!dict.TryGetValue("shape", out var sh) || sh is not List<long> dims) throw p.Error("has no tuple 'shape'");
        var shape = new int[dims.Count];
        for (int i = 0; i < shape.Length; i++)
        {
            if (dims[i] < 0 || dims[i] > int.MaxValue) throw p.Error($"shape dimension {dims[i]} is out of range");
            shape[i] = (int)dims[i];
        }
        return (descr, fortran, shape);
    }

    /// <summary>A parser for the subset of Python literals NumPy writes: dict, str, bool, int and tuple of ints.</summary>
    private sealed class HeaderParser(string text, string name)
    {
        private int _pos;

        public QuantSharpException Error(string what) => new($"{name}: .npy header {what}: {text.Trim()}");

        public Dictionary<string, object> ParseDict()
        {
            Expect('{');
            var dict = new Dictionary<string, object>();
            while (true)
            {
                SkipSpace();
                if (Peek() == '}') { _pos++; break; }
                if (Peek() is not ('\'' or '"')) throw Error("is not a dict of string keys");
                string key = ParseString();
                Expect(':');
                dict[key] = ParseValue();
                SkipSpace();
                if (Peek() == ',') { _pos++; continue; }
                Expect('}');
                break;
            }
            return dict;
        }

        private object ParseValue()
        {
            SkipSpace();
            char c = Peek();
            if (c is '\'' or '"') return ParseString();
            if (c == '(') return ParseTuple();
            if (c == '[') throw Error("has a list value (structured dtypes are not supported)");
            if (Match("True")) return true;
            if (Match("False")) return false;
            if (char.IsAsciiDigit(c) || c == '-') return ParseInt();
            throw Error($"has an unexpected character '{c}' at {_pos}");
        }

        private List<long> ParseTuple()
        {
            Expect('(');
            var list = new List<long>();
            while (true)
            {
                SkipSpace();
                if (Peek() == ')') { _pos++; return list; }
                list.Add(ParseInt());
                SkipSpace();
                if (Peek() == ',') { _pos++; continue; }
                Expect(')');
                return list;
            }
        }

        private long ParseInt()
        {
            SkipSpace();
            int start = _pos;
            if (Peek() == '-') _pos++;
            while (_pos < text.Length && char.IsAsciiDigit(text[_pos])) _pos++;
            if (!long.TryParse(text.AsSpan(start, _pos - start), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v))
                throw Error($"has a bad integer at {start}");
            // Python 2 wrote long integers with an 'L' suffix.
            if (_pos < text.Length && text[_pos] == 'L') _pos++;
            return v;
        }

        private string ParseString()
        {
            char quote = text[_pos++];
            int end = text.IndexOf(quote, _pos);
            if (end < 0) throw Error("has an unterminated string");
            string s = text[_pos..end];
            _pos = end + 1;
            return s;
        }

        private bool Match(string word)
        {
            if (string.CompareOrdinal(text, _pos, word, 0, word.Length) != 0) return false;
            _pos += word.Length;
            return true;
        }

        private void Expect(char c)
        {
            SkipSpace();
            if (Peek() != c) throw Error($"expected '{c}' at {_pos}");
            _pos++;
        }

        private char Peek() => _pos < text.Length ? text[_pos] : '\0';

        private void SkipSpace()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos])) _pos++;
        }
    }
}
