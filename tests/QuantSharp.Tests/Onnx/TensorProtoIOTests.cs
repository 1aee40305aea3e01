using Google.Protobuf;
using QuantSharp.Onnx;
using QuantSharp.Onnx.Proto;
using QuantSharp.Tensors;
using QuantSharp.Tests.TestData;

namespace QuantSharp.Tests.Onnx;

public class TensorProtoIOTests
{
    private static void AssertSameTensor(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.DataType, actual.DataType);
        Assert.Equal(expected.Shape, actual.Shape);
        Assert.Equal(expected.Buffer.GetType(), actual.Buffer.GetType());
        Assert.Equal(expected.Buffer.Cast<object>(), actual.Buffer.Cast<object>());
    }

    public static IEnumerable<object[]> EveryDtype()
    {
        yield return [new Tensor<float>([1.5f, -2f, float.NaN, float.PositiveInfinity, 0f, -0f], [2, 3])];
        yield return [new Tensor<double>([1e300, -1e-300, double.NaN], [3])];
        yield return [new Tensor<byte>([0, 1, 255], [3])];
        yield return [new Tensor<sbyte>([-128, 0, 127], [1, 3])];
        yield return [new Tensor<ushort>([0, 65535, 7], [3])];
        yield return [new Tensor<short>([-32768, 32767, 0], [3])];
        yield return [new Tensor<int>([int.MinValue, int.MaxValue, 0, -1], [2, 2])];
        yield return [new Tensor<long>([long.MinValue, long.MaxValue, 3], [3])];
        yield return [new Tensor<uint>([uint.MaxValue, 0, 5], [3])];
        yield return [new Tensor<ulong>([ulong.MaxValue, 0, 5], [3])];
        yield return [new Tensor<bool>([true, false, true], [3])];
        yield return [new Tensor<string>(["", "abc", "ünïcödé ✓"], [3])];
        yield return [new Tensor<Half>([(Half)1.5f, Half.NaN, Half.NegativeInfinity, (Half)(-0.0f), Half.Epsilon], [5])];
        yield return [new Tensor<BFloat16>([(BFloat16)1.5f, BFloat16.FromBits(0x7FC1), BFloat16.FromBits(0x8000)], [3])];
        yield return [new Tensor<sbyte>([-8, 7, 0, -1, 3], [5], DataType.Int4)];
        yield return [new Tensor<sbyte>([-8, 7, 0, -1], [2, 2], DataType.Int4)];
        yield return [new Tensor<byte>([0, 15, 8, 1, 9], [5], DataType.UInt4)];
        yield return [new Tensor<byte>([0, 15, 8, 1, 9, 2, 4], [7], DataType.UInt4)];
        yield return [Tensor<float>.Scalar(3.25f)];
        yield return [Tensor<long>.Scalar(-7)];
        yield return [new Tensor<float>([], [0, 3])];
        yield return [new Tensor<sbyte>([], [0], DataType.Int4)];
        yield return [new Tensor<string>([], [2, 0])];
    }

    [Theory]
    [MemberData(nameof(EveryDtype))]
    public void RawDataRoundTripsEveryDtype(Tensor t)
    {
        var p = TensorProtoIO.FromTensor(t, "x");
        Assert.Equal("x", p.Name);
        Assert.Equal((int)t.DataType, p.DataType);
        if (t.DataType != DataType.String)
        {
            Assert.True(p.HasRawData);
            Assert.Equal(TensorProtoIO.ByteCount(t.DataType, t.Length), p.RawData.Length);
        }
        var parsed = TensorProto.Parser.ParseFrom(p.ToByteArray());
        AssertSameTensor(t, TensorProtoIO.ToTensor(parsed, null));
    }

    [Fact]
    public void FourBitValuesArePackedLowNibbleFirstAndSignExtended()
    {
        // Bytes 0x21, 0xF8, 0x07: nibbles low-first are 1, 2, 8, 15, 7 (the last high nibble is padding).
        var raw = ByteString.CopyFrom(0x21, 0xF8, 0x07);
        var i4 = new TensorProto { DataType = (int)DataType.Int4, Dims = { 5 }, RawData = raw };
        Assert.Equal(new sbyte[] { 1, 2, -8, -1, 7 }, TensorProtoIO.ToTensor(i4, null).As<sbyte>().Data);
        var u4 = new TensorProto { DataType = (int)DataType.UInt4, Dims = { 5 }, RawData = raw };
        Assert.Equal(new byte[] { 1, 2, 8, 15, 7 }, TensorProtoIO.ToTensor(u4, null).As<byte>().Data);
        var back = TensorProtoIO.FromTensor(new Tensor<sbyte>([1, 2, -8, -1, 7], [5], DataType.Int4), "q");
        Assert.Equal(raw, back.RawData);
        Assert.Throws<QuantSharpException>(() => TensorProtoIO.FromTensor(new Tensor<sbyte>([8], [1], DataType.Int4), "q"));
        Assert.Throws<QuantSharpException>(() => TensorProtoIO.FromTensor(new Tensor<byte>([16], [1], DataType.UInt4), "q"));
    }

    [Fact]
    public void TypedFieldsDecodeForEveryDtype()
    {
        Tensor Read(DataType dt, long[] dims, Action<TensorProto> fill)
        {
            var p = new TensorProto { Name = "t", DataType = (int)dt };
            p.Dims.Add(dims);
            fill(p);
            return TensorProtoIO.ToTensor(TensorProto.Parser.ParseFrom(p.ToByteArray()), null);
        }

        Assert.Equal(new[] { 1f, 2f }, Read(DataType.Float, [2], p => p.FloatData.Add([1f, 2f])).As<float>().Data);
        Assert.Equal(new[] { 1.0, 2.5 }, Read(DataType.Double, [2], p => p.DoubleData.Add([1.0, 2.5])).As<double>().Data);
        Assert.Equal(new[] { -5L }, Read(DataType.Int64, [], p => p.Int64Data.Add(-5)).As<long>().Data);
        Assert.Equal(new[] { ulong.MaxValue }, Read(DataType.UInt64, [1], p => p.Uint64Data.Add(ulong.MaxValue)).As<ulong>().Data);
        Assert.Equal(new[] { uint.MaxValue }, Read(DataType.UInt32, [1], p => p.Uint64Data.Add(uint.MaxValue)).As<uint>().Data);
        Assert.Equal(new[] { -3, 4 }, Read(DataType.Int32, [2], p => p.Int32Data.Add([-3, 4])).As<int>().Data);
        Assert.Equal(new short[] { -3, 4 }, Read(DataType.Int16, [2], p => p.Int32Data.Add([-3, 4])).As<short>().Data);
        Assert.Equal(new ushort[] { 65535 }, Read(DataType.UInt16, [1], p => p.Int32Data.Add(65535)).As<ushort>().Data);
        Assert.Equal(new sbyte[] { -128 }, Read(DataType.Int8, [1], p => p.Int32Data.Add(-128)).As<sbyte>().Data);
        Assert.Equal(new byte[] { 200 }, Read(DataType.UInt8, [1], p => p.Int32Data.Add(200)).As<byte>().Data);
        Assert.Equal(new[] { true, false }, Read(DataType.Bool, [2], p => p.Int32Data.Add([1, 0])).As<bool>().Data);
        Assert.Equal(new[] { (Half)1.5f }, Read(DataType.Float16, [1], p => p.Int32Data.Add(BitConverter.HalfToUInt16Bits((Half)1.5f))).As<Half>().Data);
        Assert.Equal(new[] { (BFloat16)(-2f) }, Read(DataType.BFloat16, [1], p => p.Int32Data.Add(((BFloat16)(-2f)).Bits)).As<BFloat16>().Data);
        Assert.Equal(new sbyte[] { 1, -1, 7 }, Read(DataType.Int4, [3], p => p.Int32Data.Add([0xF1, 0x07])).As<sbyte>().Data);
        Assert.Equal(new byte[] { 1, 15, 7 }, Read(DataType.UInt4, [3], p => p.Int32Data.Add([0xF1, 0x07])).As<byte>().Data);
        Assert.Equal(new[] { "a", "é" }, Read(DataType.String, [2], p => p.StringData.Add([ByteString.CopyFromUtf8("a"), ByteString.CopyFromUtf8("é")])).As<string>().Data);
        Assert.Empty(Read(DataType.Float, [0], _ => { }).As<float>().Data);
    }

    [Theory]
    [InlineData(new long[] { 1L << 40 }, "more than")]
    [InlineData(new long[] { 1L << 20, 1L << 20, 1L << 20 }, "more than")]
    [InlineData(new long[] { long.MaxValue, 2 }, "more than")]
    [InlineData(new long[] { 2, -3 }, "negative dimension")]
    public void AbsurdDimsAreRefusedWithoutAllocating(long[] dims, string expected)
    {
        var p = new TensorProto { Name = "huge", DataType = (int)DataType.Float, RawData = ByteString.CopyFrom(new byte[8]) };
        p.Dims.Add(dims);
        var e = Assert.Throws<ModelFormatException>(() => TensorProtoIO.ToTensor(p, null));
        Assert.Contains("'huge'", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void WrongDataLengthsAreRefused()
    {
        var raw = new TensorProto { Name = "w", DataType = (int)DataType.Float, Dims = { 2, 2 }, RawData = ByteString.CopyFrom(new byte[15]) };
        var e = Assert.Throws<ModelFormatException>(() => TensorProtoIO.ToTensor(raw, null));
        Assert.Contains("'w'", e.Message);
        Assert.Contains("15 bytes", e.Message);

        var typed = new TensorProto { Name = "v", DataType = (int)DataType.Int64, Dims = { 3 }, Int64Data = { 1, 2 } };
        e = Assert.Throws<ModelFormatException>(() => TensorProtoIO.ToTensor(typed, null));
        Assert.Contains("int64_data has 2", e.Message);

        var none = new TensorProto { Name = "n", DataType = (int)DataType.Float, Dims = { 3 } };
        e = Assert.Throws<ModelFormatException>(() => TensorProtoIO.ToTensor(none, null));
        Assert.Contains("no data", e.Message);

        var badType = new TensorProto { Name = "b", DataType = 999, Dims = { 1 } };
        Assert.Throws<ModelFormatException>(() => TensorProtoIO.ToTensor(badType, null));

        var f8 = new TensorProto { Name = "f8", DataType = (int)DataType.Float8E4M3FN, Dims = { 1 }, RawData = ByteString.CopyFrom(1) };
        var u = Assert.Throws<QuantSharpException>(() => TensorProtoIO.ToTensor(f8, null));
        Assert.Contains("not supported", u.Message);
    }

    private static TensorProto External(string name, DataType dt, long[] dims, string location, long? offset = null, long? length = null)
    {
        var p = new TensorProto { Name = name, DataType = (int)dt, DataLocation = TensorProto.Types.DataLocation.External };
        p.Dims.Add(dims);
        p.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        if (offset is long o) p.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = o.ToString() });
        if (length is long l) p.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = l.ToString() });
        return p;
    }

    [Fact]
    public void ExternalDataIsReadRelativeToTheModelFolder()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            Directory.CreateDirectory(Path.Combine(dir, "sub"));
            var floats = new[] { 1f, -2f, 3.5f };
            var bytes = new byte[7].Concat(floats.SelectMany(BitConverter.GetBytes)).Concat(new byte[] { 0x21, 0x0F }).ToArray();
            File.WriteAllBytes(Path.Combine(dir, "sub", "w.bin"), bytes);

            var f = TensorProtoIO.ToTensor(External("w", DataType.Float, [3], "sub/w.bin", 7, 12), dir);
            Assert.Equal(floats, f.As<float>().Data);
            var q = TensorProtoIO.ToTensor(External("q", DataType.Int4, [3], "./sub/../sub/w.bin", 19), dir);
            Assert.Equal(new sbyte[] { 1, 2, -1 }, q.As<sbyte>().Data);

            var tooShort = Assert.Throws<ModelFormatException>(() => TensorProtoIO.ToTensor(External("s", DataType.Float, [10], "sub/w.bin"), dir));
            Assert.Contains("'s'", tooShort.Message);
            var wrongLength = Assert.Throws<ModelFormatException>(() => TensorProtoIO.ToTensor(External("l", DataType.Float, [3], "sub/w.bin", 0, 8), dir));
            Assert.Contains("length 8", wrongLength.Message);
            var missing = Assert.Throws<ModelFormatException>(() => TensorProtoIO.ToTensor(External("m", DataType.Float, [3], "nope.bin"), dir));
            Assert.Contains("'m'", missing.Message);
            Assert.Contains("nope.bin", missing.Message);
            Assert.Contains("not found", missing.Message);
            var noDir = Assert.Throws<ModelFormatException>(() => TensorProtoIO.ToTensor(External("d", DataType.Float, [3], "sub/w.bin"), null));
            Assert.Contains("'d'", noDir.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void ExternalLocationsLeavingTheModelFolderAreRefused()
    {
        var root = TestPaths.NewTempDir();
        try
        {
            var model = Path.Combine(root, "model");
            Directory.CreateDirectory(model);
            var outside = Path.Combine(root, "secret.bin");
            File.WriteAllBytes(outside, new byte[64]);
            var link = Path.Combine(model, "link.bin");
            File.CreateSymbolicLink(link, outside);
            foreach (var loc in new[] { "../secret.bin", outside, "sub/../../secret.bin", "link.bin", ".", "/etc/passwd" })
            {
                var e = Assert.Throws<ModelFormatException>(() => TensorProtoIO.ToTensor(External("evil", DataType.Float, [4], loc), model));
                Assert.Contains("'evil'", e.Message);
                Assert.Contains(loc, e.Message);
            }
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }

    [Fact]
    public void PbFilesRoundTripAndCorruptFilesAreRefused()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var path = Path.Combine(dir, "t.pb");
            var t = new Tensor<Half>([(Half)1, (Half)2, (Half)3], [1, 3]);
            TensorProtoIO.WriteFile(path, "input", t);
            var (name, back) = TensorProtoIO.ReadFile(path);
            Assert.Equal("input", name);
            AssertSameTensor(t, back);
            Assert.Single(Directory.GetFiles(dir));

            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..^3]);
            var e = Assert.Throws<ModelFormatException>(() => TensorProtoIO.ReadFile(path));
            Assert.Contains(path, e.Message);

            var random = new byte[4096];
            new Random(42).NextBytes(random);
            File.WriteAllBytes(path, random);
            Assert.ThrowsAny<QuantSharpException>(() => TensorProtoIO.ReadFile(path));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void EveryConformanceTensorFileDecodesAndReencodesLosslessly()
    {
        var failures = new List<string>();
        int read = 0;
        foreach (var c in ConformanceData.Cases())
        {
            // Only files for tensor-typed graph inputs/outputs hold TensorProtos (others are Sequence/Optional protos).
            var g = ModelProto.Parser.ParseFrom(File.ReadAllBytes(c.ModelPath)).Graph;
            var inits = g.Initializer.Select(i => i.Name).ToHashSet();
            var inTypes = g.Input.Where(i => !inits.Contains(i.Name)).Select(i => i.Type).ToArray();
            foreach (var ds in c.DataSets())
            {
                var files = ds.Inputs.Select((f, i) => (f, t: i < inTypes.Length ? inTypes[i] : null))
                    .Concat(ds.Outputs.Select((f, i) => (f, t: i < g.Output.Count ? g.Output[i].Type : null)));
                foreach (var (file, type) in files)
                {
                    if (type?.TensorType is null) continue;
                    var p = TensorProto.Parser.ParseFrom(File.ReadAllBytes(file));
                    if (!TensorProtoIO.IsSupported((DataType)p.DataType) || p.DataType == 0) continue;
                    try
                    {
                        var t = TensorProtoIO.ToTensor(p, null);
                        var again = TensorProtoIO.ToTensor(TensorProtoIO.FromTensor(t, p.Name), null);
                        if (!t.Buffer.Cast<object>().SequenceEqual(again.Buffer.Cast<object>()) || !t.Shape.SequenceEqual(again.Shape))
                            failures.Add($"{c}/{Path.GetFileName(ds.Dir)}/{Path.GetFileName(file)}: re-encoding changed the data");
                        read++;
                    }
                    catch (QuantSharpException e)
                    {
                        failures.Add($"{c}/{Path.GetFileName(ds.Dir)}/{Path.GetFileName(file)}: {e.Message}");
                    }
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(read > 1000, $"only {read} tensor files read");
    }
}
