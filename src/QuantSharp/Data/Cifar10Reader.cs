using QuantSharp.Tensors;

namespace QuantSharp.Data;

/// <summary>
/// Reads the CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin): fixed records of one label byte
/// (0..9) followed by 3072 pixel bytes, a 32×32 red plane, then green, then blue (CHW, RGB), rows top to bottom.
/// </summary>
public static class Cifar10Reader
{
    public const int Side = 32;
    public const int Channels = 3;
    public const int ImageBytes = Channels * Side * Side;
    public const int RecordBytes = 1 + ImageBytes;
    public const int Classes = 10;

    /// <summary>The class names, in label order.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    /// <summary>Images uint8 [N, 3, 32, 32] (CHW, RGB) and labels uint8 [N] from one or more batch files, in order.</summary>
    public static (Tensor<byte> Images, Tensor<byte> Labels) Read(params string[] paths)
    {
        var files = paths.Select(p => (Path: p, Bytes: DataFile.ReadAllBytes(p))).ToList();
        long total = 0;
        foreach (var (p, b) in files)
        {
            if (b.Length == 0 || b.Length % RecordBytes != 0)
                throw new QuantSharpException($"{p}: CIFAR-10 file is {b.Length} bytes, not a positive multiple of the {RecordBytes}-byte record");
            total += b.Length / RecordBytes;
        }
        if (total * ImageBytes > Array.MaxLength) throw new QuantSharpException($"{paths[0]}: too many CIFAR-10 records ({total})");
        int n = (int)total;
        var images = new byte[n * ImageBytes];
        var labels = new byte[n];
        int r = 0;
        foreach (var (p, b) in files)
        {
            for (int off = 0; off < b.Length; off += RecordBytes, r++)
            {
                byte label = b[off];
                if (label >= Classes)
                    throw new QuantSharpException($"{p}: record {off / RecordBytes} has label {label}, outside 0..9 (not a CIFAR-10 file?)");
                labels[r] = label;
                Buffer.BlockCopy(b, off + 1, images, r * ImageBytes, ImageBytes);
            }
        }
        return (new Tensor<byte>(images, [n, Channels, Side, Side]), new Tensor<byte>(labels, [n]));
    }
}
