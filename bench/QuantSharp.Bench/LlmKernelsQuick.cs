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
                if (type == "q8_0" && JitQ8Gemm.IsSupported)
                {
                    // The generated 512-bit block kernel on its 16-row panels (what ForwardBatch uses for Q8_0).
                    var panels = JitQ8Panels.For(p);
                    double best = double.MaxValue;
                    fixed (float* py = y)
                        for (int rep = 0; rep < 6; rep++)
                        {
                            var sw = Stopwatch.StartNew();
                            JitQ8Gemm.Gemm(panels, x, 0, tokens, py, p.Rows, 0, panels.Panels);
                            if (rep > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
                        }
                    double macs = (double)tokens * p.Rows * p.Cols;
                    Console.WriteLine($"{type} {"Jit",-9} {p.Rows}×{p.Cols} × {tokens,2} tokens, 1 thread: {macs / best / 1e9,7:F1} GMAC/s, weights {p.Bytes / best / 1e9,6:F1} GB/s ({best * 1e3:F2} ms)");
                }
            }
        }
        // DRAM-resident: the TinyLlama classifier shape (32000×2048, 70 MB at Q8_0) against a plain read of as many bytes.
        var big = SyntheticModels.CreateLlama(new LlamaConfig(2048, 64, 1, 32, 4, 32000, 16, false), "q8_0", 4);
        var pc = ((IPackedQ8Matrix)big.Classifier).Packed;
        var xb = new Q8Batch(pc.Cols, 1);
        xb.Quantize(Enumerable.Range(0, pc.Cols).Select(i => MathF.Sin(i * 0.37f)).ToArray());
        var yb = new float[pc.Rows];
        foreach (var isa in new[] { QKernelIsa.AvxVnni, QKernelIsa.Avx512BW }.Where(QKernels.IsSupported))
        {
            double best = double.MaxValue;
            fixed (float* py = yb)
                for (int rep = 0; rep < 6; rep++)
                {
                    var sw = Stopwatch.StartNew();
                    QKernels.Gemm(isa, pc, xb, 0, 1, py, pc.Rows, 0, pc.Groups);
                    if (rep > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
                }
            Console.WriteLine($"q8_0 {isa,-9} {pc.Rows}×{pc.Cols} × 1 token (from DRAM), 1 thread: weights {pc.Bytes / best / 1e9,6:F1} GB/s ({best * 1e3:F2} ms)");
        }
        {
            long n = pc.Bytes;
            var buf = GC.AllocateArray<byte>((int)n, pinned: true);
            buf.AsSpan().Fill(1);
            double best = double.MaxValue;
            ulong sink = 0;
            fixed (byte* p0 = buf)
                for (int rep = 0; rep < 6; rep++)
                {
                    var sw = Stopwatch.StartNew();
                    var acc = System.Runtime.Intrinsics.Vector512<ulong>.Zero;
                    for (long i = 0; i + 64 <= n; i += 64) acc += System.Runtime.Intrinsics.Vector512.Load((ulong*)(p0 + i));
                    sink += System.Runtime.Intrinsics.Vector512.Sum(acc);
                    if (rep > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
                }
            Console.WriteLine($"plain Vector512 read of {n / 1e6:F0} MB, 1 thread: {n / best / 1e9,6:F1} GB/s (checksum {sink % 10})");
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
