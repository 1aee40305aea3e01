using System.Text;

namespace QuantSharp.Llm;

/// <summary>A tokenizer as the generator and the evaluation protocols use it (llama2.c, Hugging Face BPE, GPT-2 byte-level BPE).</summary>
public interface ITextTokenizer
{
    int VocabSize { get; }

    /// <summary>The token a sequence starts with (Llama: &lt;s&gt;; GPT-2 has none and uses &lt;|endoftext|&gt;).</summary>
    int BosId { get; }

    /// <summary>The token that ends generation (Llama: &lt;/s&gt;; GPT-2: &lt;|endoftext|&gt;).</summary>
    int EosId { get; }

    /// <summary>Token ids of UTF-8 <paramref name="text"/>, with <see cref="BosId"/> first / <see cref="EosId"/> last when asked.</summary>
    int[] Encode(string text, bool bos = true, bool eos = false);

    /// <summary>The bytes token <paramref name="token"/> contributes after <paramref name="previous"/> (−1 at the start); control tokens give none.</summary>
    ReadOnlySpan<byte> DecodeBytes(int previous, int token);

    /// <summary>Text of a token sequence (invalid UTF-8 becomes U+FFFD).</summary>
    string Decode(ReadOnlySpan<int> tokens, int previous = -1);
}

/// <summary>A decoder-only language model ready to run: creates sessions, each with its own key/value cache.</summary>
public interface ICausalLm
{
    string Architecture { get; }
    int VocabSize { get; }

    /// <summary>Longest sequence (positions 0..SeqLen−1).</summary>
    int SeqLen { get; }

    ICausalLmSession NewSession();
}

/// <summary>One sequence being decoded: <see cref="Forward"/> must be called for positions 0, 1, 2, … in order.</summary>
public interface ICausalLmSession
{
    /// <summary>Runs <paramref name="token"/> at <paramref name="pos"/>, caching its keys/values, and returns the next-token logits (a buffer reused by the next call).</summary>
    float[] Forward(int token, int pos);

    /// <summary>
    /// Runs <paramref name="tokens"/> at positions pos0, pos0+1, … and returns the logits after the last (the buffer
    /// <see cref="Forward"/> reuses). Same values as calling <see cref="Forward"/> for each token; a decoder with a
    /// batched prompt path (the Llama decoder) runs them as one batch.
    /// </summary>
    float[] Prefill(ReadOnlySpan<int> tokens, int pos0)
    {
        if (tokens.IsEmpty) throw new QuantSharpException("an empty token batch has no logits");
        float[] logits = [];
        for (int i = 0; i < tokens.Length; i++) logits = Forward(tokens[i], pos0 + i);
        return logits;
    }

    /// <summary>
    /// Runs <paramref name="tokens"/> at positions pos0, pos0+1, … and writes the logits after each: row i of
    /// <paramref name="logits"/> (vocabulary-size values) is what <see cref="Forward"/> returns for token i.
    /// </summary>
    void ForwardAll(ReadOnlySpan<int> tokens, int pos0, Span<float> logits)
    {
        for (int i = 0; i < tokens.Length; i++)
        {
            var l = Forward(tokens[i], pos0 + i);
            l.AsSpan().CopyTo(logits.Slice(i * l.Length, l.Length));
        }
    }
}

/// <summary>The weights of a decoder-only model in some storage format: inspectable, convertible, runnable.</summary>
public interface ICausalLmWeights
{
    /// <summary>"llama" or "gpt2".</summary>
    string Architecture { get; }
    int VocabSize { get; }
    int SeqLen { get; }

    /// <summary>The hyper-parameters as (key, value) pairs, for `llm inspect`.</summary>
    IReadOnlyList<(string Key, string Value)> Hyperparameters { get; }

    /// <summary>(name, shape, type, bytes) for every stored tensor, norms and biases included; a tied head once.</summary>
    IReadOnlyList<(string Name, int[] Shape, string Type, long Bytes)> TensorTable();

    /// <summary>Every distinct weight matrix (a tied head once).</summary>
    IEnumerable<WeightMatrix> Matrices { get; }

    /// <summary>The same model with every matrix replaced by <paramref name="convert"/>(matrix); a shared matrix stays shared. Vectors are kept.</summary>
    ICausalLmWeights MapMatrices(Func<WeightMatrix, WeightMatrix> convert);

    /// <summary>A decoder over these weights; <paramref name="threads"/> ≤ 0 means all cores.</summary>
    ICausalLm CreateDecoder(int threads = 0);
}

public static class CausalLmWeightsExtensions
{
    public static long TotalBytes(this ICausalLmWeights w) => w.TensorTable().Sum(t => t.Bytes);
    public static long ParameterCount(this ICausalLmWeights w) => w.TensorTable().Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));
}

/// <summary>Turns a token stream into text pieces as soon as they form complete UTF-8 characters (any <see cref="ITextTokenizer"/>).</summary>
public sealed class TokenStreamDecoder(ITextTokenizer tokenizer)
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
