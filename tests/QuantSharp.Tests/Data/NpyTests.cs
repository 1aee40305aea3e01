using System.IO.Compression;
using System.Text;
using QuantSharp.Data;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Data;

public class NpyTests
{
    private static string Fixture(string name) => Path.Combine(TestPaths.RepoRoot, "tests", "QuantSharp.Tests", "Data", "Fixtures", name);

    /// <summary>The fixture formula (see Fixtures/make_npy_fixtures.py): v(i) = (7i mod 11) − 5, +5 for unsigned, v &gt; 0 for bool.</summary>
    private static double V(int i, DataType t) => t switch
    {
        DataType.Bool => (i * 7 % 11 - 5) > 0 ? 1 : 0,
        DataType.UInt8 or DataType.UInt16 => i * 7 % 11,
        _ => i * 7 % 11 - 5,
    };

    private static void AssertFormula(Tensor t, DataType type, params int[] shape)
    {
        Assert.Equal(type, t.DataType);
        Assert.Equal(shape, t.Shape);
        for (int i = 0; i < t.Length; i++) Assert.Equal(V(i, type), t.GetDouble(i));
    }

    [Fact]
    public void ReadsNumPyWrittenFiles()
    {
        AssertFormula(Npy.Read(Fixture("f4_c.npy")), DataType.Float, 3, 4);
        AssertFormula(Npy.Read(Fixture("f8_big_endian.npy")), DataType.Double, 2, 3);
        AssertFormula(Npy.Read(Fixture("i4_big_endian.npy")), DataType.Int32, 4);
        AssertFormula(Npy.Read(Fixture("i8_fortran.npy")), DataType.Int64, 2, 3, 4);
        AssertFormula(Npy.Read(Fixture("f4_scalar.npy")), DataType.Float);
        AssertFormula(Npy.Read(Fixture("u1_empty.npy")), DataType.UInt8, 0);
        foreach (int v in new[] { 1, 2, 3 }) AssertFormula(Npy.Read(Fixture($"f2_v{v}.npy")), DataType.Float16, 3, 5);
    }

    [Theory]
    [InlineData("all_dtypes_stored.npz")]
    [InlineData("all_dtypes_deflated.npz")]
    public void ReadsNumPyWrittenNpz(string file)
    {
        var arrays = Npz.Read(Fixture(file));
        var byName = arrays.ToDictionary(a => a.Name, a => a.Tensor);
        var types = new Dictionary<string, DataType>
        {
            ["f4"] = DataType.Float, ["f8"] = DataType.Double, ["f2"] = DataType.Float16, ["u1"] = DataType.UInt8,
            ["i1"] = DataType.Int8, ["i2"] = DataType.Int16, ["u2"] = DataType.UInt16, ["i4"] = DataType.Int32,
            ["i8"] = DataType.Int64, ["b1"] = DataType.Bool,
        };
        foreach (var (code, type) in types) AssertFormula(byName["t_" + code], type, 2, 3, 4);
        AssertFormula(byName["scalar_f4"], DataType.Float);
        AssertFormula(byName["empty_i4"], DataType.Int32, 0, 3);
        AssertFormula(byName["vector_u2"], DataType.UInt16, 5);
        Assert.Equal("t_f4", arrays[0].Name);
    }

    /// <summary>One tensor of each writable dtype with values from the fixture formula.</summary>
    private static Tensor Make(DataType type, int[] shape)
    {
        var t = Tensor.Zeros(type, shape);
        for (int i = 0; i < t.Length; i++)
        {
            double v = V(i, type);
            switch (t)
            {
                case Tensor<float> f: f.Data[i] = (float)v; break;
                case Tensor<double> d: d.Data[i] = v; break;
                case Tensor<Half> h: h.Data[i] = (Half)v; break;
                case Tensor<byte> b: b.Data[i] = (byte)v; break;
                case Tensor<sbyte> sb: sb.Data[i] = (sbyte)v; break;
                case Tensor<short> s: s.Data[i] = (short)v; break;
                case Tensor<ushort> us: us.Data[i] = (ushort)v; break;
                case Tensor<int> n: n.Data[i] = (int)v; break;
                case Tensor<uint> u: u.Data[i] = (uint)(v + 5); break;
                case Tensor<long> l: l.Data[i] = (long)v * 1_000_000_007L; break;
                case Tensor<ulong> ul: ul.Data[i] = (ulong)(v + 5) << 40; break;
                case Tensor<bool> bo: bo.Data[i] = v != 0; break;
                case Tensor<BFloat16> bf: bf.Data[i] = (BFloat16)(float)v; break;
            }
        }
        return t;
    }

