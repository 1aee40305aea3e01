using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using QuantSharp.Runtime.Kernels.Jit;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Bench;

/// <summary>
/// `gemm-json [REPS]`: QuantSharp's int8 GEMM at the issue-6 shapes (1024³ and 64×4096×4096, one thread) as one JSON
/// object, for bench/peers (next to ONNX Runtime's MatMulInteger and PyTorch's quantized linear at the same shapes).
/// Every managed IInt8GemmKernel (u8×s8, driver included: A panel copy, row sums, zero-point correction) and each
/// generated backend available here (s8×s8, B packed once, A repacked per call). One weight matrix, packed once,
/// as a peer's constant initializer is; best of REPS (default 10) after one warm-up; GOPS = 2·M·N·K / time.
/// </summary>
public static class GemmJson
{
    public static readonly (int M, int N, int K)[] Shapes = [(1024, 1024, 1024), (64, 4096, 4096)];

    public static void Run(string[] args)
    {
        int reps = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 10;
        var rows = new List<(string Impl, int M, int N, int K, double Seconds)>();
        foreach (var (m, n, k) in Shapes)
        {
            var rnd = new Random(11);
            var a = new byte[m * k];
            var b = new byte[k * n];
            rnd.NextBytes(a);
            rnd.NextBytes(b);
            var c = new int[m * n];
            var packed = PackedInt8Weights.Pack(k, n, (sbyte[])(Array)b, n, false, [0]);
            foreach (var kernel in Int8Gemm.SupportedKernels.Where(x => x.Name != "Scalar"))
                rows.Add(($"Int8Gemm driver, {kernel.Name} kernel, u8*s8", m, n, k,
                    Best(() => Int8Gemm.Multiply(m, (ReadOnlySpan<byte>)a, k, 3, packed, c, n, 1, kernel), reps)));
            foreach (var backend in new[] { JitBackend.Amx, JitBackend.Avx512Vnni })
            {
                using var gemm = JitInt8Gemm.TryCreate(maxBackend: backend);
                if (gemm is null || gemm.Backend != backend) continue;
                var sa = MemoryMarshal.Cast<byte, sbyte>(a.AsSpan()).ToArray();
                using var jp = gemm.PackB(MemoryMarshal.Cast<byte, sbyte>(b.AsSpan()).ToArray(), k, n, n);
                rows.Add(($"JitInt8Gemm {backend} (generated), s8*s8", m, n, k, Best(() => gemm.Gemm(m, sa, k, [], jp, [], c, n), reps)));
            }
        }
        using var stream = Console.OpenStandardOutput();
        using var j = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        j.WriteStartObject();
        j.WriteString("peer", "quantsharp");
        j.WriteNumber("threads", 1);
        j.WriteNumber("repetitions", reps);
        j.WriteStartArray("gemm");
        foreach (var r in rows)
        {
            j.WriteStartObject();
            j.WriteString("impl", r.Impl);
            j.WriteNumber("m", r.M);
            j.WriteNumber("n", r.N);
            j.WriteNumber("k", r.K);
            j.WriteNumber("best_ms", Math.Round(r.Seconds * 1e3, 4));
            j.WriteNumber("gops", Math.Round(2.0 * r.M * r.N * r.K / r.Seconds / 1e9, 1));
            j.WriteEndObject();
        }
        j.WriteEndArray();
        j.WriteEndObject();
        j.Flush();
        stream.WriteByte((byte)'\n');
    }

    private static double Best(Action run, int reps)
    {
        run();
        double best = double.MaxValue;
        for (int r = 0; r < reps; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            run();
            best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        return best;
    }
}
