namespace QuantSharp.Llm.Formats;

/// <summary>
/// An activation vector quantized per 32-value block to int8 (the Q8_0 rule: d = max|x|/127, q = round(x/d)).
/// The last block of a length that is not a multiple of 32 is padded with zeros. <see cref="Sums"/> holds Σq per
/// block, which the Q4_1 product needs for its offset term.
/// </summary>
public sealed class Q8Activations
{
    public const int Block = 32;

    public Q8Activations(int length)
    {
        Length = length;
        Blocks = (length + Block - 1) / Block;
        Qs = new sbyte[Blocks * Block];
        D = new float[Blocks];
        Sums = new int[Blocks];
    }

    public int Length { get; }
    public int Blocks { get; }
    public sbyte[] Qs { get; }
    public float[] D { get; }
    public int[] Sums { get; }

    public void Quantize(ReadOnlySpan<float> x)
    {
        if (x.Length < Length) throw new ArgumentException($"activation length {x.Length} < {Length}");
        for (int b = 0; b < Blocks; b++)
        {
            int s = b * Block, n = Math.Min(Block, Length - s);
            float amax = 0;
            for (int i = 0; i < n; i++) amax = Math.Max(amax, Math.Abs(x[s + i]));
            // Rounding d to fp16 mirrors Q8_0 storage, so the activation and weight sides use the same arithmetic.
            float d = (float)(Half)(amax / 127f);
            float id = d != 0 ? 1f / d : 0f;
            int sum = 0;
            for (int i = 0; i < Block; i++)
            {
                int q = i < n ? (int)Math.Clamp(MathF.Round(x[s + i] * id, MidpointRounding.AwayFromZero), -127, 127) : 0;
                Qs[s + i] = (sbyte)q;
                sum += q;
            }
            D[b] = d;
            Sums[b] = sum;
        }
    }
}