    public static readonly DataType[] WritableTypes =
    [
        DataType.Float, DataType.Double, DataType.Float16, DataType.UInt8, DataType.Int8, DataType.Int16, DataType.UInt16,
        DataType.Int32, DataType.UInt32, DataType.Int64, DataType.UInt64, DataType.Bool,
    ];

    public static readonly int[][] Shapes = [[], [1], [7], [2, 3], [2, 0, 3], [0], [3, 1, 2, 2]];

    private static void AssertSame(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.DataType, actual.DataType);
        Assert.Equal(expected.Shape, actual.Shape);
        Assert.Equal(expected.Buffer.Cast<object>(), actual.Buffer.Cast<object>());
    }

    [Fact]
    public void NpyRoundTripsEveryDtypeAndShape()
    {
        foreach (var type in WritableTypes)
            foreach (var shape in Shapes)
            {
                var t = Make(type, shape);
                var ms = new MemoryStream();
                Npy.Write(ms, t, "mem");
                Assert.Equal(0, (ms.Length - t.Length * (DataTypes.BitsPerElement(type) / 8)) % 64);
                ms.Position = 0;
                AssertSame(t, Npy.Read(ms, "mem"));
            }
    }

    [Fact]
    public void WidensTypesNumPyLacks()
    {
        var bf = Make(DataType.BFloat16, [2, 2]);
        var ms = new MemoryStream();
        Npy.Write(ms, bf, "bf");
        ms.Position = 0;
        var back = Npy.Read(ms, "bf");
        Assert.Equal(DataType.Float, back.DataType);
        for (int i = 0; i < 4; i++) Assert.Equal(bf.GetDouble(i), back.GetDouble(i));

        var i4 = new Tensor<sbyte>([-8, 7, 0], [3], DataType.Int4);
        ms = new MemoryStream();
        Npy.Write(ms, i4, "i4");
        ms.Position = 0;
        Assert.Equal(new sbyte[] { -8, 7, 0 }, Npy.Read(ms, "i4").As<sbyte>().Data);

        var s = new Tensor<string>(["a"], [1]);
        Assert.Contains("cannot be written", Assert.Throws<QuantSharpException>(() => Npy.Write(new MemoryStream(), s, "str")).Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void NpzRoundTripsAtomically(bool compress)
    {
        string dir = TestPaths.NewTempDir();
        try
        {
            var arrays = new List<(string, Tensor)>();
            foreach (var type in WritableTypes)
                for (int s = 0; s < Shapes.Length; s++) arrays.Add(($"{DataTypes.Name(type)}_{s}", Make(type, Shapes[s])));
            string path = Path.Combine(dir, "out.npz");
            File.WriteAllText(path, "old content that must be replaced");
            Npz.Write(path, arrays, compress);
            Assert.Equal(["out.npz"], Directory.GetFiles(dir).Select(Path.GetFileName));
            var back = Npz.Read(path);
            Assert.Equal(arrays.Select(a => a.Item1), back.Select(b => b.Name));
            for (int i = 0; i < arrays.Count; i++) AssertSame(arrays[i].Item2, back[i].Tensor);
            using var zip = ZipFile.OpenRead(path);
            Assert.All(zip.Entries, e => Assert.EndsWith(".npy", e.FullName));
            if (compress) Assert.True(zip.Entries.Sum(e => e.CompressedLength) < zip.Entries.Sum(e => e.Length));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void FailedWriteLeavesNoFileBehind()
    {
        string dir = TestPaths.NewTempDir();
        try
        {
            string path = Path.Combine(dir, "out.npz");
            File.WriteAllText(path, "previous");
            var bad = new List<(string, Tensor)> { ("a", Make(DataType.Float, [2])), ("s", new Tensor<string>(["x"], [1])) };
            Assert.Throws<QuantSharpException>(() => Npz.Write(path, bad));
            Assert.Equal("previous", File.ReadAllText(path));
            Assert.Single(Directory.GetFiles(dir));
            Assert.Throws<QuantSharpException>(() => Npz.Write(path, [("a", Make(DataType.Float, [2])), ("a", Make(DataType.Float, [2]))]));
            Assert.Contains("does not exist", Assert.Throws<QuantSharpException>(
                () => Npz.Write(Path.Combine(dir, "nodir", "x.npz"), [("a", Make(DataType.Float, [1]))])).Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static byte[] NpyBytes(string header, int dataBytes, byte major = 1)
    {
        var h = Encoding.ASCII.GetBytes(header + "\n");
        var b = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', major, 0 };
        if (major == 1) b.AddRange(BitConverter.GetBytes((ushort)h.Length));
        else b.AddRange(BitConverter.GetBytes((uint)h.Length));
        b.AddRange(h);
        b.AddRange(new byte[dataBytes]);
        return b.ToArray();
    }

    private static string ReadError(byte[] bytes) =>
        Assert.Throws<QuantSharpException>(() => Npy.Read(new MemoryStream(bytes), "bad.npy")).Message;

    [Fact]
    public void CorruptNpyGivesClearErrors()
    {
        Assert.Equal([2, 3], Npy.Read(new MemoryStream(NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24)), "ok").Shape);
        Assert.Contains("bad magic", ReadError([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
        Assert.Contains("truncated", ReadError(NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 23)));
        Assert.Contains("truncated", ReadError(NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0)[..20]));
        Assert.Contains("'<U3' is not supported", ReadError(NpyBytes("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", 24)));
        Assert.Contains("'|O' is not supported", ReadError(NpyBytes("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16)));
        Assert.Contains("structured", ReadError(NpyBytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8)));
        Assert.Contains("shape", ReadError(NpyBytes("{'descr': '<f4', 'fortran_order': False}", 8)));
        Assert.Contains("version 4.0", ReadError(NpyBytes("{}", 0, 4)));
        // A header claiming far more data than the stream holds fails before allocating it.
        Assert.Contains("needs 4000000000", ReadError(NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,), }", 8)));
        Assert.Contains("more than", ReadError(NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }", 8)));
        Assert.Contains("bad.npy", ReadError(NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 8)));
        // Version 2.0 with a uint32 header length and double quotes.
        Assert.Equal(DataType.Int16, Npy.Read(new MemoryStream(NpyBytes("{\"descr\": \"<i2\", \"fortran_order\": False, \"shape\": (3,)}", 6, 2)), "v2").DataType);
    }

    [Fact]
    public void CorruptNpzGivesClearErrors()
    {
        string dir = TestPaths.NewTempDir();
        try
        {
            string notZip = Path.Combine(dir, "x.npz");
            File.WriteAllText(notZip, "this is not a zip archive at all, just text padded out a little");
            var e = Assert.Throws<QuantSharpException>(() => Npz.Read(notZip));
            Assert.Contains(notZip, e.Message);
            string ok = Path.Combine(dir, "ok.npz");
            Npz.Write(ok, [("a", Make(DataType.Float, [2]))]);
            using var archive = NpzArchive.Open(ok);
            Assert.Contains("no array 'b'", Assert.Throws<QuantSharpException>(() => archive.Read("b")).Message);
            Assert.Contains("not found", Assert.Throws<QuantSharpException>(() => Npz.Read(Path.Combine(dir, "none.npz"))).Message);

            // Truncated archive, and damaged deflate data inside an entry.
            string big = Path.Combine(dir, "big.npz");
            Npz.Write(big, [("a", Make(DataType.Int32, [50, 40]))], compress: true);
            var bytes = File.ReadAllBytes(big);
            string cut = Path.Combine(dir, "cut.npz");
            File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
            Assert.Contains(cut, Assert.ThrowsAny<QuantSharpException>(() => Npz.Read(cut)).Message);
            string damaged = Path.Combine(dir, "damaged.npz");
            for (int i = 60; i < 120; i++) bytes[i] ^= 0x5A;
            File.WriteAllBytes(damaged, bytes);
            Assert.Contains(damaged, Assert.ThrowsAny<QuantSharpException>(() => Npz.Read(damaged)).Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
