using QuantSharp.Llm.Kernels;

namespace QuantSharp.Llm.Formats;

/// <summary>
/// One activation vector quantized per 32-value block to int8 (the Q8_0 rule: d = max|x|/127 rounded to fp16,
/// q = round(x/d)); a single-token <see cref="Q8Batch"/>. The last block of a length that is not a multiple of 32 is
/// padded with zeros.
/// </summary>
public sealed class Q8Activations
{
    public const int Block = 32;

    public Q8Activations(int length) => Batch = new Q8Batch(length, 1);

    /// <summary>The quantized codes, scales and block sums the kernels read.</summary>
    public Q8Batch Batch { get; }
    public int Length => Batch.Length;
    public int Blocks => Batch.Blocks;
    public float[] D => Batch.D;
    public int[] Sums => Batch.Sums;

    public void Quantize(ReadOnlySpan<float> x)
    {
        if (x.Length < Length) throw new ArgumentException($"activation length {x.Length} < {Length}");
        Batch.Quantize(x);
    }
}
