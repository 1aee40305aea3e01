using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace QuantSharp.Llm.HuggingFace;

/// <summary>Where a tokenizer adds its prefix space ("▁" or " ") to the text spans between added tokens.</summary>
public enum PrefixSpace
{
    None,
    /// <summary>Only to a span at the very start of the text (Metaspace prepend_scheme "first").</summary>
    First,
    /// <summary>To every span (the Prepend normalizer of legacy Llama tokenizers, Metaspace "always", ByteLevel add_prefix_space).</summary>
    Always,
}

/// <summary>How a <see cref="BpeTokenizer"/> turns text into initial symbols.</summary>
public enum BpeStyle
{
    /// <summary>
    /// Llama's SentencePiece-derived BPE: spaces become "▁", a "▁" is prepended to the text, every code point is one
    /// symbol (or its UTF-8 bytes as &lt;0xHH&gt; tokens when the vocabulary lacks it: byte fallback).
    /// </summary>
    SentencePiece,

    /// <summary>
    /// GPT-2's byte-level BPE: the text is cut by GPT-2's pre-tokenization pattern, each piece's UTF-8 bytes are mapped
    /// to printable characters (the byte↔unicode table), and every byte is one symbol.
    /// </summary>
    ByteLevel,
}

/// <summary>
/// A Hugging Face BPE tokenizer (tokenizer.json with a "BPE" model, or GPT-2's vocab.json + merges.txt).
/// Encoding: added tokens (e.g. &lt;s&gt;, &lt;|endoftext|&gt;) are cut out of the text first; every other span is split
/// into symbols (see <see cref="BpeStyle"/>), then the adjacent pair with the lowest merge rank (the merge's line in
/// the merges list) is merged, leftmost first on equal rank, until no adjacent pair has a merge.
/// Decoding: SentencePiece pieces map "▁" back to a space, &lt;0xHH&gt; pieces to their byte, and the first space after
/// BOS (or at the start) is dropped (it is the prepended "▁"); byte-level pieces map each character back to its byte.
/// Control/special added tokens decode to nothing.
/// </summary>
public sealed class BpeTokenizer : ITextTokenizer
{
    private const char SpaceMark = '\u2581';

    private readonly string[] _pieces;
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<(int, int), (int Rank, int Merged)> _merges;
    private readonly (string A, string B)[] _mergeList;
    private readonly bool _byteFallback;
    private readonly int _unk;
    private readonly int[] _byteTokens;
    private readonly (string Content, int Id)[] _added;
    private readonly bool[] _special;
    private readonly bool _prefixSpace;
    private readonly PrefixSpace _prefix;
    private readonly Dictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly Lock _cacheLock = new();

    public BpeStyle Style { get; }
    public int VocabSize => _pieces.Length;
    public int BosId { get; }
    public int EosId { get; }
    public int MergeCount => _merges.Count;

    /// <summary>The merges in rank order (rank = index), as loaded.</summary>
    public IReadOnlyList<(string A, string B)> Merges => _mergeList;

    /// <summary>Whether the tokenizer falls back to &lt;0xHH&gt; byte tokens for characters outside the vocabulary.</summary>
    public bool ByteFallback => _byteFallback;

    /// <summary>The unknown token's id, or −1.</summary>
    public int UnknownId => _unk;

    /// <summary>Where the prefix space is added (see <see cref="PrefixSpace"/>).</summary>
    public PrefixSpace Prefix => _prefix;

    /// <summary>Whether <paramref name="id"/> is a special added token (control: cut out of the text whole, decodes to nothing).</summary>
    public bool IsSpecial(int id) => _special[id];

