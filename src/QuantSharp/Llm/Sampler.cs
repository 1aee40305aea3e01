namespace QuantSharp.Llm;

/// <summary>
/// Picks the next token from logits: greedy argmax at temperature 0; otherwise softmax(logits / T), restricted to the
/// <see cref="TopK"/> most likely tokens (0 = all) and then to the smallest set whose probability reaches
/// <see cref="TopP"/> (1 = all), renormalized and sampled with a seeded xorshift64* generator (same seed, same tokens).
/// </summary>
public sealed class Sampler
{
    private ulong _state;

    public Sampler(float temperature = 0f, int topK = 0, float topP = 1f, ulong seed = 42)
    {
        if (!(temperature >= 0) || !float.IsFinite(temperature)) throw new QuantSharpException($"temperature must be ≥ 0, got {temperature}");
        if (topK < 0) throw new QuantSharpException($"top-k must be ≥ 0, got {topK}");
        if (!(topP > 0 && topP <= 1)) throw new QuantSharpException($"top-p must be in (0, 1], got {topP}");
        Temperature = temperature;
        TopK = topK;
        TopP = topP;
        _state = seed == 0 ? 0x9E3779B97F4A7C15UL : seed;
    }

    public float Temperature { get; }
    public int TopK { get; }
    public float TopP { get; }

    /// <summary>Uniform in [0, 1) from xorshift64* (24 high bits).</summary>
    public float NextUniform()
    {
        _state ^= _state >> 12;
        _state ^= _state << 25;
        _state ^= _state >> 27;
        return ((_state * 0x2545F4914F6CDD1DUL) >> 40) / 16777216f;
    }

    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }

    public int Sample(ReadOnlySpan<float> logits)
    {
        if (Temperature == 0) return ArgMax(logits);
        int n = logits.Length;
        var idx = new int[n];
        var p = new double[n];
        float max = float.NegativeInfinity;
        foreach (float v in logits) max = Math.Max(max, v);
        for (int i = 0; i < n; i++)
        {
            idx[i] = i;
            p[i] = Math.Exp((logits[i] - max) / Temperature);
        }
        // Most likely first; ties by token id so the order is fully determined.
        Array.Sort(idx, (a, b) => p[a] != p[b] ? p[b].CompareTo(p[a]) : a.CompareTo(b));
        int keep = TopK > 0 ? Math.Min(TopK, n) : n;
        double total = 0;
        for (int i = 0; i < keep; i++) total += p[idx[i]];
        if (TopP < 1)
        {
            double cum = 0;
            for (int i = 0; i < keep; i++)
            {
                cum += p[idx[i]] / total;
                if (cum >= TopP)
                {
                    keep = i + 1;
                    break;
                }
            }
            total = 0;
            for (int i = 0; i < keep; i++) total += p[idx[i]];
        }
        double r = NextUniform() * total, acc = 0;
        for (int i = 0; i < keep; i++)
        {
            acc += p[idx[i]];
            if (r < acc) return idx[i];
        }
        return idx[keep - 1];
    }
}
