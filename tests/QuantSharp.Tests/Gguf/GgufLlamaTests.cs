using QuantSharp.Llm;
using QuantSharp.Llm.Gguf;
using QuantSharp.Tests.Llm;

namespace QuantSharp.Tests.Gguf;

/// <summary>
/// stories260K exported to GGUF in every type, read back and checked field by field against the GGUF specification;
/// block data is decoded by an independent decoder written here (not the library's) and compared with the source.
/// </summary>
public sealed class GgufLlamaTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "qs-gguf-llama-" + Guid.NewGuid().ToString("N"));

    public GgufLlamaTests() => Directory.CreateDirectory(_dir);
    public void Dispose() => Directory.Delete(_dir, true);

    private (string Path, GgufExportReport Report) Export(GgmlType type)
    {
        string path = Path.Combine(_dir, $"stories260K-{GgmlTypes.Name(type)}.gguf");
        var report = GgufLlama.Export(LlmTestData.Checkpoint.Weights, LlmTestData.Tokenizer, path, type, "stories260K");
        return (path, report);
    }

    /// <summary>GGUF name → source matrix (rows, cols, row-major values) or norm vector.</summary>
    private static Dictionary<string, (int Rows, int Cols, float[] Values)> Source()
    {
        var w = LlmTestData.Checkpoint.Weights;
        var d = new Dictionary<string, (int, int, float[])>();
        void M(string n, WeightMatrix m)
        {
            var v = new float[m.Rows * m.Cols];
            for (int r = 0; r < m.Rows; r++) m.DequantizeRow(r, v.AsSpan(r * m.Cols, m.Cols));
            d[n] = (m.Rows, m.Cols, v);
        }
        void V(string n, float[] v) => d[n] = (1, v.Length, v);
        M("token_embd.weight", w.TokenEmbedding);
        for (int i = 0; i < w.Layers.Count; i++)
        {
            var l = w.Layers[i];
            V($"blk.{i}.attn_norm.weight", l.RmsAtt);
            M($"blk.{i}.attn_q.weight", l.Wq);
            M($"blk.{i}.attn_k.weight", l.Wk);
            M($"blk.{i}.attn_v.weight", l.Wv);
            M($"blk.{i}.attn_output.weight", l.Wo);
            V($"blk.{i}.ffn_norm.weight", l.RmsFfn);
            M($"blk.{i}.ffn_gate.weight", l.W1);
            M($"blk.{i}.ffn_down.weight", l.W2);
            M($"blk.{i}.ffn_up.weight", l.W3);
        }
        V("output_norm.weight", w.RmsFinal);
        return d;
    }

    public static TheoryData<GgmlType> Types => new() { GgmlType.F32, GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1 };

    [Theory]
    [MemberData(nameof(Types))]
    public void HeaderMetadataAndTensorInfosFollowTheSpecification(GgmlType type)
    {
        var (path, report) = Export(type);
        var c = LlmTestData.Checkpoint.Weights.Config;
        using var f = GgufFile.Open(path);
        Assert.Equal(3u, f.Version);
        Assert.Equal(32u, f.Alignment);
        Assert.Equal(0, f.DataOffset % 32);
        Assert.Equal("llama", f.GetString("general.architecture"));
        Assert.Equal("stories260K", f.GetString("general.name"));
        Assert.Equal(GgufValue.UInt32(GgufLlama.FileType(type)), f.Get("general.file_type"));
        Assert.Equal(GgufValue.UInt32((uint)c.SeqLen), f.Get("llama.context_length"));
        Assert.Equal(GgufValue.UInt32(64), f.Get("llama.embedding_length"));
        Assert.Equal(GgufValue.UInt32(5), f.Get("llama.block_count"));
        Assert.Equal(GgufValue.UInt32(172), f.Get("llama.feed_forward_length"));
        Assert.Equal(GgufValue.UInt32(8), f.Get("llama.rope.dimension_count"));
        Assert.Equal(GgufValue.UInt32(8), f.Get("llama.attention.head_count"));
        Assert.Equal(GgufValue.UInt32(4), f.Get("llama.attention.head_count_kv"));
        Assert.Equal(GgufValue.Float32(1e-5f), f.Get("llama.attention.layer_norm_rms_epsilon"));
        Assert.Equal(GgufValue.Float32(10000f), f.Get("llama.rope.freq_base"));
        Assert.Equal("llama", f.GetString("tokenizer.ggml.model"));
        Assert.Equal(GgufValue.UInt32(1), f.Get("tokenizer.ggml.bos_token_id"));
        Assert.Equal(GgufValue.UInt32(2), f.Get("tokenizer.ggml.eos_token_id"));
        Assert.Equal(GgufValue.UInt32(0), f.Get("tokenizer.ggml.unknown_token_id"));

        var tok = LlmTestData.Tokenizer;
        var tokens = f.GetArray<string>("tokenizer.ggml.tokens", GgufValueType.String);
        var scores = f.GetArray<float>("tokenizer.ggml.scores", GgufValueType.Float32);
        var types = f.GetArray<int>("tokenizer.ggml.token_type", GgufValueType.Int32);
        Assert.Equal(512, tokens.Length);
        Assert.Equal(["<unk>", "<s>", "</s>", "<0x00>"], tokens[..4]);
        Assert.Equal([2, 3, 3], types[..3]);
        Assert.All(Enumerable.Range(3, 256), i => Assert.Equal((6, $"<0x{i - 3:X2}>"), (types[i], tokens[i])));
        Assert.All(Enumerable.Range(259, 512 - 259), i => Assert.Equal(1, types[i]));
        Assert.All(tokens, t => Assert.DoesNotContain(' ', t));
        for (int i = 0; i < 512; i++) Assert.Equal(tok.Score(i), scores[i]);
        for (int i = 259; i < 512; i++)
            Assert.Equal(System.Text.Encoding.UTF8.GetString(tok.Piece(i)).Replace(' ', '\u2581'), tokens[i]);

        // Tensor infos: llama.cpp names in llama.cpp's order, ne[0] = row length, block types only where rows are
        // whole blocks (W2's rows are 172 long → F16), offsets aligned and packed in file order.
        var src = Source();
        var expectedNames = new List<string> { "token_embd.weight" };
        for (int i = 0; i < 5; i++)
            expectedNames.AddRange(new[] { "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up" }.Select(n => $"blk.{i}.{n}.weight"));
        expectedNames.Add("output_norm.weight");
        Assert.Equal(expectedNames, f.Tensors.Select(t => t.Name));
        long next = 0;
        foreach (var t in f.Tensors)
        {
            var (rows, cols, _) = src[t.Name];
            bool norm = t.Name.Contains("norm");
            Assert.Equal(norm ? [(long)cols] : [(long)cols, rows], t.Dims);
            GgmlType want = norm ? GgmlType.F32 : type is GgmlType.F32 or GgmlType.F16 || cols % 32 == 0 ? type : GgmlType.F16;
            Assert.Equal(want, t.Type);
            Assert.Equal(next, t.Offset);
            Assert.Equal(0, t.Offset % 32);
            long blockBytes = want switch { GgmlType.F32 => 4 * cols, GgmlType.F16 => 2 * cols, GgmlType.Q8_0 => cols / 32 * 34, GgmlType.Q4_0 => cols / 32 * 18, _ => cols / 32 * 20 };
            Assert.Equal(blockBytes * rows, t.Bytes);
            next = (t.Offset + t.Bytes + 31) / 32 * 32;
        }
        Assert.Equal(f.DataOffset + next, f.FileBytes);
        Assert.Equal(f.FileBytes, report.FileBytes);
        Assert.Equal(type is GgmlType.F32 or GgmlType.F16 ? 0 : 5, report.Tensors.Count(t => t.FellBack));
        Assert.Equal(f.Tensors.Sum(t => t.Bytes), report.TensorBytes);
    }

    // ---- independent decoder of the ggml block layouts (written from the format description, not the library) ----
    private static float Half(ReadOnlySpan<byte> b, int at) => (float)BitConverter.ToHalf(b.Slice(at, 2));

    private static float[] DecodeIndependently(GgmlType type, ReadOnlySpan<byte> b, int n, out float[] blockScale)
    {
        var y = new float[n];
        blockScale = new float[Math.Max(1, n / 32)];
        switch (type)
        {
            case GgmlType.F32:
                for (int i = 0; i < n; i++) y[i] = BitConverter.ToSingle(b.Slice(4 * i, 4));
                break;
            case GgmlType.F16:
                for (int i = 0; i < n; i++) y[i] = Half(b, 2 * i);
                break;
            case GgmlType.Q8_0:
                for (int k = 0; k < n / 32; k++)
                {
                    var blk = b.Slice(k * 34, 34);
                    blockScale[k] = Half(blk, 0);
                    for (int j = 0; j < 32; j++) y[k * 32 + j] = blockScale[k] * unchecked((sbyte)blk[2 + j]);
                }
                break;
            case GgmlType.Q4_0:
                for (int k = 0; k < n / 32; k++)
                {
                    var blk = b.Slice(k * 18, 18);
                    blockScale[k] = Half(blk, 0);
                    for (int j = 0; j < 32; j++)
                    {
                        int q = j < 16 ? blk[2 + j] & 15 : blk[2 + j - 16] >> 4;
                        y[k * 32 + j] = blockScale[k] * (q - 8);
                    }
                }
                break;
            case GgmlType.Q4_1:
                for (int k = 0; k < n / 32; k++)
                {
                    var blk = b.Slice(k * 20, 20);
                    blockScale[k] = Half(blk, 0);
                    float m = Half(blk, 2);
                    for (int j = 0; j < 32; j++)
                    {
                        int q = j < 16 ? blk[4 + j] & 15 : blk[4 + j - 16] >> 4;
                        y[k * 32 + j] = blockScale[k] * q + m;
                    }
                }
                break;
            default: throw new InvalidOperationException(type.ToString());
        }
        return y;
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void TensorDataDecodesWithinTheFormatsErrorBound(GgmlType type)
    {
        var (path, _) = Export(type);
        using var f = GgufFile.Open(path);
        var src = Source();
        foreach (var t in f.Tensors)
        {
            var x = src[t.Name].Values;
            var y = DecodeIndependently(t.Type, f.TensorBytes(t), x.Length, out var scale);
            // The library's own dequantizer agrees with the independent one bit for bit.
            Assert.Equal(y, f.ReadFloats(t));
            for (int i = 0; i < x.Length; i++)
            {
                float s = Math.Abs(scale[i / 32 < scale.Length ? i / 32 : 0]);
                // Bounds per value: F32 exact; F16 relative 2⁻¹¹ (normal range) or 2⁻²⁴ absolute (subnormals);
                // Q8_0 half a step plus 127 steps' worth of the fp16 rounding of d; Q4_0 one step (the level opposite
                // the block's extreme clamps from 16 to 15); Q4_1 half a step plus fp16 rounding of d (15 steps) and m.
                double bound = t.Type switch
                {
                    GgmlType.F32 => 0,
                    GgmlType.F16 => Math.Abs(x[i]) * Math.Pow(2, -11) + Math.Pow(2, -24),
                    GgmlType.Q8_0 => s * (0.5 + 127 * Math.Pow(2, -11)) + 1e-7,
                    GgmlType.Q4_0 => s * (1 + 8 * Math.Pow(2, -11)) + 1e-7,
                    _ => s * (0.5 + 15 * Math.Pow(2, -11)) + BlockMinAbs(x, i) * Math.Pow(2, -11) + 1e-7,
                };
                Assert.True(Math.Abs(x[i] - y[i]) <= bound, $"{t.Name} ({t.Type}) [{i}]: {y[i]} vs source {x[i]}, bound {bound}");
            }
        }
    }

    private static double BlockMinAbs(float[] x, int i)
    {
        int b = i / 32 * 32;
        return Math.Abs(x.AsSpan(b, 32).ToArray().Min());
    }

    [Fact]
    public void DecoderRunFromF32GgufReproducesGoldenGreedy()
    {
        var (path, _) = Export(GgmlType.F32);
        using var f = GgufFile.Open(path);
        var w = GgufLlama.LoadWeights(f);
        Assert.Equal(LlmTestData.Checkpoint.Weights.Config, w.Config);
        var golden = LlmTestData.Golden.GetProperty("token_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var got = Generator.Generate(new LlamaDecoder(w), [Llama2cTokenizer.Bos], golden.Length - 1, new Sampler(0f)).ToList();
        Assert.Equal(golden.Skip(1), got);
    }

    [Fact]
    public void TokenizerRoundTripsThroughGguf()
    {
        var (path, _) = Export(GgmlType.Q8_0);
        using var f = GgufFile.Open(path);
        var tok = GgufLlama.LoadTokenizer(f);
        var orig = LlmTestData.Tokenizer;
        Assert.Equal(orig.VocabSize, tok.VocabSize);
        for (int i = 0; i < orig.VocabSize; i++)
        {
            Assert.True(orig.Piece(i).SequenceEqual(tok.Piece(i)), $"piece {i}");
            Assert.Equal(orig.Score(i), tok.Score(i));
        }
        string text = LlmTestData.Golden.GetProperty("text").GetString()!;
        Assert.Equal(orig.Encode(text), tok.Encode(text));
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q4_1)]
    public void QuantizedGgufLoadsAndRuns(GgmlType type)
    {
        var (path, report) = Export(type);
        using var f = GgufFile.Open(path);
        var w = GgufLlama.LoadWeights(f);
        // Block tensors stay in block form and dequantize to exactly what the file holds.
        var row = new float[w.Layers[0].Wq.Cols];
        Assert.Equal(GgmlTypes.Name(type), w.Layers[0].Wq.TypeName);
        Assert.True(w.Layers[0].Wq.UsesQ8Activations);
        var all = f.ReadFloats(f.Tensor("blk.0.attn_q.weight"));
        for (int r = 0; r < w.Layers[0].Wq.Rows; r++)
        {
            w.Layers[0].Wq.DequantizeRow(r, row);
            Assert.Equal(all.AsSpan(r * row.Length, row.Length).ToArray(), row);
        }
        Assert.Equal("f32", w.Layers[0].W2.TypeName); // the F16 fallback is dequantized
        var dec = new LlamaDecoder(w);
        var s = dec.NewState();
        var logits = dec.Forward(s, Llama2cTokenizer.Bos, 0);
        Assert.All(logits, v => Assert.True(float.IsFinite(v)));
        // Honest size: fewer bits than F16, more than the block type alone because W2 fell back to F16 and norms are F32.
        double blockBits = GgmlTypes.TypeSize(type) * 8.0 / 32;
        Assert.InRange(report.BitsPerWeight, blockBits, 16);
    }

    [Fact]
    public void Q4KExportOfStories260KFallsBackHonestly()
    {
        // No stories260K row is a multiple of 256, so every matrix is written as F16 and reported as a fallback.
        var (path, report) = Export(GgmlType.Q4_K);
        using var f = GgufFile.Open(path);
        Assert.All(report.Tensors.Where(t => t.Dims.Length == 2), t => Assert.True(t.FellBack && t.Written == GgmlType.F16, t.Name));
        Assert.Equal(GgufValue.UInt32(14), f.Get("general.file_type"));
        Assert.InRange(report.BitsPerWeight, 16, 16.1);
    }

    [Fact]
    public void LegacyAndVersion1CheckpointsExportToIdenticalBytes()
    {
        var (legacy, _) = Export(GgmlType.Q4_0);
        string v1Path = Path.Combine(_dir, "v1.gguf");
        using (var v1 = Llama2cCheckpoint.Open(LlmTestData.V1))
            GgufLlama.Export(v1.Weights, LlmTestData.Tokenizer, v1Path, GgmlType.Q4_0, "stories260K");
        Assert.Equal(File.ReadAllBytes(legacy), File.ReadAllBytes(v1Path));
    }

    [Fact]
    public void NonLlamaArchitectureIsRejected()
    {
        string path = Path.Combine(_dir, "gpt.gguf");
        new GgufWriter().Add("general.architecture", "gpt2").Write(path);
        using var f = GgufFile.Open(path);
        var e = Assert.Throws<ModelFormatException>(() => GgufLlama.LoadWeights(f));
        Assert.Contains("gpt.gguf", e.Message);
    }
}
