using System.Text;
using QuantSharp.Llm.HuggingFace;

namespace QuantSharp.Tests.Llm;

public class SafetensorsTests
{
    private static string Write(string header, byte[] data)
    {
        string path = Path.Combine(TestPaths.NewTempDir("qs-st"), "model.safetensors");
        var h = Encoding.UTF8.GetBytes(header);
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes((ulong)h.Length));
        f.Write(h);
        f.Write(data);
        return path;
    }

    [Fact]
    public void ReadsF32F16AndBf16Tensors()
    {
        var data = new List<byte>();
        data.AddRange(BitConverter.GetBytes(1.5f));
        data.AddRange(BitConverter.GetBytes(-2f));
        data.AddRange(BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)0.25f)));
        data.AddRange(BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)(-3f))));
        // bfloat16 of 1.0 is the top half of 0x3F800000.
        data.AddRange(BitConverter.GetBytes((ushort)0x3F80));
        data.AddRange(BitConverter.GetBytes((ushort)0xC040));
        string path = Write("{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," +
            "\"b\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[8,12]},\"c\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]}}", data.ToArray());
        using var f = SafetensorsFile.Open(path);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal([1.5f, -2f], f.ReadFloats(f.Tensors["a"]));
        Assert.Equal([0.25f, -3f], f.ReadFloats(f.Tensors["b"]));
        Assert.Equal([1f, -3f], f.ReadFloats(f.Tensors["c"]));
        Assert.Equal([1L, 2L], f.Tensors["b"].Shape);
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", "outside")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "needs 12 bytes")]
    [InlineData("{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", "dtype I64")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", "invalid dimension")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", "data_offsets")]
    [InlineData("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[2,6]}}", "overlap")]
    [InlineData("{\"a\": [1, 2", "not valid JSON")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", "outside")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2000000000,2000000000,2000000000],\"data_offsets\":[0,8]}}", "larger than the file")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "twice")]
    public void BadHeadersGiveOneLineErrorsNamingTheFile(string header, string expected)
    {
        string path = Write(header, new byte[8]);
        var e = Assert.Throws<ModelFormatException>(() => SafetensorsFile.Open(path));
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void AbsurdHeaderLengthAndTruncationAreRejected()
    {
        string path = Path.Combine(TestPaths.NewTempDir("qs-st"), "x.safetensors");
        File.WriteAllBytes(path, [.. BitConverter.GetBytes(1UL << 40), .. new byte[16]]);
        Assert.Contains("header length", Assert.Throws<ModelFormatException>(() => SafetensorsFile.Open(path)).Message);
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Contains("too short", Assert.Throws<ModelFormatException>(() => SafetensorsFile.Open(path)).Message);
    }

    [Fact]
    public void ShardIndexMustPointAtFilesHoldingTheTensors()
    {
        string dir = TestPaths.NewTempDir("qs-shard");
        foreach (var f in Directory.GetFiles(HfTestData.LlamaTiny)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        string index = Path.Combine(dir, "model.safetensors.index.json");
        File.WriteAllText(index, File.ReadAllText(index).Replace("\"model.norm.weight\": \"model-00002-of-00002.safetensors\"", "\"model.norm.weight\": \"model-00001-of-00002.safetensors\""));
        Assert.Contains("model.norm.weight", Assert.Throws<ModelFormatException>(() => SafetensorsCheckpoint.Open(dir)).Message);
        File.Delete(Path.Combine(dir, "model-00001-of-00002.safetensors"));
        Assert.Contains("not found", Assert.ThrowsAny<QuantSharpException>(() => SafetensorsCheckpoint.Open(dir)).Message);
    }

    [Fact]
    public void MissingTensorAndWrongShapeNameTheTensor()
    {
        string dir = TestPaths.NewTempDir("qs-hfbad");
        foreach (var f in Directory.GetFiles(HfTestData.Gpt2Tiny)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        string cfg = Path.Combine(dir, "config.json");
        File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("\"n_layer\": 2", "\"n_layer\": 3"));
        Assert.Contains("transformer.h.2.ln_1.weight", Assert.Throws<ModelFormatException>(() => HfCheckpoint.Open(dir)).Message);
        File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("\"n_layer\": 3", "\"n_layer\": 2").Replace("\"n_embd\": 32", "\"n_embd\": 16"));
        Assert.Contains("expected", Assert.Throws<ModelFormatException>(() => HfCheckpoint.Open(dir)).Message);
        File.WriteAllText(cfg, "{\"model_type\": \"bert\"}");
        Assert.Contains("bert", Assert.ThrowsAny<QuantSharpException>(() => HfCheckpoint.Open(dir)).Message);
    }
}
