using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
    }

    public void Quantize(ReadOnlySpan<float> x) => Quantize(x, 1, Length);

    /// <summary>Quantizes token <paramref name="t"/> only (lets callers split tokens over threads).</summary>
    public void QuantizeToken(ReadOnlySpan<float> x, int t) => QuantizeToken(x, t, Vector512.IsHardwareAccelerated && Avx512F.IsSupported);

    /// <summary>
    /// <paramref name="simd"/> quantizes full blocks with Vector512 (tests compare both ways): the same multiply by 1/d,
    /// and round-half-away-from-zero done exactly as r = trunc(v) + (|v − trunc(v)| ≥ ½ ? sign(v) : 0), where
    /// v − trunc(v) is exact in float.
    /// </summary>
    public void QuantizeToken(ReadOnlySpan<float> x, int t, bool simd)
    {
        if (x.Length < Length) throw new ArgumentException($"activation length {x.Length} < {Length}");
        if ((uint)t >= (uint)Capacity) throw new ArgumentOutOfRangeException(nameof(t));
        sbyte* q = Token(t);
        fixed (float* px = x)
            for (int b = 0; b < Blocks; b++)
            {
                int s = b * 32, n = Math.Min(32, Length - s);
                if (simd && n == 32) QuantizeBlock512(px + s, q + s, t * Blocks + b);
                else QuantizeBlock(px + s, n, q + s, t * Blocks + b);
            }
        for (int i = Blocks * 32; i < Stride; i++) q[i] = 0;
    }

    private void QuantizeBlock(float* x, int n, sbyte* q, int at)
    {
        float amax = 0;
        for (int i = 0; i < n; i++) amax = Math.Max(amax, Math.Abs(x[i]));
        // d rounded to fp16 like a Q8_0 weight scale.
        float d = (float)(Half)(amax / 127f);
        float id = d != 0 ? 1f / d : 0f;
        int sum = 0;
        for (int i = 0; i < 32; i++)
        {
            int v = i < n ? (int)Math.Clamp(MathF.Round(x[i] * id, MidpointRounding.AwayFromZero), -127, 127) : 0;
            q[i] = (sbyte)v;
            sum += v;
        }
        D[at] = d;
        Sums[at] = sum;
        S[at] = d * sum;
    }

    private void QuantizeBlock512(float* x, sbyte* q, int at)
    {
        var v0 = Vector512.Load(x);
        var v1 = Vector512.Load(x + 16);
        var m = Vector512.Max(Vector512.Abs(v0), Vector512.Abs(v1));
        var m8 = Vector256.Max(m.GetLower(), m.GetUpper());
        var m4 = Vector128.Max(m8.GetLower(), m8.GetUpper());
        float amax = Math.Max(Math.Max(m4[0], m4[1]), Math.Max(m4[2], m4[3]));
        float d = (float)(Half)(amax / 127f);
        float id = d != 0 ? 1f / d : 0f;
        var r0 = Round(v0 * id);
        var r1 = Round(v1 * id);
        Avx512F.ConvertToVector128SByte(r0).Store(q);
        Avx512F.ConvertToVector128SByte(r1).Store(q + 16);
        int sum = Vector512.Sum(r0 + r1);
        D[at] = d;
        Sums[at] = sum;
        S[at] = d * sum;
    }

    private static Vector512<int> Round(Vector512<float> v)
    {
        var t = Vector512.Truncate(v);
        var one = (Vector512.Create(1f).AsUInt32() | (v.AsUInt32() & Vector512.Create(0x80000000u))).AsSingle();
        var r = t + (one & Vector512.GreaterThanOrEqual(Vector512.Abs(v - t), Vector512.Create(0.5f)));
        r = Vector512.Min(Vector512.Max(r, Vector512.Create(-127f)), Vector512.Create(127f));
        return Vector512.ConvertToInt32(r);
    }
}
