using QuantSharp.Llm;
using QuantSharp.Llm.Gguf;
using QuantSharp.Llm.Quantization;
using QuantSharp.Tests.Llm;

namespace QuantSharp.Tests.Gguf;

/// <summary>Quantized stories260K models written to GGUF and read back bit for bit, with the documented type ids.</summary>
public class QuantizedGgufTests
{
    public static TheoryData<string, uint, uint> Types => new()
    {
        // type, id of a 64-wide row matrix, id of ffn_down (172-wide rows)
        { "q8_0", 8, QuantSharpTypes.Q8_0Padded },
        { "q4_0", 2, QuantSharpTypes.Q4_0Padded },
        { "q4_1", 3, QuantSharpTypes.Q4_1Padded },
        { "q4_k", QuantSharpTypes.Q4_KPadded, QuantSharpTypes.Q4_KPadded },
        { "int8-channel", QuantSharpTypes.Int8Channel, QuantSharpTypes.Int8Channel },
        { "int4-g32", QuantSharpTypes.Int4G32, QuantSharpTypes.Int4G32 },
        { "int4-g64", QuantSharpTypes.Int4G64, QuantSharpTypes.Int4G64 },
        { "int4-g128", QuantSharpTypes.Int4G128, QuantSharpTypes.Int4G128 },
        { "int3-g32", QuantSharpTypes.Int3G32, QuantSharpTypes.Int3G32 },
        { "int3-g64", QuantSharpTypes.Int3G64, QuantSharpTypes.Int3G64 },
        { "int3-g128", QuantSharpTypes.Int3G128, QuantSharpTypes.Int3G128 },
        { "int2-g32", QuantSharpTypes.Int2G32, QuantSharpTypes.Int2G32 },
        { "int2-g64", QuantSharpTypes.Int2G64, QuantSharpTypes.Int2G64 },
        { "int2-g128", QuantSharpTypes.Int2G128, QuantSharpTypes.Int2G128 },
        { "u8-tensor", QuantSharpTypes.U8Tensor, QuantSharpTypes.U8Tensor },
    };

    [Theory]
    [MemberData(nameof(Types))]
    public void QuantizedModelRoundTripsBitExactly(string type, uint idSquare, uint idDown)
    {
        var w = LlmTestData.Checkpoint.Weights;
        var q = LlmQuantizer.Quantize(w, new LlmQuantizeOptions { Type = type, DefaultKeep = true }, null).Weights;
        string dir = TestPaths.NewTempDir("qgguf");
        try
        {
            string path = Path.Combine(dir, "m.gguf");
            var stored = QuantizedGguf.Write(q, LlmTestData.Tokenizer, path, type, "rtn");
            using var f = GgufFile.Open(path);
            Assert.Equal(idSquare, (uint)f.Tensor("blk.0.attn_q.weight").Type);
            Assert.Equal(idDown, (uint)f.Tensor("blk.0.ffn_down.weight").Type);
            Assert.Equal(GgmlType.Q8_0, f.Tensor("token_embd.weight").Type); // kept at q8_0 by default
            Assert.Equal([64L, 172L], f.Tensor("blk.0.ffn_gate.weight").Dims);
            Assert.Equal(type, f.GetString("quantsharp.quantization.type"));
            if (stored.Any(s => s.Private))
                Assert.Contains($"{idDown}={QuantSharpTypes.Names[idDown]}", f.GetArray<string>("quantsharp.private_types", GgufValueType.String));
            var back = GgufLlama.LoadWeights(f);
            var a = q.Matrices.ToList();
            var b = back.Matrices.ToList();
            Assert.Equal(a.Count, b.Count);
            for (int i = 0; i < a.Count; i++)
            {
                Assert.Equal(a[i].TypeName, b[i].TypeName);
                Assert.Equal(a[i].Bytes, b[i].Bytes);
                var ra = new float[a[i].Cols];
                var rb = new float[a[i].Cols];
                for (int r = 0; r < a[i].Rows; r++)
                {
                    a[i].DequantizeRow(r, ra);
                    b[i].DequantizeRow(r, rb);
                    Assert.Equal(ra, rb);
                }
            }
            Assert.Equal(q.TotalBytes, back.TotalBytes);
            // Stored tensor bytes are the in-memory bytes (norms as F32).
            Assert.Equal(q.TotalBytes, stored.Sum(s => s.Bytes));
            // ReadFloats understands the private types too.
            var down = f.ReadFloats(f.Tensor("blk.1.ffn_down.weight"));
            var row = new float[172];
            q.Layers[1].W2.DequantizeRow(3, row);
            Assert.Equal(row, down.AsSpan(3 * 172, 172).ToArray());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void LoadedModelGivesIdenticalLogits()
    {
        var w = LlmTestData.Checkpoint.Weights;
        var q = LlmQuantizer.Quantize(w, new LlmQuantizeOptions { Type = "int3-g64" }, null).Weights;
        string dir = TestPaths.NewTempDir("qgguf");
        try
        {
            string path = Path.Combine(dir, "m.gguf");
            QuantizedGguf.Write(q, LlmTestData.Tokenizer, path, "int3-g64", "rtn");
            using var file = CausalLmLoader.Open(path);
            Assert.NotNull(file.Tokenizer);
            var d1 = new LlamaDecoder(q, 1);
            var d2 = new LlamaDecoder((LlamaWeights)file.Weights, 1);
            var s1 = d1.NewState();
            var s2 = d2.NewState();
            int[] toks = LlmTestData.Tokenizer.Encode("Once upon a time", bos: true);
            for (int p = 0; p < toks.Length; p++) Assert.Equal(d1.Forward(s1, toks[p], p), d2.Forward(s2, toks[p], p));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void CorruptPrivateTensorSizeIsAFormatError()
    {
        // A private type whose dims do not fit: 3-D.
        Assert.Null(QuantSharpTypes.TensorBytes((GgmlType)QuantSharpTypes.Int3G64, [64, 2, 2]));
        Assert.Equal(2L * 3 * 27, QuantSharpTypes.TensorBytes((GgmlType)QuantSharpTypes.Int3G64, [172, 2]));
        Assert.Equal(8L + 172 * 2, QuantSharpTypes.TensorBytes((GgmlType)QuantSharpTypes.U8Tensor, [172, 2]));
    }
}
