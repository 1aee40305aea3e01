using QuantSharp.Llm;

namespace QuantSharp.Tests.Llm;

public class TokenizerTests
{
    private static Llama2cTokenizer Tok => LlmTestData.Tokenizer;

    [Fact]
    public void PromptEncodesLikeTheGolden()
    {
        var g = LlmTestData.Golden;
        var expected = g.GetProperty("prompt_token_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(expected, Tok.Encode(g.GetProperty("prompt").GetString()!, bos: true));
    }

    [Fact]
    public void GoldenTokensDecodeToGoldenText()
    {
        var g = LlmTestData.Golden;
        var ids = g.GetProperty("token_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(g.GetProperty("text").GetString(), Tok.Decode(ids));
    }

    [Theory]
    [InlineData("Once upon a time, there was a little girl named Lily.")]
    [InlineData("Hello\nworld  with   spaces\t and tabs!")]
    [InlineData("naïve café — 日本語 🙂")]
    [InlineData("a")]
    public void RoundTrip(string text)
    {
        var ids = Tok.Encode(text, bos: true);
        Assert.Equal(Llama2cTokenizer.Bos, ids[0]);
        Assert.Equal(text, Tok.Decode(ids));
    }

    [Fact]
    public void UnknownCharactersFallBackToBytes()
    {
        // '日' is not in the 512-token vocabulary: its three UTF-8 bytes become byte tokens 3 + b.
        var ids = Tok.Encode("日", bos: false);
        var bytes = System.Text.Encoding.UTF8.GetBytes("日");
        Assert.Equal(bytes.Select(b => b + 3), ids.Skip(1));
        Assert.Equal(" ", System.Text.Encoding.UTF8.GetString(Tok.Piece(ids[0])));
    }

    [Fact]
    public void EmptyTextHasNoDummyPrefix()
    {
        Assert.Equal([Llama2cTokenizer.Bos], Tok.Encode("", bos: true));
        Assert.Equal([Llama2cTokenizer.Bos, Llama2cTokenizer.Eos], Tok.Encode("", bos: true, eos: true));
    }

    [Fact]
    public void MergesPickTheHighestScore()
    {
        // After merging, no adjacent pair may still form a vocabulary piece (greedy BPE runs to a fixed point).
        var ids = Tok.Encode("The little dog ran quickly to the big tree.", bos: false);
        var pieces = Enumerable.Range(0, Tok.VocabSize).Select(i => Convert.ToHexString(Tok.Piece(i))).ToHashSet();
        for (int i = 0; i + 1 < ids.Length; i++)
            Assert.DoesNotContain(Convert.ToHexString(Tok.Piece(ids[i])) + Convert.ToHexString(Tok.Piece(ids[i + 1])), pieces);
    }

    [Fact]
    public void StreamDecoderHoldsPartialCharacters()
    {
        var ids = Tok.Encode("é日", bos: true);
        var s = new Llama2cTokenizer.StreamDecoder(Tok);
        var text = string.Concat(ids.Select(s.Next));
        Assert.Equal("é日", text);
    }

    [Fact]
    public void TruncatedTokenizerNamesTheFile()
    {
        var dir = TestPaths.NewTempDir("llm");
        var p = Path.Combine(dir, "tok_cut.bin");
        var b = File.ReadAllBytes(LlmTestData.TokenizerPath);
        File.WriteAllBytes(p, b.AsSpan(0, b.Length / 2).ToArray());
        Assert.Contains("tok_cut.bin", Assert.Throws<ModelFormatException>(() => Llama2cTokenizer.Load(p, 512)).Message);
    }
}
