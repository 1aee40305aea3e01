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

    [Fact]
    public void QueueMergeEqualsNaiveRescan()
    {
        // The naive algorithm: rescan all adjacent pairs, merge the best (highest score, leftmost), repeat.
        var text = File.ReadAllText(LlmTestData.TinyStories)[..1500];
        var ids = Tok.Encode(text, bos: false).ToList();
        var naive = new List<int> { Tok.Encode(" ", bos: false)[1] };
        foreach (var r in Elements(text)) naive.AddRange(r);
        var keys = new Dictionary<string, int>();
        for (int i = Tok.VocabSize - 1; i >= 0; i--) keys[Convert.ToHexString(Tok.Piece(i))] = i;
        while (true)
        {
            int best = -1, bestId = -1;
            for (int i = 0; i + 1 < naive.Count; i++)
                if (keys.TryGetValue(Convert.ToHexString(Tok.Piece(naive[i])) + Convert.ToHexString(Tok.Piece(naive[i + 1])), out int id)
                    && (best < 0 || Tok.Score(id) > Tok.Score(bestId)))
                {
                    best = i;
                    bestId = id;
                }
            if (best < 0) break;
            naive[best] = bestId;
            naive.RemoveAt(best + 1);
        }
        Assert.Equal(naive, ids);
    }

    /// <summary>Initial symbols: each code point's token, or its UTF-8 bytes as byte tokens.</summary>
    private static IEnumerable<int[]> Elements(string text)
    {
        var keys = new Dictionary<string, int>();
        for (int i = Tok.VocabSize - 1; i >= 0; i--) keys[Convert.ToHexString(Tok.Piece(i))] = i;
        for (int i = 0; i < text.Length; i += char.IsSurrogatePair(text, i) ? 2 : 1)
        {
            var b = System.Text.Encoding.UTF8.GetBytes(text.Substring(i, char.IsSurrogatePair(text, i) ? 2 : 1));
            yield return keys.TryGetValue(Convert.ToHexString(b), out int id) ? [id] : b.Select(x => x + 3).ToArray();
        }
    }
}
