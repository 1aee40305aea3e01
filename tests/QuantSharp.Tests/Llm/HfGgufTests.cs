using System.Text.Json;
using QuantSharp.Cli;
using QuantSharp.Llm;
using QuantSharp.Llm.Gguf;
using QuantSharp.Llm.Gpt2;
using QuantSharp.Llm.HuggingFace;
using QuantSharp.Llm.Quantization;

namespace QuantSharp.Tests.Llm;

/// <summary>
/// Hugging Face models (the tiny Llama and GPT-2 fixtures, stories260K in Hugging Face layout) written to GGUF by
/// <see cref="QuantizedGguf.Write"/> and read back: metadata and tensor layout against the GGUF/llama.cpp naming, the
/// same logits as the source model, and the stored tokenizer encoding like the source tokenizer.
/// </summary>
public class HfGgufTests
{
    private static float[][] Logits(ICausalLmWeights w, int[] tokens)
    {
        var s = w.CreateDecoder(1).NewSession();
        return tokens.Select((t, pos) => (float[])s.Forward(t, pos).Clone()).ToArray();
    }

    private static string Write(string dir, string source, string type, params KeepRule[] keep)
    {
        using var m = CausalLmLoader.Open(source);
        var o = new LlmQuantizeOptions { Type = type, Keep = keep, DefaultKeep = false };
        ICausalLmWeights q = m.Weights switch
        {
            LlamaWeights l => LlmQuantizer.Quantize(l, o, null).Weights,
            Gpt2Weights g => Gpt2Quantizer.Quantize(g, o).Weights,
            _ => throw new InvalidOperationException(),
        };
        string path = Path.Combine(dir, $"{Path.GetFileName(source)}-{type}.gguf");
        QuantizedGguf.Write(q, m.Tokenizer!, path, type, "rtn");
        return path;
    }

