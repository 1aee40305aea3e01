using QuantSharp.Data;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Data;

public sealed class DatasetSpecTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("qs-data");

    public void Dispose() => Directory.Delete(_dir, true);

    private string MnistDir => TestPaths.SharedFile("data", "mnist");

    [Fact]
    public void FashionMnistSplits()
    {
        var test = DatasetSpec.Open("fashion-mnist:test");
        Assert.Equal(10000, test.Count);
        Assert.Equal(SampleKind.Image, test.Kind);
        var (x, y) = test.Get(0);
        Assert.Equal([28, 28, 1], x.Shape);
        Assert.Equal(DataType.UInt8, x.DataType);
        Assert.Equal(9, y);
        var raw = IdxReader.ReadImages(Path.Combine(TestPaths.FashionMnist, "t10k-images-idx3-ubyte.gz"));
        Assert.Equal(raw.Data[(28 * 28 * 7)..(28 * 28 * 8)], test.Get(7).Input.As<byte>().Data);
        Assert.Equal(60000, DatasetSpec.Open("fashion-mnist:train").Count);
        Assert.Throws<QuantSharpException>(() => DatasetSpec.Open("fashion-mnist:valid"));
        var missing = Assert.Throws<QuantSharpException>(() => DatasetSpec.Open("fashion-mnist:test",
            new DatasetSpecOptions { FashionMnistDirectory = Path.Combine(_dir, "none") }));
        Assert.Contains("none", missing.Message);
    }

    [Fact]
    public void MnistDirectoryBatchesForTheModelInput()
    {
        var ds = DatasetSpec.Open($"mnist:{MnistDir}");
        Assert.Equal(10000, ds.Count);
        var p = new ImagePreprocessing().ForInputShape([1, 1, 28, 28], ImageLayout.NCHW);
        var batch = Batcher.Stack(ds, 0, 5, p);
        Assert.Equal([5, 1, 28, 28], batch.Input.Shape);
        Assert.Equal(new int?[] { 7, 2, 1, 0, 4 }, batch.Labels);
        var pixels = ds.Get(3).Input.As<byte>().Data;
        var floats = batch.Input.As<float>().Data;
        for (int i = 0; i < 28 * 28; i++) Assert.Equal(pixels[i], floats[3 * 28 * 28 + i]);

        var e = Assert.Throws<QuantSharpException>(() => DatasetSpec.Open($"mnist:{MnistDir}:train"));
        Assert.Contains("train-images-idx3-ubyte", e.Message);
        Assert.Contains(MnistDir, e.Message);
        Assert.Contains("not found", Assert.Throws<QuantSharpException>(() => DatasetSpec.Open($"mnist:{_dir}/nothing")).Message);
    }

    [Fact]
    public void IdxSpecWithAndWithoutLabels()
    {
        string images = Path.Combine(MnistDir, "t10k-images-idx3-ubyte.gz"), labels = Path.Combine(MnistDir, "t10k-labels-idx1-ubyte.gz");
        var both = DatasetSpec.Open($"idx:{images},{labels}");
        Assert.Equal(7, both.Get(0).Label);
        var only = DatasetSpec.Open($"idx:{images}");
        Assert.Null(only.Get(0).Label);
        Assert.Equal(SampleKind.Image, only.Kind);
        // Labels given where images belong: the wrong magic is reported with the file name.
        var e = Assert.Throws<QuantSharpException>(() => DatasetSpec.Open($"idx:{images},{images}"));
        Assert.Contains(images, e.Message);
        // A label IDX as the "images" is a tensor dataset of scalars.
        var scalars = DatasetSpec.Open($"idx:{labels}");
        Assert.Equal(SampleKind.Tensor, scalars.Kind);
        Assert.Equal([], scalars.Get(0).Input.Shape);
    }

    [Fact]
    public void NpzSpecFindsConventionalNames()
    {
        var x = new Tensor<float>(Enumerable.Range(0, 24).Select(i => (float)i).ToArray(), [4, 2, 3]);
        var y = new Tensor<long>([3, 1, 4, 1], [4]);
        string file = Path.Combine(_dir, "data.npz");
        Npz.Write(file, [("other", new Tensor<int>([1], [1])), ("labels", y), ("images", x)]);
        var ds = DatasetSpec.Open($"npz:{file}");
        Assert.Equal(4, ds.Count);
        Assert.Equal(SampleKind.Tensor, ds.Kind);
        var (s, l) = ds.Get(2);
        Assert.Equal([2, 3], s.Shape);
        Assert.Equal([12f, 13, 14, 15, 16, 17], s.As<float>().Data);
        Assert.Equal(4, l);
        Assert.Equal([4, 2, 3], Batcher.Stack(ds, 0, 4).Input.Shape);

        var named = DatasetSpec.Open($"npz:{file}:images");
        Assert.Equal(4, named.Count);
        string plain = Path.Combine(_dir, "plain.npz");
        Npz.Write(plain, [("whatever", x)]);
        var unlabeled = DatasetSpec.Open($"npz:{plain}");
        Assert.Equal(4, unlabeled.Count);
        Assert.Null(unlabeled.Get(0).Label);

        string odd = Path.Combine(_dir, "odd.npz");
        Npz.Write(odd, [("a", x), ("b", y)]);
        Assert.Contains("no input array", Assert.Throws<QuantSharpException>(() => DatasetSpec.Open($"npz:{odd}")).Message);
        Assert.Equal(3, DatasetSpec.Open($"npz:{odd}:a,b").Get(0).Label);
        string bad = Path.Combine(_dir, "bad.npz");
        Npz.Write(bad, [("x", x), ("y", new Tensor<long>([1, 2], [2]))]);
        Assert.Contains("2 labels", Assert.Throws<QuantSharpException>(() => DatasetSpec.Open($"npz:{bad}")).Message);
        Assert.Contains("not found", Assert.Throws<QuantSharpException>(() => DatasetSpec.Open($"npz:{_dir}/missing.npz")).Message);
    }

    /// <summary>A CIFAR-10 batch of <paramref name="n"/> records: label i mod 10, pixel byte j of record i = (i + 7j) mod 256.</summary>
    private string WriteCifar(string name, int n, int labelOffset = 0)
    {
        var b = new byte[n * Cifar10Reader.RecordBytes];
        for (int i = 0; i < n; i++)
        {
            int o = i * Cifar10Reader.RecordBytes;
            b[o] = (byte)((i + labelOffset) % 10);
            for (int j = 0; j < Cifar10Reader.ImageBytes; j++) b[o + 1 + j] = (byte)((i + 7 * j) % 256);
        }
        string p = Path.Combine(_dir, name);
        File.WriteAllBytes(p, b);
        return p;
    }

    [Fact]
    public void Cifar10FilesAndDirectories()
    {
        string file = WriteCifar("test_batch.bin", 3);
        var (images, labels) = Cifar10Reader.Read(file);
        Assert.Equal([3, 3, 32, 32], images.Shape);
        Assert.Equal(new byte[] { 0, 1, 2 }, labels.Data);
        var ds = DatasetSpec.Open($"cifar10:{file}");
        Assert.Equal(3, ds.Count);
        var (img, label) = ds.Get(2);
        Assert.Equal(2, label);
        Assert.Equal([32, 32, 3], img.Shape);
        // HWC sample (y, x, c) is CHW byte c·1024 + 32y + x of the record.
        var px = img.As<byte>().Data;
        for (int y = 0; y < 32; y += 5)
            for (int x = 0; x < 32; x += 3)
                for (int c = 0; c < 3; c++)
                    Assert.Equal((byte)((2 + 7 * (c * 1024 + 32 * y + x)) % 256), px[(y * 32 + x) * 3 + c]);
        // Back to NCHW through the batcher gives the file's planes.
        var chw = Batcher.Stack(ds, 2, 1).Input.As<float>().Data;
        Assert.Equal(images.Data[(2 * 3072)..(3 * 3072)].Select(b => (float)b), chw);

        Assert.Equal(3, DatasetSpec.Open($"cifar10:{_dir}").Count);
        for (int k = 1; k <= 5; k++) WriteCifar($"data_batch_{k}.bin", 2, k);
        var train = DatasetSpec.Open($"cifar10:{_dir}:train");
        Assert.Equal(10, train.Count);
        Assert.Equal(1, train.Get(0).Label);
        Assert.Equal(5, train.Get(8).Label);

        string bad = Path.Combine(_dir, "bad.bin");
        File.WriteAllBytes(bad, new byte[3073 + 5]);
        Assert.Contains(bad, Assert.Throws<QuantSharpException>(() => DatasetSpec.Open($"cifar10:{bad}")).Message);
        var tooBig = new byte[3073];
        tooBig[0] = 10;
        File.WriteAllBytes(bad, tooBig);
        Assert.Contains("label 10", Assert.Throws<QuantSharpException>(() => DatasetSpec.Open($"cifar10:{bad}")).Message);
    }

    private static byte[] SmallPng(int w, int h, int value) =>
        new TestPngEncoder { Width = w, Height = h, ColorType = 2, BitDepth = 8 }.Encode(Enumerable.Repeat(value, w * h * 3).ToArray());

    [Fact]
    public void ImageFolders()
    {
        string numeric = Path.Combine(_dir, "numeric");
        foreach (var (label, count) in new[] { ("3", 2), ("10", 1) })
        {
            Directory.CreateDirectory(Path.Combine(numeric, label));
            for (int i = 0; i < count; i++) File.WriteAllBytes(Path.Combine(numeric, label, $"{i}.png"), SmallPng(4, 3, 40 + i));
        }
        File.WriteAllBytes(Path.Combine(numeric, "loose.PNG"), SmallPng(4, 3, 9));
        File.WriteAllText(Path.Combine(numeric, "notes.txt"), "not an image");
        var ds = DatasetSpec.Open($"images:{numeric}");
        Assert.Equal(4, ds.Count);
        Assert.Equal([null, 10, 3, 3], Enumerable.Range(0, 4).Select(i => ds.Get(i).Label));
        Assert.Equal([3, 4, 3], ds.Get(2).Input.Shape);
        Assert.Equal(40, ds.Get(2).Input.As<byte>().Data[0]);

        string named = Path.Combine(_dir, "named");
        foreach (string cls in new[] { "fish", "cat" })
        {
            Directory.CreateDirectory(Path.Combine(named, cls));
            File.Copy(TestPaths.SharedFile("models", "onnx", cls == "cat" ? "kitten_224.png" : "fish.png"), Path.Combine(named, cls, "a.png"));
        }
        var folder = (ImageFolderDataset)DatasetSpec.Open($"images:{named}");
        Assert.Equal(["cat", "fish"], folder.ClassNames);
        Assert.Equal([0, 1], Enumerable.Range(0, 2).Select(i => folder.Get(i).Label));
        // The kitten is RGBA and the fish RGB: both become 3-channel inputs, resized to the model's size.
        var batch = Batcher.Stack(folder, 0, 2, new ImagePreprocessing().ForInputShape([2, 3, 112, 112], ImageLayout.NCHW));
        Assert.Equal([2, 3, 112, 112], batch.Input.Shape);

        var single = DatasetSpec.Open($"images:{Path.Combine(numeric, "loose.PNG")}");
        Assert.Equal(1, single.Count);
        Assert.Contains("not found", Assert.Throws<QuantSharpException>(() => DatasetSpec.Open($"images:{Path.Combine(_dir, "none")}")).Message);
        Directory.CreateDirectory(Path.Combine(_dir, "empty"));
        Assert.Contains("no .png", Assert.Throws<QuantSharpException>(() => DatasetSpec.Open($"images:{Path.Combine(_dir, "empty")}")).Message);
    }

    [Fact]
    public void BadSpecsNameTheProblem()
    {
        var e = Assert.Throws<QuantSharpException>(() => DatasetSpec.Open("mp3:song.mp3"));
        Assert.Contains("unknown scheme 'mp3'", e.Message);
        Assert.Contains("SCHEME:ARGUMENT", Assert.Throws<QuantSharpException>(() => DatasetSpec.Open("justafile.npz")).Message);
        Assert.Contains("needs a path", Assert.Throws<QuantSharpException>(() => DatasetSpec.Open("images:")).Message);
        string missing = Path.Combine(_dir, "missing.gz");
        Assert.Contains(missing, Assert.Throws<QuantSharpException>(() => DatasetSpec.Open($"idx:{missing}")).Message);
        Assert.Contains("not found", Assert.Throws<QuantSharpException>(() => DatasetSpec.Open($"cifar10:{missing}")).Message);
        var rel = DatasetSpec.Open("idx:t10k-labels-idx1-ubyte.gz", new DatasetSpecOptions { BaseDirectory = MnistDir });
        Assert.Equal(10000, rel.Count);
    }
}
