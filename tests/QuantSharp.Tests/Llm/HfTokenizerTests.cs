using QuantSharp.Llm.HuggingFace;

namespace QuantSharp.Tests.Llm;

public class HfTokenizerTests
{
    private static BpeTokenizer Gpt2Json => BpeTokenizer.LoadJson(Path.Combine(HfTestData.Gpt2Tiny, "tokenizer.json"));
    private static BpeTokenizer LlamaJson => BpeTokenizer.LoadJson(Path.Combine(HfTestData.LlamaTiny, "tokenizer.json"));

    [Fact]
    public void Gpt2ByteLevelMatchesThePythonReferenceIds()
    {
        var r = HfTestData.LoadReference(HfTestData.Gpt2Tiny);
        var fromFiles = BpeTokenizer.LoadVocabMerges(Path.Combine(HfTestData.Gpt2Tiny, "vocab.json"), Path.Combine(HfTestData.Gpt2Tiny, "merges.txt"));
        foreach (var tok in new[] { Gpt2Json, fromFiles })
        {
            Assert.Equal(BpeStyle.ByteLevel, tok.Style);
            Assert.True(tok.MergeCount > 20);
            foreach (var (text, ids) in r.TokenizerCases)
            {
                Assert.Equal(ids, tok.Encode(text, bos: false));
                // Byte-level BPE is lossless: decoding gives the text back exactly.
                Assert.Equal(text, tok.Decode(ids));
            }
            Assert.Equal(r.Tokens, tok.Encode(r.Text, bos: false).Take(r.Tokens.Length));
        }
    }

    [Fact]
    public void LlamaSentencePieceStyleMatchesThePythonReferenceIdsWithByteFallback()
    {
        var r = HfTestData.LoadReference(HfTestData.LlamaTiny);
        var tok = LlamaJson;
        Assert.Equal(BpeStyle.SentencePiece, tok.Style);
        Assert.Equal((1, 2), (tok.BosId, tok.EosId));
        foreach (var (text, ids) in r.TokenizerCases)
        {
            Assert.Equal(ids, tok.Encode(text, bos: false));
            Assert.Equal(text, tok.Decode(ids));
        }
        // "z" and "é" are not in this vocabulary: their UTF-8 bytes come out as <0xHH> tokens.
        var z = tok.Encode("z", bos: false);
        Assert.Equal(["<0x7A>"], z.Skip(1).Select(tok.Piece));
        Assert.Equal(["<0xC3>", "<0xA9>"], tok.Encode("é", bos: false).Skip(1).Select(tok.Piece));
        Assert.Equal(r.Tokens, tok.Encode(r.Text, bos: true).Take(r.Tokens.Length));
    }

    [Fact]
    public void SpecialTokensInTheTextAreKeptWhole()
    {
        var tok = Gpt2Json;
        int eot = tok.TokenId("<|endoftext|>")!.Value;
        var ids = tok.Encode("a<|endoftext|>b", bos: false);
        Assert.Equal(3, ids.Length);
        Assert.Equal(eot, ids[1]);
        Assert.Equal((eot, eot), (tok.BosId, tok.EosId));
        var l = LlamaJson.Encode("hi</s>", bos: true, eos: true);
        Assert.Equal([1], l.Take(1));
        Assert.Equal([2, 2], l.TakeLast(2));
    }

    [Fact]
    public void PrefixSpaceFollowsTheNormalizerOrMetaspaceScheme()
    {
        // Legacy Llama (Prepend normalizer): every span between added tokens gets "▁"; Metaspace "first": only the text start.
        var legacy = LlamaJson;
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(HfTestData.LlamaTiny, "tokenizer.json")))!;
        json["normalizer"] = null;
        json["pre_tokenizer"] = System.Text.Json.Nodes.JsonNode.Parse("{\"type\": \"Metaspace\", \"replacement\": \"\u2581\", \"prepend_scheme\": \"first\", \"split\": false}");
        string p = Path.Combine(TestPaths.NewTempDir("qs-meta"), "tokenizer.json");
        File.WriteAllText(p, json.ToJsonString());
        var first = BpeTokenizer.LoadJson(p);
        Assert.Equal(legacy.Encode("Tom and the dog", bos: false), first.Encode("Tom and the dog", bos: false));
        var a = legacy.Encode("the</s>the", bos: false);
        var b = first.Encode("the</s>the", bos: false);
        Assert.Equal(a[..2], b[..2]);
        Assert.StartsWith("\u2581", legacy.Piece(a[2]));
        Assert.NotEqual(a.Skip(2), b.Skip(2));
    }

    [Fact]
    public void Gpt2PreTokenizationFollowsThePattern()
    {
        // A run of spaces before a word leaves its last space to the word.
        Assert.Equal(["Hello", ",", " world", "'s", " 1234", "!!", "  ", " x", "\n\n"], BpeTokenizer.PreTokenize("Hello, world's 1234!!   x\n\n"));
        Assert.Equal(["a", "\n", "b", " ", "\t", "c"], BpeTokenizer.PreTokenize("a\nb \tc"));
    }

    [Fact]
    public void ByteTableIsGpt2s()
    {
        var t = BpeTokenizer.ByteToUnicode;
        Assert.Equal('!', t['!']);
        Assert.Equal('\u0120', t[' ']); // "Ġ": space is the 33rd non-printable byte
        Assert.Equal('\u010A', t['\n']); // "Ċ"
        Assert.Equal(256, t.Distinct().Count());
    }

    [Fact]
    public void BadTokenizerFilesGiveOneLineErrors()
    {
        string dir = TestPaths.NewTempDir("qs-tok");
        string p = Path.Combine(dir, "tokenizer.json");
        File.WriteAllText(p, "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
        Assert.Contains("Unigram", Assert.ThrowsAny<QuantSharpException>(() => BpeTokenizer.LoadJson(p)).Message);
        File.WriteAllText(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"<s>\": 1}, \"merges\": [\"a b\"]}, \"pre_tokenizer\": {\"type\": \"Metaspace\"}}");
        Assert.Contains("merge 0", Assert.ThrowsAny<QuantSharpException>(() => BpeTokenizer.LoadJson(p)).Message);
        File.WriteAllText(p, "{not json");
        Assert.Contains("tokenizer.json", Assert.ThrowsAny<QuantSharpException>(() => BpeTokenizer.LoadJson(p)).Message);
    }
}
