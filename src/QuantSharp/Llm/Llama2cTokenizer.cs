using System.Text;

namespace QuantSharp.Llm;

/// <summary>
/// The llama2.c tokenizer (tokenizer.bin: int32 max_token_length, then per token f32 score, i32 length, bytes):
/// SentencePiece-style BPE. Encoding adds a dummy-prefix space, maps each UTF-8 code point to its token (or to byte
/// tokens &lt;0x00&gt;..&lt;0xFF&gt; at ids 3..258 when the code point has none), then repeatedly merges the adjacent pair
/// whose concatenation is a token with the highest score (leftmost on ties) until no pair merges.
/// </summary>
public sealed partial class Llama2cTokenizer
{
    public const int Unk = 0, Bos = 1, Eos = 2;
    private const int ByteBase = 3;

    private readonly byte[][] _pieces;
    private readonly float[] _scores;
    // Pieces keyed by their bytes as Latin-1 chars (one char per byte, so any byte sequence is a valid key).
    private readonly Dictionary<string, int> _lookup;

    public int VocabSize => _pieces.Length;
    public int MaxTokenLength { get; }

    private Llama2cTokenizer(byte[][] pieces, float[] scores, int maxLen)
    {
        _pieces = pieces;
        _scores = scores;
        MaxTokenLength = maxLen;
        _lookup = new Dictionary<string, int>(pieces.Length, StringComparer.Ordinal);
        for (int i = 0; i < pieces.Length; i++) _lookup.TryAdd(Key(pieces[i]), i);
    }

    private static string Key(ReadOnlySpan<byte> b) => Encoding.Latin1.GetString(b);

    /// <summary>Reads tokenizer.bin with <paramref name="vocabSize"/> entries (the model's vocab_size).</summary>
    public static Llama2cTokenizer Load(string path, int vocabSize)
    {
        if (!File.Exists(path)) throw new QuantSharpException($"{path}: tokenizer file not found");
        string name = Path.GetFileName(path);
        var data = File.ReadAllBytes(path);
        var r = new BinaryReader(new MemoryStream(data));
        try
        {
            int maxLen = r.ReadInt32();
            if (maxLen <= 0 || maxLen > 1 << 16) throw new ModelFormatException($"{name}: max_token_length {maxLen} is not plausible (not a llama2.c tokenizer?)");
            var pieces = new byte[vocabSize][];
            var scores = new float[vocabSize];
            for (int i = 0; i < vocabSize; i++)
            {
                scores[i] = r.ReadSingle();
                int len = r.ReadInt32();
                if (len < 0 || len > maxLen) throw new ModelFormatException($"{name}: token {i} has length {len} (max_token_length {maxLen})");
                pieces[i] = r.ReadBytes(len);
                if (pieces[i].Length != len) throw new EndOfStreamException();
            }
            if (r.BaseStream.Position != data.Length)
                throw new ModelFormatException($"{name}: {data.Length - r.BaseStream.Position} bytes left after {vocabSize} tokens (vocab size does not match the model?)");
            return new Llama2cTokenizer(pieces, scores, maxLen);
        }
        catch (EndOfStreamException)
        {
            throw new ModelFormatException($"{name}: truncated tokenizer file ({data.Length} bytes, expected {vocabSize} tokens)");
        }
    }

    public ReadOnlySpan<byte> Piece(int id) => _pieces[id];
    public float Score(int id) => _scores[id];

