using System.Diagnostics;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Bench;

/// <summary>
/// `channel-quick`: the weights-on-the-left conv GEMM (<see cref="Int8ChannelGemm"/>) on the convolution shapes of the
/// example models, one thread: packing of the column matrix and the requantizing multiply timed separately.
/// </summary>
public static unsafe class ChannelGemmQuick
{
    public static void Run()
    {
        if (!Int8ChannelGemm.IsSupported) { Console.WriteLine("channel GEMM: AVX-VNNI not available"); return; }
        foreach (var (m, k, n) in new[] { (32, 16, 784), (72, 24, 196), (24, 72, 196), (32, 144, 196), (64, 288, 49), (16, 9, 784), (96, 32, 49), (24, 32, 196), (128, 32, 49) })
        {
            var rnd = new Random(1);
            var w = new sbyte[m * k];
            rnd.NextBytes((byte[])(Array)w);
            var x = new byte[k * n];
            rnd.NextBytes(x);
            var pw = Int8ChannelWeights.Pack(m, k, w, [0]);
            var panel = new byte[Int8ChannelGemm.PanelBytes(pw.PaddedDepth, n)];
            var y = new byte[m * n];
            var rq = new Int8ChannelRequantization(Enumerable.Repeat(0.001f, m).ToArray(), new float[m], 3, 0, 255);
            int reps = Math.Max(1, 20_000_000 / (m * k * n));
            fixed (byte* px = x) fixed (byte* pp = panel) fixed (byte* py = y)
            {
                byte* a = px, b = pp, c = py;
                double pack = Best(() => { for (int r = 0; r < reps; r++) Int8ChannelGemm.PackColumns(a, n, k, n, 0, pw.PaddedDepth, b, null); }) / reps;
                double mul = Best(() => { for (int r = 0; r < reps; r++) Int8ChannelGemm.Multiply(pw, b, n, 3, null, rq, c, n); }) / reps;
                Console.WriteLine($"M={m,3} K={k,3} N={n,3}: pack {pack * 1e6,8:F2} us, multiply {mul * 1e6,8:F2} us = {2.0 * m * k * n / mul / 1e9,6:F1} GOPS");
            }
        }
    }

    private static double Best(Action run)
    {
        run();
        double best = double.MaxValue;
        for (int r = 0; r < 5; r++)
        {
            var sw = Stopwatch.StartNew();
            run();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }
}
