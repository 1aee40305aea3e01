using System.Runtime.CompilerServices;

namespace QuantSharp.Llm.Kernels;

/// <summary>
/// Activations of up to <see cref="Capacity"/> tokens quantized per 32-value block to int8 by the Q8_0 rule
/// (d = fp16(max|x|/127), q = round(x/d) clamped to ±127; a partial last block is padded with zeros). Per token and block
/// it keeps d, the integer Σq (for the code offset of the weights) and s = d·Σq as float (the Q4_1 minimum term).
/// Rows are 64-byte aligned so the kernels' broadcasts of 4-byte quads never split a cache line.
/// </summary>
public sealed unsafe class Q8Batch
{
    private readonly byte[] _store;

    public Q8Batch(int length, int capacity = 1)
    {
        if (length <= 0 || capacity <= 0) throw new ArgumentException($"invalid activation batch {capacity}×{length}");
        Length = length;
        Capacity = capacity;
        Blocks = (length + 31) / 32;
        Stride = (Blocks * 32 + 63) & ~63;
        _store = GC.AllocateArray<byte>(checked(capacity * Stride + 64), pinned: true);
        nint p = (nint)Unsafe.AsPointer(ref _store[0]);
        Qs = (sbyte*)((p + 63) & ~(nint)63);
        D = new float[capacity * Blocks];
        Sums = new int[capacity * Blocks];
        S = new float[capacity * Blocks];
    }

    public int Length { get; }
    public int Capacity { get; }
    public int Blocks { get; }
    /// <summary>Bytes between the codes of consecutive tokens.</summary>
    public int Stride { get; }
    /// <summary>Number of tokens quantized by the last call.</summary>
    public int Count { get; private set; }
    public sbyte* Qs { get; }
    /// <summary>[token·Blocks + block]: the block scale d.</summary>
    public float[] D { get; }
    /// <summary>[token·Blocks + block]: Σ q over the block.</summary>
    public int[] Sums { get; }
    /// <summary>[token·Blocks + block]: d·Σq in float.</summary>
    public float[] S { get; }

    public sbyte* Token(int t) => Qs + (long)t * Stride;

    /// <summary>Quantizes <paramref name="count"/> rows of <paramref name="x"/> (row t at t·<paramref name="ldx"/>).</summary>
    public void Quantize(ReadOnlySpan<float> x, int count, int ldx)
    {
        if (count > Capacity) throw new ArgumentException($"{count} tokens exceed the batch capacity {Capacity}");
        for (int t = 0; t < count; t++) QuantizeToken(x.Slice(t * ldx, Length), t);
        Count = count;
    }

    public void Quantize(ReadOnlySpan<float> x) => Quantize(x, 1, Length);

    /// <summary>Quantizes token <paramref name="t"/> only (lets callers split tokens over threads); sets Count to at least t + 1.</summary>
    public void QuantizeToken(ReadOnlySpan<float> x, int t)
    {
        sbyte* q = Token(t);
        for (int b = 0; b < Blocks; b++)
        {
            int s = b * 32, n = Math.Min(32, Length - s);
            float amax = 0;
            for (int i = 0; i < n; i++) amax = Math.Max(amax, Math.Abs(x[s + i]));
            // d rounded to fp16 like a Q8_0 weight scale.
            float d = (float)(Half)(amax / 127f);
            float id = d != 0 ? 1f / d : 0f;
            int sum = 0;
            for (int i = 0; i < 32; i++)
            {
                int v = i < n ? (int)Math.Clamp(MathF.Round(x[s + i] * id, MidpointRounding.AwayFromZero), -127, 127) : 0;
                q[s + i] = (sbyte)v;
                sum += v;
            }
            D[t * Blocks + b] = d;
            Sums[t * Blocks + b] = sum;
            S[t * Blocks + b] = d * sum;
        }
        for (int i = Blocks * 32; i < Stride; i++) q[i] = 0;
        if (Count <= t) Count = t + 1;
    }
}
