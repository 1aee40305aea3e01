using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using QuantSharp.Llm.Formats;
using QuantSharp.Llm.Kernels;

namespace QuantSharp.Llm.Synthetic;

/// <summary>
/// Model sources with random weights of a real model's exact shapes, for speed and footprint measurements
/// (`--synthetic NAME`). The text they produce is meaningless; prompts are token ids. Weights are generated directly in
/// the requested format from a seed: block formats get random codes and scales (weight standard deviation ≈ 0.02), so a
/// 1.1B-parameter Q8_0 model never passes through 4.4 GB of FP32. Norm weights are 1.
/// </summary>
public static class SyntheticModels
{
    /// <summary>TinyLlama-1.1B: dim 2048, FFN 5632, 22 layers, 32 heads, 4 key/value heads, vocab 32000, context 2048, separate classifier.</summary>
    public static LlamaConfig TinyLlama { get; } = new(2048, 5632, 22, 32, 4, 32000, 2048, SharedClassifier: false);

    /// <summary>The Llama-family synthetic model names.</summary>
    public static IReadOnlyList<string> LlamaNames { get; } = ["tinyllama-1.1b"];

    public static LlamaConfig LlamaConfigOf(string name) => name switch
    {
        "tinyllama-1.1b" => TinyLlama,
        _ => throw new QuantSharpException($"unknown synthetic model '{name}' (known: {string.Join(", ", LlamaNames)})"),
    };

    /// <summary>Random weights of <paramref name="name"/>'s shapes in format <paramref name="type"/> (any of <see cref="WeightFormats.Names"/>).</summary>
    public static LlamaWeights CreateLlama(string name, string type, ulong seed = 1) => CreateLlama(LlamaConfigOf(name), type, seed);

    /// <summary>Random weights of any Llama shape (tests use small ones).</summary>
    public static LlamaWeights CreateLlama(LlamaConfig c, string type, ulong seed = 1)
    {
        if (!WeightFormats.Names.Contains(type)) throw new QuantSharpException($"unknown weight type '{type}' (known: {string.Join(", ", WeightFormats.Names)})");
        int id = 0;
        WeightMatrix M(string n, int rows, int cols) => Matrix(n, rows, cols, type, Mix(seed, (ulong)id++));
        var emb = M("tok_embeddings", c.VocabSize, c.Dim);
        var layers = new LlamaLayer[c.Layers];
        for (int l = 0; l < c.Layers; l++)
        {
            string p = $"layers.{l}.";
            layers[l] = new LlamaLayer(Ones(c.Dim), M(p + "attention.wq", c.Dim, c.Dim), M(p + "attention.wk", c.KvDim, c.Dim),
                M(p + "attention.wv", c.KvDim, c.Dim), M(p + "attention.wo", c.Dim, c.Dim), Ones(c.Dim),
                M(p + "feed_forward.w1", c.HiddenDim, c.Dim), M(p + "feed_forward.w2", c.Dim, c.HiddenDim), M(p + "feed_forward.w3", c.HiddenDim, c.Dim));
        }
        var cls = c.SharedClassifier ? emb : M("output", c.VocabSize, c.Dim);
        return new LlamaWeights(c, emb, layers, Ones(c.Dim), cls);
    }

    private static float[] Ones(int n)
    {
        var v = new float[n];
        Array.Fill(v, 1f);
        return v;
    }

    // Weight standard deviation of the random model: typical of trained 1B-scale Llama projections.
    private const float Std = 0.02f;

    /// <summary>One random matrix: block formats generated as codes, FP32 as uniform values, other formats quantized from FP32 matrix by matrix.</summary>
    private static WeightMatrix Matrix(string name, int rows, int cols, string type, ulong seed) => type switch
    {
        "q8_0" => new Q8DotMatrix<BlockQ8_0>(name, Packed(QFormat.Q8_0, rows, cols, seed)),
        "q4_0" => new Q8DotMatrix<BlockQ4_0>(name, Packed(QFormat.Q4_0, rows, cols, seed)),
        "q4_1" => new Q8DotMatrix<BlockQ4_1>(name, Packed(QFormat.Q4_1, rows, cols, seed)),
        "f32" => F32(name, rows, cols, seed),
        _ => WeightFormats.Quantize(F32(name, rows, cols, seed), type),
    };

    private static unsafe F32Matrix F32(string name, int rows, int cols, ulong seed)
    {
        var data = GC.AllocateUninitializedArray<float>(checked(rows * cols), pinned: true);
        // Uniform in [−a, a] has standard deviation a/√3.
        float a = Std * MathF.Sqrt(3f);
        Parallel.For(0, (rows + 63) / 64, chunk =>
        {
            ulong s = Mix(seed, (ulong)chunk);
            int r1 = Math.Min(rows, chunk * 64 + 64);
            for (long i = (long)chunk * 64 * cols; i < (long)r1 * cols; i++) data[i] = ((Next(ref s) >> 40) * (1f / (1 << 24)) * 2 - 1) * a;
        });
        return new F32Matrix(name, rows, cols, (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(data)), data);
    }

    /// <summary>
    /// Codes uniform over the format's range, block scales d = d0·(0.75 … 1.25) with d0 chosen so the weights have
    /// standard deviation ≈ <see cref="Std"/> (uniform codes over ±127 have std 73.3, nibbles minus 8 have 4.6); Q4_1 gets m = −8·d.
    /// </summary>
    private static unsafe PackedQ8Weights Packed(QFormat format, int rows, int cols, ulong seed)
    {
        var p = new PackedQ8Weights(format, rows, cols);
        float d0 = Std / (format == QFormat.Q8_0 ? 73.3f : 4.6f);
        int nb = p.Blocks;
        Parallel.For(0, p.Groups, g =>
        {
            ulong s = Mix(seed, (ulong)g);
            byte* q = p.Tile(g, 0);
            long n = (long)nb * p.TileBytes;
            for (long i = 0; i < n; i += 8) *(ulong*)(q + i) = Next(ref s);
            // Q8_0 codes are q + 128 with q in −127…127: map the unused code 0 (q = −128) to 1.
            if (format == QFormat.Q8_0)
                for (long i = 0; i < n; i++) if (q[i] == 0) q[i] = 1;
            for (int b = 0; b < nb; b++)
            {
                ushort* sc = p.TileScales(g, b);
                for (int r = 0; r < PackedQ8Weights.GroupRows; r++)
                {
                    float d = d0 * (0.75f + 0.5f * ((Next(ref s) >> 40) * (1f / (1 << 24))));
                    sc[r] = BitConverter.HalfToUInt16Bits((Half)d);
                    if (format == QFormat.Q4_1) p.TileMins(g, b)[r] = BitConverter.HalfToUInt16Bits((Half)(-8 * d));
                }
            }
        });
        return p;
    }

    private static ulong Mix(ulong a, ulong b)
    {
        ulong z = a * 0x9E3779B97F4A7C15UL + b + 0x632BE59BD9B4E019UL;
        return Next(ref z);
    }

    /// <summary>SplitMix64: a fast, well-mixed 64-bit generator.</summary>
    private static ulong Next(ref ulong s)
    {
        ulong z = s += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
