using System.Text;
using QuantSharp.Llm.Gguf;

namespace QuantSharp.Tests.Gguf;

public sealed class GgufFormatTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "qs-gguf-fmt-" + Guid.NewGuid().ToString("N"));

    public GgufFormatTests() => Directory.CreateDirectory(_dir);
    public void Dispose() => Directory.Delete(_dir, true);

    private string P(string name) => Path.Combine(_dir, name);

    private static GgufWriter Sample(uint alignment = 32)
    {
        var w = new GgufWriter(alignment);
        w.Add("u8", GgufValue.UInt8(200)).Add("i8", GgufValue.Int8(-100)).Add("u16", GgufValue.UInt16(60000)).Add("i16", GgufValue.Int16(-30000))
         .Add("u32", GgufValue.UInt32(4000000000)).Add("i32", GgufValue.Int32(-2000000000)).Add("f32", GgufValue.Float32(1.5f))
         .Add("bool", GgufValue.Bool(true)).Add("str", GgufValue.String("héllo ▁world")).Add("u64", GgufValue.UInt64(ulong.MaxValue))
         .Add("i64", GgufValue.Int64(long.MinValue)).Add("f64", GgufValue.Float64(Math.PI))
         .Add("arr.str", GgufValue.Array(["a", "", "<0x0A>"])).Add("arr.f32", GgufValue.Array([1f, -2.5f]))
         .Add("arr.i32", GgufValue.Array([1, 2, 3])).Add("arr.bool", GgufValue.Array([true, false]))
         .Add("arr.nested", GgufValue.Array([GgufValue.Array([1, 2]), GgufValue.Array(["x"])]));
        var a = Enumerable.Range(0, 3 * 5).Select(i => i * 0.25f).ToArray();
        w.AddTensor("a", [5, 3], GgmlType.F32, a);
        var b = Enumerable.Range(0, 64).Select(i => MathF.Sin(i)).ToArray();
        w.AddTensor("b", [32, 2], GgmlType.Q8_0, b);
        w.AddTensor("c", [7], GgmlType.F16, new float[] { 1, 2, 3, 4, 5, 6, 7 });
        return w;
    }

    [Fact]
    public void MetadataAndTensorInfosRoundTrip()
    {
        Sample().Write(P("s.gguf"));
        using var f = GgufFile.Open(P("s.gguf"));
        Assert.Equal(3u, f.Version);
        Assert.Equal(32u, f.Alignment);
        Assert.Equal(["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "u64", "i64", "f64", "arr.str", "arr.f32", "arr.i32", "arr.bool", "arr.nested"], f.Keys);
        Assert.Equal((byte)200, f.Get("u8").Value);
        Assert.Equal((sbyte)-100, f.Get("i8").Value);
        Assert.Equal((ushort)60000, f.Get("u16").Value);
        Assert.Equal((short)-30000, f.Get("i16").Value);
        Assert.Equal(4000000000u, f.Get("u32").Value);
        Assert.Equal(-2000000000, f.Get("i32").Value);
        Assert.Equal(1.5f, f.GetFloat32("f32"));
        Assert.Equal(true, f.Get("bool").Value);
        Assert.Equal("héllo ▁world", f.GetString("str"));
        Assert.Equal(ulong.MaxValue, f.Get("u64").Value);
        Assert.Equal(long.MinValue, f.Get("i64").Value);
        Assert.Equal(Math.PI, f.Get("f64").Value);
        Assert.Equal(["a", "", "<0x0A>"], f.GetArray<string>("arr.str", GgufValueType.String));
        Assert.Equal([1f, -2.5f], f.GetArray<float>("arr.f32", GgufValueType.Float32));
        Assert.Equal([true, false], f.GetArray<bool>("arr.bool", GgufValueType.Bool));
        Assert.Equal(GgufValue.Array([GgufValue.Array([1, 2]), GgufValue.Array(["x"])]), f.Get("arr.nested"));

        Assert.Equal(["a", "b", "c"], f.Tensors.Select(t => t.Name));
        var a = f.Tensor("a");
        Assert.Equal([5L, 3L], a.Dims);
        Assert.Equal(GgmlType.F32, a.Type);
        Assert.Equal(0, a.Offset);
        Assert.Equal(60, a.Bytes);
        var b = f.Tensor("b");
        Assert.Equal(GgmlType.Q8_0, b.Type);
        Assert.Equal(64, b.Offset); // 60 bytes of "a" padded to 64
        Assert.Equal(68, b.Bytes);
        var c = f.Tensor("c");
        Assert.Equal(160, c.Offset); // 64 + 68 = 132 → 160
        Assert.Equal(14, c.Bytes);
        Assert.Equal(0, f.DataOffset % 32);
        Assert.Equal(f.DataOffset + 192, f.FileBytes); // last tensor padded too
        Assert.Equal(Enumerable.Range(0, 15).Select(i => i * 0.25f), f.ReadFloats(a));
        Assert.Equal([1f, 2, 3, 4, 5, 6, 7], f.ReadFloats(c));
    }

    [Fact]
    public void HeaderBytesFollowTheSpecification()
    {
        Sample(64).Write(P("h.gguf"));
        var bytes = File.ReadAllBytes(P("h.gguf"));
        Assert.Equal("GGUF"u8.ToArray(), bytes[..4]);
        var r = new BinaryReader(new MemoryStream(bytes));
        r.ReadUInt32();
        Assert.Equal(3u, r.ReadUInt32());
        Assert.Equal(3ul, r.ReadUInt64()); // tensor_count
        Assert.Equal(18ul, r.ReadUInt64()); // 17 keys + general.alignment
        // First key: general.alignment = uint32 64 (added by the writer because it is not the default).
        Assert.Equal((ulong)"general.alignment".Length, r.ReadUInt64());
        Assert.Equal("general.alignment", Encoding.UTF8.GetString(r.ReadBytes(17)));
        Assert.Equal(4u, r.ReadUInt32());
        Assert.Equal(64u, r.ReadUInt32());
        // Second key: u8 = type 0, one byte.
        Assert.Equal(2ul, r.ReadUInt64());
        Assert.Equal("u8", Encoding.UTF8.GetString(r.ReadBytes(2)));
        Assert.Equal(0u, r.ReadUInt32());
        Assert.Equal(200, r.ReadByte());
        using var f = GgufFile.Open(P("h.gguf"));
        Assert.Equal(64u, f.Alignment);
        Assert.Equal(0, f.DataOffset % 64);
        Assert.All(f.Tensors, t => Assert.Equal(0, t.Offset % 64));
        // Padding between the tensor infos and the data section is zero.
        Assert.All(bytes[(int)(f.DataOffset - (f.DataOffset % 64 == 0 ? 0 : 1))..(int)f.DataOffset], x => Assert.Equal(0, x));
    }

    [Fact]
    public void OutputIsDeterministicAndReplacesAtomically()
    {
        Sample().Write(P("d1.gguf"));
        Sample().Write(P("d2.gguf"));
        Assert.Equal(File.ReadAllBytes(P("d1.gguf")), File.ReadAllBytes(P("d2.gguf")));
        Sample(64).Write(P("d1.gguf")); // overwrite in place
        Assert.NotEqual(File.ReadAllBytes(P("d1.gguf")), File.ReadAllBytes(P("d2.gguf")));
        Assert.Equal(["d1.gguf", "d2.gguf"], Directory.GetFiles(_dir).Select(Path.GetFileName).Order());
    }

    private string Corrupt(string name, Action<byte[]> edit, int? truncate = null)
    {
        Sample().Write(P("base.gguf"));
        var b = File.ReadAllBytes(P("base.gguf"));
        edit(b);
        File.WriteAllBytes(P(name), truncate is int n ? b[..n] : b);
        return P(name);
    }

    private static string Fails(string path)
    {
        var e = Assert.Throws<ModelFormatException>(() => GgufFile.Open(path).Dispose());
        Assert.Contains(Path.GetFileName(path), e.Message);
        return e.Message;
    }

    [Fact]
    public void CorruptFilesGiveClearErrors()
    {
        Assert.Contains("magic", Fails(Corrupt("m.gguf", b => b[0] = (byte)'X')));
        Assert.Contains("version 7", Fails(Corrupt("v.gguf", b => BitConverter.TryWriteBytes(b.AsSpan(4), 7u))));
        Assert.Contains("tensor_count", Fails(Corrupt("tc.gguf", b => BitConverter.TryWriteBytes(b.AsSpan(8), ulong.MaxValue / 2))));
        Assert.Contains("metadata_kv_count", Fails(Corrupt("kc.gguf", b => BitConverter.TryWriteBytes(b.AsSpan(16), 1ul << 40))));
        // First key's length field → absurd.
        Assert.Contains("string length", Fails(Corrupt("sl.gguf", b => BitConverter.TryWriteBytes(b.AsSpan(24), 1ul << 50))));
        Assert.Contains("does not fit", Fails(Corrupt("tr.gguf", _ => { }, truncate: 300)));
        using (var f = GgufFile.Open(P("base.gguf")))
        {
            // Cut into the last tensor's data.
            long cut = f.DataOffset + f.Tensor("c").Offset + 4;
            Assert.Contains("'c'", Fails(Corrupt("td.gguf", _ => { }, truncate: (int)cut)));
        }
        Assert.Throws<QuantSharpException>(() => GgufFile.Open(P("missing.gguf")));
    }

    [Fact]
    public void CorruptArrayCountAndTensorFieldsAreRejected()
    {
        Sample().Write(P("base.gguf"));
        var b = File.ReadAllBytes(P("base.gguf"));
        // Locate "arr.f32": its value is type 9, element type 6, count 2.
        int k = IndexOf(b, "arr.f32"u8.ToArray()) + 7;
        Assert.Equal(9, BitConverter.ToInt32(b, k));
        var c1 = (byte[])b.Clone();
        BitConverter.TryWriteBytes(c1.AsSpan(k + 8), 1ul << 60);
        File.WriteAllBytes(P("ac.gguf"), c1);
        Assert.Contains("arr.f32", Fails(P("ac.gguf")));

        // Tensor "b": n_dims, ne, type, offset follow the name.
        int t = IndexOf(b, "\u0001\0\0\0\0\0\0\0b"u8.ToArray()) + 9;
        var c2 = (byte[])b.Clone();
        BitConverter.TryWriteBytes(c2.AsSpan(t + 4 + 16), 99u);
        File.WriteAllBytes(P("ty.gguf"), c2);
        Assert.Contains("unknown ggml type 99", Fails(P("ty.gguf")));
        var c3 = (byte[])b.Clone();
        BitConverter.TryWriteBytes(c3.AsSpan(t + 4 + 16 + 4), 65ul);
        File.WriteAllBytes(P("of.gguf"), c3);
        Assert.Contains("alignment", Fails(P("of.gguf")));
        var c4 = (byte[])b.Clone();
        BitConverter.TryWriteBytes(c4.AsSpan(t + 4), 33ul); // ne[0] = 33 is not whole Q8_0 blocks
        File.WriteAllBytes(P("ne.gguf"), c4);
        Assert.Contains("block size", Fails(P("ne.gguf")));
        var c5 = (byte[])b.Clone();
        BitConverter.TryWriteBytes(c5.AsSpan(t + 4 + 16 + 4), 0ul); // "b" now overlaps "a"
        File.WriteAllBytes(P("ov.gguf"), c5);
        Assert.Contains("overlap", Fails(P("ov.gguf")));
    }

    private static int IndexOf(byte[] hay, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= hay.Length; i++)
            if (hay.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        throw new InvalidOperationException("pattern not found");
    }

    [Fact]
    public void WriterRejectsInconsistentInput()
    {
        var w = new GgufWriter();
        w.Add("k", "v");
        Assert.Throws<ArgumentException>(() => w.Add("k", "again"));
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", [4], GgmlType.F32, new byte[15]));
        Assert.Throws<QuantSharpException>(() => w.AddTensor("q", [33, 1], GgmlType.Q4_0, new float[33]));
        Assert.Throws<ArgumentException>(() => new GgufWriter(48));
    }

    [Fact]
    public void BlockSizesMatchGgml()
    {
        Assert.Equal((32, 34), (GgmlTypes.BlockSize(GgmlType.Q8_0), GgmlTypes.TypeSize(GgmlType.Q8_0)));
        Assert.Equal((32, 18), (GgmlTypes.BlockSize(GgmlType.Q4_0), GgmlTypes.TypeSize(GgmlType.Q4_0)));
        Assert.Equal((32, 20), (GgmlTypes.BlockSize(GgmlType.Q4_1), GgmlTypes.TypeSize(GgmlType.Q4_1)));
        Assert.Equal((256, 144), (GgmlTypes.BlockSize(GgmlType.Q4_K), GgmlTypes.TypeSize(GgmlType.Q4_K)));
        Assert.Equal([0u, 1u, 2u, 3u, 8u, 12u, 30u], new[] { GgmlType.F32, GgmlType.F16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.BF16 }.Select(t => (uint)t));
    }
}