    private BpeTokenizer(BpeStyle style, Dictionary<string, int> vocab, IReadOnlyList<(string A, string B)> merges, bool byteFallback, string? unk,
        IReadOnlyList<(string Content, int Id, bool Special)> added, PrefixSpace prefix, string source)
    {
        Style = style;
        _byteFallback = byteFallback;
        _prefix = prefix;
        _prefixSpace = prefix != PrefixSpace.None;
        int n = Math.Max(vocab.Count == 0 ? 0 : vocab.Values.Max() + 1, added.Count == 0 ? 0 : added.Max(a => a.Id) + 1);
        _pieces = new string[n];
        _special = new bool[n];
        foreach (var (piece, id) in vocab)
        {
            if (id < 0) throw new ModelFormatException($"{source}: token '{piece}' has negative id {id}");
            _pieces[id] = piece;
        }
        _vocab = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        foreach (var (content, id, special) in added)
        {
            if (id < 0) throw new ModelFormatException($"{source}: added token '{content}' has negative id {id}");
            _pieces[id] = content;
            _special[id] = special;
            _vocab.TryAdd(content, id);
        }
        for (int i = 0; i < n; i++)
            if (_pieces[i] is null) throw new ModelFormatException($"{source}: token id {i} is missing (ids must be 0..{n - 1})");
        // Longest first, so that an added token containing another is matched whole.
        _added = added.Select(a => (a.Content, a.Id)).Where(a => a.Content.Length > 0).OrderByDescending(a => a.Content.Length).ToArray();
        _unk = unk is not null && _vocab.TryGetValue(unk, out int u) ? u : -1;

        _mergeList = merges.ToArray();
        _merges = new Dictionary<(int, int), (int, int)>(merges.Count);
        for (int r = 0; r < merges.Count; r++)
        {
            var (a, b) = merges[r];
            if (!_vocab.TryGetValue(a, out int ia) || !_vocab.TryGetValue(b, out int ib) || !_vocab.TryGetValue(a + b, out int m))
                throw new ModelFormatException($"{source}: merge {r} '{a} {b}' uses a piece missing from the vocabulary");
            _merges.TryAdd((ia, ib), (r, m));
        }

        _byteTokens = new int[256];
        for (int b = 0; b < 256; b++)
        {
            string key = style == BpeStyle.ByteLevel ? ByteToUnicode[b].ToString() : $"<0x{b:X2}>";
            _byteTokens[b] = _vocab.TryGetValue(key, out int id) ? id : -1;
        }
        if (style == BpeStyle.ByteLevel && _byteTokens.Contains(-1))
            throw new ModelFormatException($"{source}: a byte-level vocabulary must hold all 256 byte symbols; byte {Array.IndexOf(_byteTokens, -1)} is missing");

        int Find(params string[] names)
        {
            foreach (var s in names)
                if (_vocab.TryGetValue(s, out int id)) return id;
            return -1;
        }
        BosId = Find("<s>", "<|begin_of_text|>", "<|endoftext|>");
        EosId = Find("</s>", "<|end_of_text|>", "<|endoftext|>");
        if (BosId < 0 || EosId < 0) throw new ModelFormatException($"{source}: no BOS/EOS token (<s>, </s> or <|endoftext|>) in the vocabulary");
    }

    public string Piece(int id) => _pieces[id];

    public int? TokenId(string piece) => _vocab.TryGetValue(piece, out int id) ? id : null;

    // ---------------------------------------------------------------- loading

