using QuantSharp.Llm;

namespace QuantSharp.Tests.Llm;

public class CheckpointTests
{
    [Fact]
    public void LegacyHeaderIsRead()
    {
        var ck = LlmTestData.Checkpoint;
        Assert.Equal(Llama2cLayout.Legacy, ck.Layout);
        var c = ck.Weights.Config;
        Assert.Equal((64, 172, 5, 8, 4, 512, 512, true), (c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KvHeads, c.VocabSize, c.SeqLen, c.SharedClassifier));
        Assert.Equal(8, c.HeadSize);
        Assert.Equal(32, c.KvDim);
        Assert.Same(ck.Weights.TokenEmbedding, ck.Weights.Classifier);
        Assert.IsType<F32Matrix>(ck.Weights.Layers[0].Wq);
    }

    [Fact]
    public void Version1HoldsTheSameWeights()
    {
        using var v1 = Llama2cCheckpoint.Open(LlmTestData.V1);
        var legacy = LlmTestData.Checkpoint.Weights;
        Assert.Equal(Llama2cLayout.Version1, v1.Layout);
        Assert.Equal(legacy.Config, v1.Weights.Config);
        var a = legacy.Matrices.Cast<F32Matrix>().ToList();
        var b = v1.Weights.Matrices.Cast<F32Matrix>().ToList();
        Assert.Equal(a.Count, b.Count);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].Name, b[i].Name);
            Assert.True(a[i].Values.SequenceEqual(b[i].Values), a[i].Name);
        }
        for (int l = 0; l < legacy.Layers.Count; l++)
        {
            Assert.Equal(legacy.Layers[l].RmsAtt, v1.Weights.Layers[l].RmsAtt);
            Assert.Equal(legacy.Layers[l].RmsFfn, v1.Weights.Layers[l].RmsFfn);
        }
        Assert.Equal(legacy.RmsFinal, v1.Weights.RmsFinal);
    }

    [Fact]
    public void TensorTableCountsEveryParameter()
    {
        var w = LlmTestData.Checkpoint.Weights;
        // tok_emb 512·64 + per layer (2·64 norms + 2·64·64 + 2·32·64 + 3·172·64) + final norm 64.
        long expected = 512 * 64 + 5 * (2 * 64 + 2 * 64 * 64 + 2 * 32 * 64 + 3 * 172 * 64) + 64;
        Assert.Equal(expected, w.ParameterCount);
        Assert.Equal(expected * 4, w.TotalBytes);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TruncatedFileNamesTheFile(bool v1)
    {
        var dir = TestPaths.NewTempDir("llm");
        var src = File.ReadAllBytes(v1 ? LlmTestData.V1 : LlmTestData.Legacy);
        var path = Path.Combine(dir, "cut.bin");
        File.WriteAllBytes(path, src.AsSpan(0, src.Length - 100).ToArray());
        var e = Assert.Throws<ModelFormatException>(() => Llama2cCheckpoint.Open(path).Dispose());
        Assert.Contains("cut.bin", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void CorruptHeaderIsRejected()
    {
        var dir = TestPaths.NewTempDir("llm");
        var src = File.ReadAllBytes(LlmTestData.Legacy);
        var path = Path.Combine(dir, "bad.bin");
        BitConverter.GetBytes(7).CopyTo(src, 12); // n_heads = 7 does not divide dim 64
        File.WriteAllBytes(path, src);
        var e = Assert.Throws<ModelFormatException>(() => Llama2cCheckpoint.Open(path).Dispose());
        Assert.Contains("bad.bin", e.Message);

        var tiny = Path.Combine(dir, "tiny.bin");
        File.WriteAllBytes(tiny, new byte[10]);
        Assert.Contains("tiny.bin", Assert.Throws<ModelFormatException>(() => Llama2cCheckpoint.Open(tiny).Dispose()).Message);

        var badVersion = File.ReadAllBytes(LlmTestData.V1);
        BitConverter.GetBytes(2).CopyTo(badVersion, 4);
        var bv = Path.Combine(dir, "v2.bin");
        File.WriteAllBytes(bv, badVersion);
        Assert.Contains("v2.bin", Assert.Throws<ModelFormatException>(() => Llama2cCheckpoint.Open(bv).Dispose()).Message);
    }
}
