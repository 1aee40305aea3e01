using System.Diagnostics;
using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Tensors;

namespace QuantSharp.Bench;

/// <summary>
/// `int4-quick [threads]`: 4-bit weight-only GEMV 4096×4096 (block 32, packed zero points), one row of A.
/// (1) the Int4Gemv kernel alone on each supported path, one thread; (2) one-node models through InferenceSession:
/// FP32 MatMul with the float weight, MatMulNBits on the in-register kernel, and the same MatMulNBits with an
/// explicit g_idx = k / block_size (same math, forced onto the dequantize-a-scratch-row path). The three models are
/// run interleaved, best of several repetitions each, so machine noise affects them alike.
/// </summary>
public static class Int4GemvQuick
{
    private const int N = 4096, K = 4096, Block = 32;

    public static void Run(int threads)
    {
        var rnd = new Random(7);
        int kBlocks = K / Block;
        var codes = new byte[N * K / 2];
        rnd.NextBytes(codes);
        var scales = new float[N * kBlocks];
        for (int i = 0; i < scales.Length; i++) scales[i] = 0.01f + (float)rnd.NextDouble() * 0.05f;
        var zpRowBytes = (kBlocks + 1) / 2;
        var zpPacked = new byte[N * zpRowBytes];
        rnd.NextBytes(zpPacked);
        var zp = new float[N * kBlocks];
        for (int j = 0; j < N; j++)
            for (int b = 0; b < kBlocks; b++) zp[j * kBlocks + b] = (zpPacked[j * zpRowBytes + b / 2] >> ((b & 1) * 4)) & 0xF;
        var a = new float[K];
        for (int k = 0; k < K; k++) a[k] = (float)(rnd.NextDouble() * 2 - 1);
        var y = new float[N];

        foreach (var isa in new[] { Int4GemvIsa.V512, Int4GemvIsa.V256, Int4GemvIsa.Scalar }.Where(Int4Gemv.IsSupported))
        {
            double t = Best(() => Int4Gemv.Multiply(a, K, 1, codes, scales, zp, kBlocks, Block, 0, N, y, N, isa), isa == Int4GemvIsa.Scalar ? 2 : 20);
            Console.WriteLine($"Int4Gemv {isa,-6} 4096x4096 block {Block}, 1 thread: {t * 1e3,8:F3} ms ({N * (double)K / t / 1e9:F2} GMAC/s)");
        }

        // Float weight W[K, N] = dequant(B)ᵀ for the FP32 model.
        var w = new float[K * N];
        for (int j = 0; j < N; j++)
            for (int k = 0; k < K; k++)
            {
                int p = j * kBlocks + k / Block;
                w[k * N + j] = ((((codes[(j * K + k) / 2] >> ((k & 1) * 4)) & 0xF)) - zp[p]) * scales[p];
            }
        var aT = new Tensor<float>(a, [1, K]);
        var nbitsAttrs = new[] { NodeAttribute.Of("K", K), NodeAttribute.Of("N", N), NodeAttribute.Of("bits", 4), NodeAttribute.Of("block_size", Block) };
        Tensor?[] nbitsInputs = [aT, new Tensor<byte>(codes, [N, kBlocks, Block / 2]), new Tensor<float>(scales, [scales.Length]),
            new Tensor<byte>(zpPacked, [zpPacked.Length])];
        var gIdx = new Tensor<int>(Enumerable.Range(0, K).Select(k => k / Block).ToArray(), [K]);
        var models = new (string Name, Model Model)[]
        {
            ("FP32 MatMul", OneNode("MatMul", [aT, new Tensor<float>(w, [K, N])], [], "")),
            ("MatMulNBits int4 in-register", OneNode("MatMulNBits", nbitsInputs, nbitsAttrs, "com.microsoft")),
            ("MatMulNBits int4 scratch-row (g_idx)", OneNode("MatMulNBits", [.. nbitsInputs, gIdx], nbitsAttrs, "com.microsoft")),
        };
        var sessions = models.Select(m => new InferenceSession(m.Model, new SessionOptions { IntraOpThreads = threads })).ToArray();
        var feeds = new Dictionary<string, Tensor> { ["in0"] = aT };
        var best = Enumerable.Repeat(double.MaxValue, sessions.Length).ToArray();
        for (int rep = 0; rep < 7; rep++)
            for (int s = 0; s < sessions.Length; s++)
            {
                var session = sessions[s];
                session.Run(feeds);
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < 10; i++) session.Run(feeds);
                best[s] = Math.Min(best[s], sw.Elapsed.TotalSeconds / 10);
            }
        for (int s = 0; s < sessions.Length; s++)
            Console.WriteLine($"{models[s].Name,-38} threads={threads}: {best[s] * 1e3,8:F3} ms  ({best[0] / best[s]:F2}x FP32)");
        foreach (var session in sessions) session.Dispose();
    }

    /// <summary>One-node model: input 0 is the graph input "in0", the others initializers.</summary>
    private static Model OneNode(string op, Tensor?[] inputs, NodeAttribute[] attrs, string domain)
    {
        var g = new QuantSharp.Graph.Graph { Name = op };
        var e = g.Edit();
        var values = new List<Value?> { e.AddInput("in0", TensorTypeInfo.FromShape(inputs[0]!.DataType, inputs[0]!.Shape)) };
        for (int i = 1; i < inputs.Length; i++) values.Add(inputs[i] is { } t ? e.AddInitializer($"c{i}", t) : null);
        var node = e.AddNode(op, values, 1, name: "n", domain: domain, attributes: attrs);
        e.AddOutput(node.Outputs[0]!);
        var model = new Model(g);
        model.SetOpset("", 21);
        if (domain.Length > 0) model.SetOpset(domain, 1);
        ShapeInference.Run(model);
        return model;
    }

    private static double Best(Action run, int reps)
    {
        run();
        double best = double.MaxValue;
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            run();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }
}