    /// <summary>Reads a Hugging Face tokenizer.json whose model is BPE (Llama's SentencePiece style or GPT-2's byte level).</summary>
    public static BpeTokenizer LoadJson(string path)
    {
        if (!File.Exists(path)) throw new QuantSharpException($"{path}: tokenizer file not found");
        string name = Path.GetFileName(path);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path, Encoding.UTF8));
            var root = doc.RootElement;
            if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException($"{name}: no \"model\" object");
            string type = model.TryGetProperty("type", out var ty) && ty.ValueKind == JsonValueKind.String ? ty.GetString()! : "BPE";
            if (type != "BPE") throw new QuantSharpException($"{name}: tokenizer model '{type}' is not supported (BPE only)");
            if (!model.TryGetProperty("vocab", out var vocabEl) || vocabEl.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException($"{name}: model.vocab is not an object");
            var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var p in vocabEl.EnumerateObject())
                vocab[p.Name] = p.Value.TryGetInt32(out int id) ? id : throw new ModelFormatException($"{name}: vocab entry '{p.Name}' has no integer id");
            var merges = new List<(string, string)>();
            if (model.TryGetProperty("merges", out var mEl) && mEl.ValueKind == JsonValueKind.Array)
                foreach (var m in mEl.EnumerateArray())
                    merges.Add(m.ValueKind switch
                    {
                        JsonValueKind.String => SplitMerge(m.GetString()!, name),
                        JsonValueKind.Array when m.GetArrayLength() == 2 => (m[0].GetString()!, m[1].GetString()!),
                        _ => throw new ModelFormatException($"{name}: merge {merges.Count} is neither \"a b\" nor [\"a\", \"b\"]"),
                    });
            bool byteFallback = model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True;
            string? unk = model.TryGetProperty("unk_token", out var uk) && uk.ValueKind == JsonValueKind.String ? uk.GetString() : null;
            var added = new List<(string, int, bool)>();
            if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
                foreach (var a in at.EnumerateArray())
                    added.Add((a.GetProperty("content").GetString()!, a.GetProperty("id").GetInt32(),
                        !a.TryGetProperty("special", out var sp) || sp.ValueKind != JsonValueKind.False));

            var pre = root.TryGetProperty("pre_tokenizer", out var pt) ? pt : default;
            var norm = root.TryGetProperty("normalizer", out var nm) ? nm : default;
            var components = Flatten(pre).Concat(Flatten(norm)).ToList();
            if (components.Any(c => Type(c) == "ByteLevel"))
            {
                if (components.Any(c => Type(c) is "Split" or "Digits"))
                    throw new QuantSharpException($"{name}: a byte-level tokenizer with its own Split pattern is not supported (GPT-2's pattern only)");
                var bl = components.First(c => Type(c) == "ByteLevel");
                bool prefix = bl.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.True;
                return new BpeTokenizer(BpeStyle.ByteLevel, vocab, merges, byteFallback, unk, added, prefix ? PrefixSpace.Always : PrefixSpace.None, name);
            }
            // SentencePiece style: a Replace(" " → "▁") normalizer or a Metaspace pre-tokenizer; the dummy prefix comes from
            // Prepend("▁") or Metaspace's prepend_scheme / add_prefix_space.
            bool spaces = components.Any(c => Type(c) == "Metaspace" || Type(c) == "Replace" && c.GetRawText().Contains(" ", StringComparison.Ordinal));
            if (!spaces && !byteFallback)
                throw new QuantSharpException($"{name}: neither a byte-level nor a SentencePiece-style (▁ spaces) BPE tokenizer");
            var dummy = PrefixSpace.None;
            foreach (var c in components)
            {
                if (Type(c) == "Prepend") dummy = PrefixSpace.Always;
                else if (Type(c) == "Metaspace")
                    dummy = c.TryGetProperty("prepend_scheme", out var ps) && ps.ValueKind == JsonValueKind.String
                        ? ps.GetString() switch { "first" => PrefixSpace.First, "always" => PrefixSpace.Always, _ => PrefixSpace.None }
                        : c.TryGetProperty("add_prefix_space", out var ap) && ap.ValueKind == JsonValueKind.True ? PrefixSpace.Always : PrefixSpace.None;
            }
            return new BpeTokenizer(BpeStyle.SentencePiece, vocab, merges, byteFallback, unk, added, dummy, name);
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{name}: not valid JSON ({e.Message.Split('\n')[0]})");
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException)
        {
            throw new ModelFormatException($"{name}: unexpected tokenizer.json structure ({e.Message})");
        }
    }

    /// <summary>Reads GPT-2's original files: vocab.json ({piece: id}) and merges.txt ("#version" line, then "a b" per line).</summary>
    public static BpeTokenizer LoadVocabMerges(string vocabPath, string mergesPath)
    {
        foreach (var p in new[] { vocabPath, mergesPath })
            if (!File.Exists(p)) throw new QuantSharpException($"{p}: tokenizer file not found");
        string name = Path.GetFileName(vocabPath);
        Dictionary<string, int> vocab;
        try
        {
            vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(vocabPath, Encoding.UTF8))
                ?? throw new ModelFormatException($"{name}: empty vocabulary");
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{name}: not a {{piece: id}} JSON object ({e.Message.Split('\n')[0]})");
        }
        var merges = new List<(string, string)>();
        foreach (var line in File.ReadLines(mergesPath, Encoding.UTF8))
        {
            if (line.StartsWith("#version", StringComparison.Ordinal) || line.Length == 0) continue;
            merges.Add(SplitMerge(line, Path.GetFileName(mergesPath)));
        }
        var added = vocab.TryGetValue("<|endoftext|>", out int eot) ? new List<(string, int, bool)> { ("<|endoftext|>", eot, true) } : [];
        return new BpeTokenizer(BpeStyle.ByteLevel, vocab, merges, false, null, added, PrefixSpace.None, name);
    }

    /// <summary>
    /// A tokenizer from its parts (as stored in GGUF): <paramref name="pieces"/> by id, merges in rank order, the ids of
    /// special (control) tokens, which are matched whole in the text and decode to nothing.
    /// </summary>
    public static BpeTokenizer Create(BpeStyle style, IReadOnlyList<string> pieces, IReadOnlyList<(string A, string B)> merges,
        IReadOnlyCollection<int> special, bool byteFallback, int unknownId, PrefixSpace prefix, string source)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        var added = new List<(string, int, bool)>();
        for (int i = 0; i < pieces.Count; i++)
        {
            if (special.Contains(i)) added.Add((pieces[i], i, true));
            else if (!vocab.TryAdd(pieces[i], i)) throw new ModelFormatException($"{source}: token '{pieces[i]}' appears twice (ids {vocab[pieces[i]]} and {i})");
        }
        string? unk = unknownId >= 0 && unknownId < pieces.Count ? pieces[unknownId] : null;
        return new BpeTokenizer(style, vocab, merges, byteFallback, unk, added, prefix, source);
    }

    private static (string, string) SplitMerge(string m, string source)
    {
        int sp = m.IndexOf(' ', 1);
        if (sp <= 0 || sp == m.Length - 1 || m.IndexOf(' ', sp + 1) >= 0) throw new ModelFormatException($"{source}: merge '{m}' is not two pieces separated by one space");
        return (m[..sp], m[(sp + 1)..]);
    }

    private static string? Type(JsonElement e) => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("type", out var t) ? t.GetString() : null;

    // Sequence components (pretokenizers / normalizers) flattened into one list.
    private static IEnumerable<JsonElement> Flatten(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object) yield break;
        yield return e;
        foreach (var key in new[] { "pretokenizers", "normalizers" })
            if (e.TryGetProperty(key, out var list) && list.ValueKind == JsonValueKind.Array)
                foreach (var c in list.EnumerateArray())
                    foreach (var x in Flatten(c)) yield return x;
    }

    // ---------------------------------------------------------------- byte ↔ unicode (GPT-2)

    /// <summary>
    /// GPT-2's reversible byte → character table: the printable bytes '!'..'~', '¡'..'¬' and '®'..'ÿ' map to the
    /// character with the same code; the other 68 bytes (controls, space, DEL, NBSP, soft hyphen) map in increasing
    /// order to U+0100, U+0101, … so every byte has a visible, non-space character.
    /// </summary>
    public static IReadOnlyList<char> ByteToUnicode { get; } = BuildByteTable();

    private static readonly Dictionary<char, byte> UnicodeToByte = Enumerable.Range(0, 256).ToDictionary(b => ByteToUnicode[b], b => (byte)b);

    private static char[] BuildByteTable()
    {
        var t = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            t[b] = printable ? (char)b : (char)next++;
        }
        return t;
    }

    /// <summary>
    /// GPT-2's pre-tokenization: contractions ('s 't 're 've 'm 'll 'd), an optional space followed by letters, by digits,
    /// or by other non-space characters, then runs of whitespace (a run followed by a non-space keeps its last space
    /// for the next piece).
    /// </summary>
    private static readonly Regex Gpt2Pattern = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", RegexOptions.CultureInvariant | RegexOptions.Compiled);

    /// <summary>The pieces GPT-2's pre-tokenizer cuts <paramref name="text"/> into.</summary>
    public static IEnumerable<string> PreTokenize(string text)
    {
        foreach (Match m in Gpt2Pattern.Matches(text)) yield return m.Value;
    }

    // ---------------------------------------------------------------- encoding

    public int[] Encode(string text, bool bos = true, bool eos = false)
    {
        var ids = new List<int>(text.Length / 2 + 2);
        if (bos) ids.Add(BosId);
        foreach (var (span, addedId, start) in SplitAdded(text))
        {
            bool prefix = _prefix == PrefixSpace.Always || _prefix == PrefixSpace.First && start == 0;
            if (addedId >= 0) ids.Add(addedId);
            else if (Style == BpeStyle.ByteLevel) EncodeByteLevel(prefix && !span.StartsWith(' ') ? " " + span : span, ids);
            else EncodeSentencePiece(span, prefix, ids);
        }
        if (eos) ids.Add(EosId);
        return ids.ToArray();
    }

    // The text cut at occurrences of added tokens: (span, -1, offset) for plain text, ("", id, offset) for an added token.
    private IEnumerable<(string Span, int Id, int Start)> SplitAdded(string text)
    {
        int start = 0, i = 0;
        while (i < text.Length)
        {
            int hit = -1;
            foreach (var (content, id) in _added)
                if (string.CompareOrdinal(text, i, content, 0, content.Length) == 0)
                {
                    hit = id;
                    if (i > start) yield return (text[start..i], -1, start);
                    yield return ("", id, i);
                    i += content.Length;
                    start = i;
                    break;
                }
            if (hit < 0) i++;
        }
        if (start < text.Length) yield return (text[start..], -1, start);
    }

    private void EncodeSentencePiece(string text, bool dummyPrefix, List<int> ids)
    {
        var s = (dummyPrefix ? SpaceMark + text : text).Replace(' ', SpaceMark);
        var symbols = new List<int>(s.Length);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in s.EnumerateRunes())
        {
            if (_vocab.TryGetValue(rune.ToString(), out int id) && !IsAddedSpecial(id)) symbols.Add(id);
            else if (_byteFallback)
            {
                int n = rune.EncodeToUtf8(utf8);
                for (int k = 0; k < n; k++)
                {
                    int bt = _byteTokens[utf8[k]];
                    if (bt < 0) throw new QuantSharpException($"tokenizer has byte fallback but no <0x{utf8[k]:X2}> token");
                    symbols.Add(bt);
                }
            }
            else if (_unk >= 0) symbols.Add(_unk);
            else throw new QuantSharpException($"character U+{rune.Value:X4} is not in the vocabulary and the tokenizer has neither byte fallback nor an unknown token");
        }
        ids.AddRange(Merge(symbols));
    }

    private bool IsAddedSpecial(int id) => _special[id];

    private void EncodeByteLevel(string text, List<int> ids)
    {
        foreach (var piece in PreTokenize(text))
        {
            int[]? cached;
            lock (_cacheLock) _cache.TryGetValue(piece, out cached);
            if (cached is null)
            {
                var bytes = Encoding.UTF8.GetBytes(piece);
                var symbols = new List<int>(bytes.Length);
                foreach (byte b in bytes) symbols.Add(_byteTokens[b]);
                cached = Merge(symbols);
                // Pre-tokenized pieces repeat a lot (words); a bounded cache avoids re-merging them.
                lock (_cacheLock)
                    if (_cache.Count < 100_000) _cache[piece] = cached;
            }
            ids.AddRange(cached);
        }
    }

    /// <summary>
    /// BPE over a symbol sequence: repeatedly merges the adjacent pair with the lowest rank (leftmost on ties). Symbols form
    /// a linked list and candidate pairs wait in a priority queue ordered by (rank, position); a popped pair is used only
    /// if both symbols are unchanged since it was queued — the same choice a full rescan makes, in O(n log n).
    /// </summary>
    private int[] Merge(List<int> symbols)
    {
        int n = symbols.Count;
        if (n < 2) return symbols.ToArray();
        var id = symbols.ToArray();
        var prev = new int[n];
        var next = new int[n];
        var version = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++)
        {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
            alive[i] = true;
        }
        var queue = new PriorityQueue<(int Left, int Right, int VLeft, int VRight, int Merged), (int Rank, int Left)>();
        void Consider(int left)
        {
            if (left < 0) return;
            int right = next[left];
            if (right < 0) return;
            if (_merges.TryGetValue((id[left], id[right]), out var m))
                queue.Enqueue((left, right, version[left], version[right], m.Merged), (m.Rank, left));
        }
        for (int i = 0; i + 1 < n; i++) Consider(i);
        while (queue.TryDequeue(out var c, out _))
        {
            if (!alive[c.Left] || !alive[c.Right] || next[c.Left] != c.Right || version[c.Left] != c.VLeft || version[c.Right] != c.VRight) continue;
            id[c.Left] = c.Merged;
            version[c.Left]++;
            alive[c.Right] = false;
            next[c.Left] = next[c.Right];
            if (next[c.Right] >= 0) prev[next[c.Right]] = c.Left;
            Consider(prev[c.Left]);
            Consider(c.Left);
        }
        var result = new List<int>(n);
        for (int i = 0; i >= 0; i = next[i]) result.Add(id[i]);
        return result.ToArray();
    }

    // ---------------------------------------------------------------- decoding

    public ReadOnlySpan<byte> DecodeBytes(int previous, int token)
    {
        if ((uint)token >= (uint)_pieces.Length) throw new QuantSharpException($"token id {token} is outside the vocabulary [0, {_pieces.Length})");
        if (_special[token]) return [];
        string p = _pieces[token];
        if (Style == BpeStyle.ByteLevel)
        {
            var bytes = new byte[p.Length];
            for (int i = 0; i < p.Length; i++)
                bytes[i] = UnicodeToByte.TryGetValue(p[i], out byte b) ? b : (byte)'?';
            return bytes;
        }
        if (p.Length == 6 && p.StartsWith("<0x", StringComparison.Ordinal) && p[5] == '>' && Uri.IsHexDigit(p[3]) && Uri.IsHexDigit(p[4]))
        {
            byte b = Convert.ToByte(p.Substring(3, 2), 16);
            if (_byteTokens[b] == token) return new[] { b };
        }
        var s = p.Replace(SpaceMark, ' ');
        if (_prefixSpace && (previous == BosId || previous < 0) && s.StartsWith(' ')) s = s[1..];
        return Encoding.UTF8.GetBytes(s);
    }

    public string Decode(ReadOnlySpan<int> tokens, int previous = -1)
    {
        var bytes = new List<byte>();
        foreach (int t in tokens)
        {
            foreach (byte b in DecodeBytes(previous, t)) bytes.Add(b);
            previous = t;
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }
}