    [Fact]
    public void Gpt2GgufHasLlamaCppsGpt2LayoutAndTheSourceLogits()
    {
        string dir = TestPaths.NewTempDir("qs-hfgguf");
        try
        {
            string path = Write(dir, HfTestData.Gpt2Tiny, "f32");
            using var f = GgufFile.Open(path);
            Assert.Equal("gpt2", f.GetString("general.architecture"));
            using var src = CausalLmLoader.Open(HfTestData.Gpt2Tiny);
            var c = ((Gpt2Weights)src.Weights).Config;
            Assert.Equal((c.SeqLen, c.Dim, c.HiddenDim, c.Layers, c.Heads),
                (f.GetInt("gpt2.context_length"), f.GetInt("gpt2.embedding_length"), f.GetInt("gpt2.feed_forward_length"), f.GetInt("gpt2.block_count"), f.GetInt("gpt2.attention.head_count")));
            Assert.Equal(c.NormEps, f.GetFloat32("gpt2.attention.layer_norm_epsilon"));
            string[] perBlock = ["attn_norm.weight", "attn_norm.bias", "attn_qkv.weight", "attn_qkv.bias", "attn_output.weight", "attn_output.bias",
                "ffn_norm.weight", "ffn_norm.bias", "ffn_up.weight", "ffn_up.bias", "ffn_down.weight", "ffn_down.bias"];
            string[] expected = ["token_embd.weight", "position_embd.weight", .. Enumerable.Range(0, c.Layers).SelectMany(i => perBlock.Select(n => $"blk.{i}.{n}")),
                "output_norm.weight", "output_norm.bias"];
            Assert.Equal(expected, f.Tensors.Select(t => t.Name));
            Assert.Equal([(long)c.Dim, c.VocabSize], f.Tensor("token_embd.weight").Dims);
            Assert.Equal([(long)c.Dim, c.SeqLen], f.Tensor("position_embd.weight").Dims);
            Assert.Equal([(long)c.Dim, 3 * c.Dim], f.Tensor("blk.0.attn_qkv.weight").Dims);
            Assert.Equal([(long)c.Dim, c.HiddenDim], f.Tensor("blk.0.ffn_up.weight").Dims);
            Assert.Equal([(long)c.HiddenDim, c.Dim], f.Tensor("blk.0.ffn_down.weight").Dims);
            Assert.All(f.Tensors, t => Assert.Equal(GgmlType.F32, t.Type));
            Assert.Equal("gpt2", f.GetString("tokenizer.ggml.model"));
            Assert.Equal("gpt-2", f.GetString("tokenizer.ggml.pre"));

            // The FP16 source embeddings become FP32 exactly, so the logits are bit-identical.
            var r = HfTestData.LoadReference(HfTestData.Gpt2Tiny);
            using var back = CausalLmLoader.Open(path);
            Assert.Equal(Logits(src.Weights, r.Tokens), Logits(back.Weights, r.Tokens));
            var tok = Assert.IsType<BpeTokenizer>(back.Tokenizer);
            foreach (var (text, ids) in r.TokenizerCases)
            {
                Assert.Equal(ids, tok.Encode(text, bos: false));
                Assert.Equal(text, tok.Decode(ids));
            }
            Assert.Equal(src.Tokenizer!.EosId, tok.EosId);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Theory]
    [InlineData("q8_0")]
    [InlineData("q4_0")]
    [InlineData("int4-g32")]
    public void QuantizedGpt2RoundTripsBitExactly(string type)
    {
        string dir = TestPaths.NewTempDir("qs-hfgguf");
        try
        {
            using var src = CausalLmLoader.Open(HfTestData.Gpt2Tiny);
            var (q, report) = Gpt2Quantizer.Quantize((Gpt2Weights)src.Weights, new LlmQuantizeOptions { Type = type });
            Assert.Equal("q8_0", report.Single(t => t.Name == "token_embd").Type); // default keep rule
            Assert.Equal(type, report.Single(t => t.Name == "blk.0.attn_qkv").Type);
            string path = Path.Combine(dir, "g.gguf");
            QuantizedGguf.Write(q, src.Tokenizer!, path, type, "rtn");
            using var back = CausalLmLoader.Open(path);
            var a = q.Matrices.ToList();
            var b = back.Weights.Matrices.ToList();
            Assert.Equal(a.Select(m => (m.TypeName, m.Bytes)), b.Select(m => (m.TypeName, m.Bytes)));
            var r = HfTestData.LoadReference(HfTestData.Gpt2Tiny);
            Assert.Equal(Logits(q, r.Tokens), Logits(back.Weights, r.Tokens));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void LlamaGgufFromHuggingFaceHasTheSourceLogitsAndTokenizer()
    {
        string dir = TestPaths.NewTempDir("qs-hfgguf");
        try
        {
            string path = Write(dir, HfTestData.LlamaTiny, "f32");
            using var src = CausalLmLoader.Open(HfTestData.LlamaTiny);
            using var back = CausalLmLoader.Open(path);
            var r = HfTestData.LoadReference(HfTestData.LlamaTiny);
            // BF16 → FP32 is exact and q/k rows are written in the decoder's (interleaved RoPE) order: identical logits.
            Assert.Equal(Logits(src.Weights, r.Tokens), Logits(back.Weights, r.Tokens));
            using (var f = GgufFile.Open(path))
            {
                Assert.Equal("llama", f.GetString("tokenizer.ggml.model"));
                Assert.True(f.TryGetTensor("output.weight", out _));
            }
            // The stored SentencePiece form (scores from merge ranks) encodes like the Hugging Face BPE tokenizer.
            var hfTok = (BpeTokenizer)src.Tokenizer!;
            var ggufTok = back.Tokenizer!;
            foreach (var (text, ids) in r.TokenizerCases)
            {
                Assert.Equal(ids, hfTok.Encode(text, bos: false));
                Assert.Equal(ids, ggufTok.Encode(text, bos: false));
                Assert.Equal(text, ggufTok.Decode([ggufTok.BosId, .. ids]));
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [PythonNumpyFact]
    public void Stories260KFromHuggingFaceLayoutWritesTheSameTensorsAsFromLlama2c()
    {
        string dir = TestPaths.NewTempDir("qs-hfgguf");
        try
        {
            string fromHf = Write(dir, HfTestData.Stories260KHf, "q8_0", KeepRule.Parse("blk.*.ffn_down=f32"));
            var q = LlmQuantizer.Quantize(LlmTestData.Checkpoint.Weights,
                new LlmQuantizeOptions { Type = "q8_0", Keep = [KeepRule.Parse("blk.*.ffn_down=f32")], DefaultKeep = false }, null);
            string fromBin = Path.Combine(dir, "bin.gguf");
            QuantizedGguf.Write(q.Weights, LlmTestData.Tokenizer, fromBin, "q8_0", "rtn");
            using var a = GgufFile.Open(fromHf);
            using var b = GgufFile.Open(fromBin);
            Assert.Equal(b.Tensors.Select(t => (t.Name, t.Type)), a.Tensors.Select(t => (t.Name, t.Type)));
            // Tensor bytes identical: the Hugging Face q/k permutation is undone before quantization.
            foreach (var t in b.Tensors) Assert.True(b.TensorBytes(t).SequenceEqual(a.TensorBytes(a.Tensor(t.Name))), t.Name);
            // The tokenizer.json form of tok512 stores the same pieces; llama.cpp-side ids agree on the TinyStories head.
            using var ha = CausalLmLoader.Open(fromHf);
            var text = File.ReadAllText(LlmTestData.TinyStories)[..4000];
            Assert.Equal(LlmTestData.Tokenizer.Encode(text), ha.Tokenizer!.Encode(text));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static (int Rc, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = Program.Run(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    [Fact]
    public void CliQuantizesHuggingFaceLlamaAndGpt2()
    {
        string dir = TestPaths.NewTempDir("qs-hfgguf");
        try
        {
            string calib = Path.Combine(dir, "calib.txt");
            File.WriteAllText(calib, HfTestData.LoadReference(HfTestData.LlamaTiny).Text + " " + string.Join(" ", HfTestData.LoadReference(HfTestData.LlamaTiny).TokenizerCases.Select(c => c.Text)));
            string lo = Path.Combine(dir, "l.gguf");
            var (rc, o, e) = Cli("llm", "quantize", HfTestData.LlamaTiny, "-o", lo, "--type", "int4-g32", "--method", "gptq", "--calib", calib, "--calib-ctx", "16", "--json");
            Assert.True(rc == 0, e);
            Assert.Equal("gptq", JsonDocument.Parse(o).RootElement.GetProperty("method").GetString());
            var (rcg, og, eg) = Cli("llm", "generate", lo, "--prompt", "the cat", "-n", "4", "--temperature", "0");
            Assert.True(rcg == 0, eg);

            string go = Path.Combine(dir, "g.gguf");
            (rc, o, e) = Cli("llm", "quantize", HfTestData.Gpt2Tiny, "-o", go, "--type", "q4_0", "--keep", "position_embd=f32", "--json");
            Assert.True(rc == 0, e);
            var tensors = JsonDocument.Parse(o).RootElement.GetProperty("tensors").EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!, t => t.GetProperty("ggml_type").GetInt32());
            Assert.Equal((int)GgmlType.F32, tensors["position_embd.weight"]);
            Assert.Equal((int)GgmlType.Q4_0, tensors["blk.1.ffn_down.weight"]);
            Assert.Equal((int)GgmlType.Q8_0, tensors["token_embd.weight"]);
            (rcg, og, eg) = Cli("llm", "generate", go, "--prompt", "Hello", "-n", "4", "--temperature", "0");
            Assert.True(rcg == 0, eg);

            foreach (var method in new[] { "gptq", "awq" })
            {
                (rc, o, e) = Cli("llm", "quantize", HfTestData.Gpt2Tiny, "-o", go, "--type", "q4_0", "--method", method, "--calib", calib, "--calib-ctx", "16", "--json");
                Assert.True(rc == 0, e);
                Assert.Equal(method, JsonDocument.Parse(o).RootElement.GetProperty("method").GetString());
                (rcg, og, eg) = Cli("llm", "generate", go, "--prompt", "Hello", "-n", "4", "--temperature", "0");
                Assert.True(rcg == 0, eg);
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
