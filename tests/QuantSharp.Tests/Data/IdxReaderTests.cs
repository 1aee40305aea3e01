using System.IO.Compression;
using QuantSharp.Data;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Data;

public class IdxReaderTests
{
    private static string Mnist(string file) => TestPaths.SharedFile("data", "mnist", file);
    private static string Fashion(string file) => Path.Combine(TestPaths.FashionMnist, file);

    private static int[] Counts(Tensor<byte> labels)
    {
        var c = new int[10];
        foreach (byte l in labels.Data) c[l]++;
        return c;
    }

    [Fact]
    public void MnistTestSet()
    {
        var images = IdxReader.ReadImages(Mnist("t10k-images-idx3-ubyte.gz"));
        var labels = IdxReader.ReadLabels(Mnist("t10k-labels-idx1-ubyte.gz"));
        Assert.Equal([10000, 28, 28], images.Shape);
        Assert.Equal([10000], labels.Shape);
        // Known facts of the MNIST test set: its first labels and its per-class counts.
        Assert.Equal(new byte[] { 7, 2, 1, 0, 4, 1, 4, 9, 5, 9 }, labels.Data[..10]);
        Assert.Equal([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009], Counts(labels));
        // White digits on black: the corners are 0, every image reaches 255 somewhere.
        Assert.Equal(0, images.Data[0]);
        Assert.Equal(0, images.Data[28 * 28 - 1]);
        Assert.Equal(255, images.Data[..(28 * 28)].Max());
    }

    [Fact]
    public void FashionMnistTestAndTrain()
    {
        var testLabels = IdxReader.ReadLabels(Fashion("t10k-labels-idx1-ubyte.gz"));
        var trainLabels = IdxReader.ReadLabels(Fashion("train-labels-idx1-ubyte.gz"));
        Assert.Equal(10000, testLabels.Length);
        Assert.Equal(60000, trainLabels.Length);
        // Fashion-MNIST is balanced: 1000 test and 6000 train images per class; the first test image is an ankle boot.
        Assert.All(Counts(testLabels), c => Assert.Equal(1000, c));
        Assert.All(Counts(trainLabels), c => Assert.Equal(6000, c));
        Assert.Equal(9, testLabels.Data[0]);
        var images = IdxReader.ReadImages(Fashion("t10k-images-idx3-ubyte.gz"));
        Assert.Equal([10000, 28, 28], images.Shape);
        Assert.Equal(255, images.Data.Max());
    }

    [Fact]
    public void GzipAndDecompressedGiveTheSameTensor()
    {
        string dir = TestPaths.NewTempDir();
        try
        {
            foreach (string f in new[] { "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" })
            {
                string raw = Path.Combine(dir, f);
                using (var gz = new GZipStream(File.OpenRead(Mnist(f + ".gz")), CompressionMode.Decompress))
                using (var o = File.Create(raw))
                    gz.CopyTo(o);
                var a = IdxReader.Read(Mnist(f + ".gz")).As<byte>();
                var b = IdxReader.Read(raw).As<byte>();
                Assert.Equal(a.Shape, b.Shape);
                Assert.Equal(a.Data, b.Data);
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static byte[] Header(byte code, params uint[] dims)
    {
        var b = new byte[4 + 4 * dims.Length];
        b[2] = code;
        b[3] = (byte)dims.Length;
        for (int i = 0; i < dims.Length; i++)
        {
            b[4 + 4 * i] = (byte)(dims[i] >> 24);
            b[5 + 4 * i] = (byte)(dims[i] >> 16);
            b[6 + 4 * i] = (byte)(dims[i] >> 8);
            b[7 + 4 * i] = (byte)dims[i];
        }
        return b;
    }

    [Fact]
    public void OtherElementTypesAreBigEndian()
    {
        byte[] f = [.. Header(0x0D, 2), 0x3F, 0x80, 0, 0, 0xC0, 0, 0, 0];
        Assert.Equal(new[] { 1f, -2f }, IdxReader.Parse(f, "f.idx").As<float>().Data);
        byte[] i = [.. Header(0x0C, 1, 1), 0xFF, 0xFF, 0xFF, 0xFE];
        var ti = IdxReader.Parse(i, "i.idx").As<int>();
        Assert.Equal([1, 1], ti.Shape);
        Assert.Equal(-2, ti.Data[0]);
        byte[] s = [.. Header(0x0B, 2), 0x01, 0x02, 0x80, 0x00];
        Assert.Equal(new short[] { 0x0102, short.MinValue }, IdxReader.Parse(s, "s.idx").As<short>().Data);
        byte[] d = [.. Header(0x0E, 1), 0x40, 0x09, 0x21, 0xFB, 0x54, 0x44, 0x2D, 0x18];
        Assert.Equal(Math.PI, IdxReader.Parse(d, "d.idx").As<double>().Data[0]);
        byte[] sb = [.. Header(0x09, 2), 0xFF, 0x01];
        Assert.Equal(new sbyte[] { -1, 1 }, IdxReader.Parse(sb, "b.idx").As<sbyte>().Data);
    }

    [Fact]
    public void BadFilesNameTheFile()
    {
        string dir = TestPaths.NewTempDir();
        try
        {
            string Write(string name, byte[] bytes)
            {
                string p = Path.Combine(dir, name);
                File.WriteAllBytes(p, bytes);
                return p;
            }
            byte[] images = [.. Header(0x08, 2, 2, 2), 1, 2, 3, 4, 5, 6, 7, 8];
            Assert.Equal([2, 2, 2], IdxReader.ReadImages(Write("ok", images)).Shape);

            string labels = Write("labels", [.. Header(0x08, 3), 1, 2, 3]);
            var e = Assert.Throws<QuantSharpException>(() => IdxReader.ReadImages(labels));
            Assert.Contains(labels, e.Message);
            Assert.Contains("magic 0x00000801", e.Message);
            Assert.Throws<QuantSharpException>(() => IdxReader.ReadLabels(Write("img", images)));

            string truncated = Write("trunc", images[..^1]);
            e = Assert.Throws<QuantSharpException>(() => IdxReader.ReadImages(truncated));
            Assert.Contains(truncated, e.Message);
            Assert.Contains("truncated", e.Message);

            Assert.Contains("trailing", Assert.Throws<QuantSharpException>(() => IdxReader.ReadImages(Write("long", [.. images, 0]))).Message);
            Assert.Contains("header", Assert.Throws<QuantSharpException>(() => IdxReader.Read(Write("short", [0, 0, 8, 3, 0, 0]))).Message);
            Assert.Contains("type code", Assert.Throws<QuantSharpException>(() => IdxReader.Read(Write("code", Header(0x07, 1)))).Message);
            Assert.Contains("not an IDX", Assert.Throws<QuantSharpException>(() => IdxReader.Read(Write("png", [0x89, 0x50, 0x4E, 0x47]))).Message);
            Assert.Contains("not found", Assert.Throws<QuantSharpException>(() => IdxReader.Read(Path.Combine(dir, "missing"))).Message);

            // A truncated gzip stream is an error too (from gzip itself or from the length check).
            var gz = File.ReadAllBytes(Mnist("t10k-labels-idx1-ubyte.gz"));
            string cut = Write("cut.gz", gz[..(gz.Length / 2)]);
            e = Assert.ThrowsAny<QuantSharpException>(() => IdxReader.ReadLabels(cut));
            Assert.Contains(cut, e.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