    /// <summary>Encodes UTF-8 <paramref name="text"/>; adds BOS/EOS when asked.</summary>
    public int[] Encode(string text, bool bos = true, bool eos = false)
    {
        var tokens = new List<int>(text.Length + 3);
        if (bos) tokens.Add(Bos);
        int start = tokens.Count;
        var bytes = Encoding.UTF8.GetBytes(text);
        if (bytes.Length > 0)
        {
            // SentencePiece's add_dummy_prefix: the text is encoded as if it began with a space.
            if (!_lookup.TryGetValue(" ", out int space)) throw new QuantSharpException("tokenizer has no ' ' token for the dummy prefix");
            tokens.Add(space);
        }
        for (int i = 0; i < bytes.Length;)
        {
            // One UTF-8 code point: a lead byte and its continuation bytes (10xxxxxx).
            int n = 1;
            while (i + n < bytes.Length && (bytes[i + n] & 0xC0) == 0x80 && n < 4) n++;
            if (_lookup.TryGetValue(Key(bytes.AsSpan(i, n)), out int id)) tokens.Add(id);
            else
                for (int k = 0; k < n; k++) tokens.Add(bytes[i + k] + ByteBase);
            i += n;
        }
        Merge(tokens, start);
        if (eos) tokens.Add(Eos);
        return tokens.ToArray();
    }

    /// <summary>
    /// Greedy BPE: repeatedly merge the adjacent pair whose concatenation is the highest-scoring piece (leftmost on
    /// ties). Symbols form a linked list and candidate pairs wait in a priority queue ordered by (score, position);
    /// a popped pair is used only if both sides are unchanged since it was queued. This picks exactly the pair a full
    /// rescan would, in O(n log n) instead of O(n²) for long texts.
    /// </summary>
    private void Merge(List<int> tokens, int start)
    {
        int n = tokens.Count - start;
        if (n < 2) return;
        var id = new int[n];
        var prev = new int[n];
        var next = new int[n];
        var version = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++)
        {
            id[i] = tokens[start + i];
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
            alive[i] = true;
        }
        var queue = new PriorityQueue<(int Left, int Right, int VLeft, int VRight, int Merged), (float NegScore, int Left)>();
        var buf = new byte[2 * MaxTokenLength + 2];
        void Consider(int left)
        {
            if (left < 0) return;
            int right = next[left];
            if (right < 0) return;
            var a = _pieces[id[left]];
            var b = _pieces[id[right]];
            a.CopyTo(buf, 0);
            b.CopyTo(buf, a.Length);
            if (_lookup.TryGetValue(Key(buf.AsSpan(0, a.Length + b.Length)), out int merged))
                queue.Enqueue((left, right, version[left], version[right], merged), (-_scores[merged], left));
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
        tokens.RemoveRange(start, n);
        for (int i = 0; i >= 0; i = next[i]) tokens.Add(id[i]);
    }

    /// <summary>
    /// The bytes token <paramref name="token"/> stands for after <paramref name="previous"/>: byte tokens give their
    /// byte, and a piece's leading space is dropped right after BOS (it is the dummy prefix).
    /// </summary>
    public ReadOnlySpan<byte> DecodeBytes(int previous, int token)
    {
        if (token is Bos or Eos) return [];
        if (token >= ByteBase && token < ByteBase + 256 && IsBytePiece(_pieces[token])) return ByteOf(token);
        ReadOnlySpan<byte> p = _pieces[token];
        if (previous == Bos && p.Length > 0 && p[0] == (byte)' ') p = p[1..];
        return p;
    }

    private static readonly byte[][] SingleBytes = Enumerable.Range(0, 256).Select(b => new[] { (byte)b }).ToArray();
    private static ReadOnlySpan<byte> ByteOf(int token) => SingleBytes[token - ByteBase];

    // "<0xAB>": six bytes.
    private static bool IsBytePiece(byte[] p) => p.Length == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>';

    /// <summary>Decodes a token sequence to text (invalid UTF-8 becomes U+FFFD).</summary>
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

    /// <summary>Turns a token stream into text pieces as soon as they form complete UTF-8 characters.</summary>
    public sealed class StreamDecoder(Llama2cTokenizer tokenizer)
    {
        private readonly Decoder _utf8 = Encoding.UTF8.GetDecoder();
        private int _previous = -1;

        public string Next(int token)
        {
            var b = tokenizer.DecodeBytes(_previous, token);
            _previous = token;
            var chars = new char[b.Length + 2];
            int n = _utf8.GetChars(b, chars, flush: false);
            return new string(chars, 0, n);
        }
    }
}
