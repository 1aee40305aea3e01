using System.Buffers.Binary;
using QuantSharp.Tensors;

namespace QuantSharp.Data;

/// <summary>
/// Reads IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or not.
/// Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
/// 0x0E float64), the number of dimensions, one big-endian uint32 per dimension, then the big-endian elements.
/// </summary>
public static class IdxReader
{
    /// <summary>Magic of an image file: uint8 elements, 3 dimensions [N, rows, cols].</summary>
    public const uint ImagesMagic = 0x00000803;

    /// <summary>Magic of a label file: uint8 elements, 1 dimension [N].</summary>
    public const uint LabelsMagic = 0x00000801;

    /// <summary>Images as uint8 [N, rows, cols]; the magic must be 0x00000803.</summary>
    public static Tensor<byte> ReadImages(string path) => ReadUInt8(path, ImagesMagic, "images");

    /// <summary>Labels as uint8 [N]; the magic must be 0x00000801.</summary>
    public static Tensor<byte> ReadLabels(string path) => ReadUInt8(path, LabelsMagic, "labels");

    /// <summary>Any IDX file, as a tensor of the file's element type and shape.</summary>
    public static Tensor Read(string path) => Parse(DataFile.ReadAllBytes(path), path);

    private static Tensor<byte> ReadUInt8(string path, uint magic, string what)
    {
        byte[] bytes = DataFile.ReadAllBytes(path);
        if (bytes.Length < 4) throw new QuantSharpException($"{path}: IDX file is {bytes.Length} bytes, too short for a header");
        uint actual = DataFile.ReadUInt32BE(bytes, 0);
        if (actual != magic)
            throw new QuantSharpException($"{path}: IDX magic 0x{actual:X8} is not the {what} magic 0x{magic:X8}");
        return Parse(bytes, path).As<byte>();
    }

    /// <summary>Parses IDX bytes (already decompressed); <paramref name="name"/> is used in error messages.</summary>
    public static Tensor Parse(byte[] bytes, string name)
    {
        if (bytes.Length < 4) throw new QuantSharpException($"{name}: IDX file is {bytes.Length} bytes, too short for a header");
        if (bytes[0] != 0 || bytes[1] != 0)
            throw new QuantSharpException($"{name}: not an IDX file (magic 0x{DataFile.ReadUInt32BE(bytes, 0):X8} does not start with two zero bytes)");
        byte code = bytes[2];
        int rank = bytes[3];
        (DataType dtype, int size) = code switch
        {
            0x08 => (DataType.UInt8, 1),
            0x09 => (DataType.Int8, 1),
            0x0B => (DataType.Int16, 2),
            0x0C => (DataType.Int32, 4),
            0x0D => (DataType.Float, 4),
            0x0E => (DataType.Double, 8),
            _ => throw new QuantSharpException($"{name}: unknown IDX element type code 0x{code:X2}"),
        };
        if (rank == 0) throw new QuantSharpException($"{name}: IDX header declares 0 dimensions");
        long headerLength = 4 + 4L * rank;
        if (bytes.Length < headerLength)
            throw new QuantSharpException($"{name}: IDX file is {bytes.Length} bytes, shorter than its {rank}-dimension header");
        var shape = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            uint d = DataFile.ReadUInt32BE(bytes, 4 + 4 * i);
            if (d > int.MaxValue) throw new QuantSharpException($"{name}: IDX dimension {i} is {d}, too large");
            shape[i] = (int)d;
            count *= d;
            if (count > Array.MaxLength) throw new QuantSharpException($"{name}: IDX shape has more than {Array.MaxLength} elements");
        }
        long expected = headerLength + count * size;
        if (bytes.Length != expected)
            throw new QuantSharpException(
                $"{name}: IDX file is {bytes.Length} bytes but header {ShapeUtil.Format(shape)} of {DataTypes.Name(dtype)} needs {expected}" +
                (bytes.Length < expected ? " (truncated)" : " (trailing bytes)"));
        var data = bytes.AsSpan((int)headerLength);
        int n = (int)count;
        switch (dtype)
        {
            case DataType.UInt8:
                return new Tensor<byte>(data.ToArray(), shape);
            case DataType.Int8:
            {
                var a = new sbyte[n];
                for (int i = 0; i < n; i++) a[i] = (sbyte)data[i];
                return new Tensor<sbyte>(a, shape);
            }
            case DataType.Int16:
            {
                var a = new short[n];
                for (int i = 0; i < n; i++) a[i] = BinaryPrimitives.ReadInt16BigEndian(data[(2 * i)..]);
                return new Tensor<short>(a, shape);
            }
            case DataType.Int32:
            {
                var a = new int[n];
                for (int i = 0; i < n; i++) a[i] = BinaryPrimitives.ReadInt32BigEndian(data[(4 * i)..]);
                return new Tensor<int>(a, shape);
            }
            case DataType.Float:
            {
                var a = new float[n];
                for (int i = 0; i < n; i++) a[i] = BinaryPrimitives.ReadSingleBigEndian(data[(4 * i)..]);
                return new Tensor<float>(a, shape);
            }
            default:
            {
                var a = new double[n];
                for (int i = 0; i < n; i++) a[i] = BinaryPrimitives.ReadDoubleBigEndian(data[(8 * i)..]);
                return new Tensor<double>(a, shape);
            }
        }
    }
}
