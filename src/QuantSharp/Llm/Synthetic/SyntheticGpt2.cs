using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using QuantSharp.Llm.Formats;
using QuantSharp.Llm.Gpt2;

namespace QuantSharp.Llm.Synthetic;

/// <summary>
/// GPT-2 models with random weights of a real model's exact shapes (`--synthetic gpt2-124m`), for footprint and speed
/// measurements. Matrices are drawn uniform with standard deviation 0.02 (GPT-2's initializer scale) from a seed, one
/// matrix at a time, and converted to the requested format right away, so at most one FP32 matrix (wte: 154 MB) exists
/// besides the result. LayerNorm gains are 1, biases 0.
/// </summary>
public static class SyntheticGpt2
{
    /// <summary>GPT-2 small ("124M"): n_embd 768, 12 layers, 12 heads, n_inner 3072, vocab 50257, 1024 positions, head tied to wte.</summary>
    public static Gpt2Config Gpt2_124M { get; } = new(768, 3072, 12, 12, 50257, 1024);

    public static IReadOnlyList<string> Names { get; } = ["gpt2-124m"];

    public static Gpt2Config ConfigOf(string name) => name switch
    {
        "gpt2-124m" => Gpt2_124M,
        _ => throw new QuantSharpException($"unknown synthetic GPT-2 model '{name}' (known: {string.Join(", ", Names)})"),
    };

    /// <summary>Random weights of <paramref name="c"/>'s shapes with every matrix (wte/wpe included) in <paramref name="type"/>.</summary>
    public static Gpt2Weights Create(Gpt2Config c, string type, ulong seed = 1)
    {
        if (!WeightFormats.Names.Contains(type)) throw new QuantSharpException($"unknown weight type '{type}' (known: {string.Join(", ", WeightFormats.Names)})");
        c.Validate("synthetic GPT-2");
        ulong id = 0;
        WeightMatrix M(string n, int rows, int cols)
        {
            var f32 = RandomF32(n, rows, cols, Mix(seed, id++));
            return type == "f32" ? f32 : WeightFormats.Quantize(f32, type);
        }
        int d = c.Dim, h = c.HiddenDim;
        var wte = M("wte.weight", c.VocabSize, d);
        var wpe = M("wpe.weight", c.SeqLen, d);
        var layers = new Gpt2Layer[c.Layers];
        for (int i = 0; i < c.Layers; i++)
        {
            string p = $"h.{i}.";
            layers[i] = new Gpt2Layer(Fill(d, 1), Fill(d, 0), M(p + "attn.c_attn.weight", 3 * d, d), Fill(3 * d, 0), M(p + "attn.c_proj.weight", d, d), Fill(d, 0),
                Fill(d, 1), Fill(d, 0), M(p + "mlp.c_fc.weight", h, d), Fill(h, 0), M(p + "mlp.c_proj.weight", d, h), Fill(d, 0));
        }
        return new Gpt2Weights(c, wte, wpe, layers, Fill(d, 1), Fill(d, 0), wte);
    }

    private static float[] Fill(int n, float v)
    {
        var a = new float[n];
        Array.Fill(a, v);
        return a;
    }

    /// <summary>Uniform in [−a, a) with a = 0.02·√3 (standard deviation 0.02); rows in 64-row chunks, each chunk its own stream.</summary>
    private static unsafe F32Matrix RandomF32(string name, int rows, int cols, ulong seed)
    {
        var data = GC.AllocateUninitializedArray<float>(checked(rows * cols), pinned: true);
        float a = 0.02f * MathF.Sqrt(3f);
        // Two values per 64-bit draw: 24 random bits from each half, mapped to [−a, a).
        float step = 2 * a / (1 << 24);
        Parallel.For(0, (rows + 63) / 64, chunk =>
        {
            ulong s = Mix(seed, (ulong)chunk);
            int r0 = chunk * 64, r1 = Math.Min(rows, r0 + 64);
            var span = data.AsSpan(r0 * cols, (r1 - r0) * cols);
            int i = 0;
            for (; i + 1 < span.Length; i += 2)
            {
                ulong z = Next(ref s);
                span[i] = (uint)(z >> 40) * step - a;
                span[i + 1] = (uint)((z >> 8) & 0xFFFFFF) * step - a;
            }
            if (i < span.Length) span[i] = (uint)(Next(ref s) >> 40) * step - a;
        });
        return new F32Matrix(name, rows, cols, (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(data)), data);
    }

    private static ulong Mix(ulong a, ulong b)
    {
        ulong z = a * 0x9E3779B97F4A7C15UL + b + 0x632BE59BD9B4E019UL;
        return Next(ref z);
    }

    /// <summary>SplitMix64.</summary>
    private static ulong Next(ref ulong s)
    {
        ulong z = s += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
