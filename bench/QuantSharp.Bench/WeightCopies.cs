namespace QuantSharp.Bench;

/// <summary>
/// How many copies of a weight matrix a benchmark cycles through so that large weights are read from DRAM, as in
/// LLM inference where each layer's weights are used once per token: matrices of 8 MiB or more get enough copies to
/// span 256 MiB (well beyond the last-level cache); smaller ones stay cache-resident with a single copy.
/// </summary>
public static class WeightCopies
{
    public const long DramThresholdBytes = 8L << 20;
    public const long SpanBytes = 256L << 20;

    public static int For(long bytes) => bytes >= DramThresholdBytes ? (int)Math.Max(2, (SpanBytes + bytes - 1) / bytes) : 1;
}
