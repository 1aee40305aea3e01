using System.Diagnostics;
using QuantSharp.Llm;
using QuantSharp.Llm.Formats;
using QuantSharp.Llm.Kernels;
using QuantSharp.Llm.Synthetic;

namespace QuantSharp.Bench;

/// <summary>
/// `llm-kernels [threads]`: one-thread throughput of the int8-activation block kernels per path and format, as GEMV
/// (one token, the decode case: weights stream from memory) and GEMM (64 tokens, the prompt case: compute bound),
/// in GMAC/s and weight GB/s; plus the FP32 GEMV for comparison. Best of 5 after a warm-up (Stopwatch).
/// </summary>
public static unsafe class LlmKernelsQuick
{
    public static void Run()
    {
        // 5632×2048 (an FFN up-projection of TinyLlama): 11.5M weights, 12 MB at Q8_0 (beyond L2, from L3/DRAM).
        var cfg = new LlamaConfig(2048, 5632, 1, 32, 4, 8, 16, false);
        foreach (var type in new[] { "q8_0", "q4_0", "q4_1" })
        {
            var w = SyntheticModels.CreateLlama(cfg, type, 3);
            var m = (IPackedQ8Matrix)w.Layers[0].W1;
            var p = m.Packed;
            foreach (int tokens in new[] { 1, 64 })
            {
                var x = new Q8Batch(p.Cols, tokens);
                x.Quantize(Enumerable.Range(0, tokens * p.Cols).Select(i => MathF.Sin(i * 0.37f)).ToArray(), tokens, p.Cols);
                var y = new float[tokens * p.Rows];
                foreach (var isa in QKernels.Supported)
                {
                    if (isa == QKernelIsa.Scalar && tokens > 1) continue;
                    double best = double.MaxValue;
                    fixed (float* py = y)
                        for (int rep = 0; rep < 6; rep++)
                        {
                            var sw = Stopwatch.StartNew();
                            QKernels.Gemm(isa, p, x, 0, tokens, py, p.Rows, 0, p.Groups);
                            if (rep > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
                        }
                    double macs = (double)tokens * p.Rows * p.Cols;
                    Console.WriteLine($"{type} {isa,-9} {p.Rows}×{p.Cols} × {tokens,2} tokens, 1 thread: {macs / best / 1e9,7:F1} GMAC/s, weights {p.Bytes / best / 1e9,6:F1} GB/s ({best * 1e3:F2} ms)");
                }
            }
        }
        var f = SyntheticModels.CreateLlama(cfg, "f32", 3).Layers[0].W1;
        var xf = Enumerable.Range(0, f.Cols).Select(i => MathF.Sin(i * 0.37f)).ToArray();
        var yf = new float[f.Rows];
        double bf = double.MaxValue;
        for (int rep = 0; rep < 6; rep++)
        {
            var sw = Stopwatch.StartNew();
            f.MatVec(xf, yf, 0, f.Rows);
            if (rep > 0) bf = Math.Min(bf, sw.Elapsed.TotalSeconds);
        }
        Console.WriteLine($"f32 Vector512 {f.Rows}×{f.Cols} × 1 token, 1 thread: {(double)f.Rows * f.Cols / bf / 1e9,7:F1} GMAC/s, weights {f.Bytes / bf / 1e9,6:F1} GB/s ({bf * 1e3:F2} ms)");
    }
}
