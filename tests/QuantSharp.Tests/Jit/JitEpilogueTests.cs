using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Kernels.Jit;
using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Tensors;
using QuantSharp.Tests.Kernels;
using RequantizationMode = QuantSharp.Runtime.Lowering.RequantizationMode;

namespace QuantSharp.Tests.Jit;

/// <summary>
/// The fused epilogue: the driver hands each finished tile to a sink (no m×N int32 matrix), and the lowered Gemm
/// requantizes the tiles while they are in cache. Both are checked bit for bit against the scalar reference (int32
/// product, then <see cref="Requantizer.Apply"/> element by element) over odd shapes (M = 1, K not a multiple of 4
/// or 64, N over several 16-column blocks and tiles, M over several row tiles), tile plans, 1 and 2 threads, and
/// generated code on and off.
/// </summary>
public class JitEpilogueTests
{
    /// <summary>Copies tiles into a full matrix and counts how often each element was delivered.</summary>
    private sealed unsafe class RecordingSink(int n, int[] c, int[] hits) : IInt8GemmTileSink
    {
        public void Consume(int* tile, int ldt, int row0, int rows, int col0, int cols)
        {
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                {
                    c[(row0 + i) * n + col0 + j] = tile[i * ldt + j];
                    Interlocked.Increment(ref hits[(row0 + i) * n + col0 + j]);
                }
        }
    }

    private static IEnumerable<IInt8GemmKernel> Kernels()
    {
        if (GeneratedInt8Kernel.Instance.IsSupported)
        {
            yield return GeneratedInt8Kernel.Instance;
            yield return new GeneratedInt8Kernel(null, prefetchMinBytes: 0);
        }
        yield return GeneratedInt8Kernel.Select(allowGenerated: false)!;
    }

    [Fact]
    public void SinkReceivesEveryTileOnceWithTheReferenceProduct()
    {
        var rnd = new Random(5);
        Int8GemmTiling?[] plans = [null, Int8GemmTiling.RowMajor, new Int8GemmTiling(7, 1, true)];
        int t = 0;
        foreach (var (m, n, k) in new[] { (1, 1, 1), (1, 300, 67), (7, 17, 130), (97, 150, 64), (200, 300, 70), (13, 129, 257) })
        {
            bool signedA = (t++ & 1) != 0;
            int za = signedA ? 5 : 131;
            int[] zb = Enumerable.Range(0, n).Select(_ => rnd.Next(-128, 128)).ToArray();
            var a = Int8GemmCheck.Bytes(rnd, m * k, signedA);
            var b = (sbyte[])(Array)Int8GemmCheck.Bytes(rnd, k * n, true);
            var packed = PackedInt8Weights.Pack(k, n, b, n, false, zb);
            var expected = new int[m * n];
            if (signedA) Int8GemmReference.Gemm<sbyte>(m, n, k, (sbyte[])(Array)a, k, za, b, n, false, zb, expected, n);
            else Int8GemmReference.Gemm<byte>(m, n, k, a, k, za, b, n, false, zb, expected, n);
            foreach (var kernel in Kernels())
                foreach (var plan in plans)
                    foreach (int threads in new[] { 1, 2 })
                    {
                        var c = new int[m * n];
                        var hits = new int[m * n];
                        var sink = new RecordingSink(n, c, hits);
                        if (signedA) Int8Gemm.Multiply(m, (ReadOnlySpan<sbyte>)(sbyte[])(Array)a, k, za, packed, sink, threads, kernel, plan);
                        else Int8Gemm.Multiply(m, (ReadOnlySpan<byte>)a, k, za, packed, sink, threads, kernel, plan);
                        Assert.All(hits, h => Assert.Equal(1, h));
                        Assert.Equal(expected, c);
                    }
        }
    }

    public static TheoryData<RequantizationMode, DataType> OutputModes() => new()
    {
        { RequantizationMode.Float, DataType.UInt8 },
        { RequantizationMode.Float, DataType.Int8 },
        { RequantizationMode.FixedPoint, DataType.UInt8 },
        { RequantizationMode.FixedPoint, DataType.Int8 },
        { RequantizationMode.Float, DataType.Float },
    };

    [Theory]
    [MemberData(nameof(OutputModes))]
    public void LoweredGemmRequantizesTilesExactlyLikeTheScalarReference(RequantizationMode mode, DataType output)
    {
        var rnd = new Random(17 + (int)mode * 3 + (int)output);
        foreach (var (m, n, k) in new[] { (1, 17, 67), (37, 150, 130), (130, 300, 64), (5, 33, 3) })
        {
            float xs = 0.011f, ys = 0.4f;
            int za = 119, yz = output == DataType.Int8 ? -7 : 131;
            var a = Int8GemmCheck.Bytes(rnd, m * k, false);
            var w = (sbyte[])(Array)Int8GemmCheck.Bytes(rnd, n * k, true);
            var ws = Enumerable.Range(0, n).Select(_ => 0.002f + 0.01f * rnd.NextSingle()).ToArray();
            var wz = Enumerable.Range(0, n).Select(j => (sbyte)(j % 7 - 3)).ToArray();
            var bias = Enumerable.Range(0, n).Select(_ => rnd.NextSingle() * 20f - 10f).ToArray();

            // Scalar reference: exact int32 product, then the requantizer's scalar formula per element.
            var acc = new int[m * n];
            Int8GemmReference.Gemm<byte>(m, n, k, a, k, za, w, k, true, wz.Select(z => (int)z).ToArray(), acc, n);
            var accScale = ws.Select(s => xs * s).ToArray();
            var expectedBytes = new byte[m * n];
            var expectedFloats = new float[m * n];
            if (output == DataType.Float)
            {
                for (int i = 0; i < acc.Length; i++) expectedFloats[i] = acc[i] * accScale[i % n] + bias[i % n];
            }
            else
            {
                var (qmin, qmax) = output == DataType.Int8 ? (-128, 127) : (0, 255);
                var rq = new Requantizer(n, accScale, bias, ys, yz, qmin, qmax, mode);
                for (int i = 0; i < acc.Length; i++) expectedBytes[i] = (byte)rq.Apply(acc[i], i % n);
            }

            var model = LoweredGemm(m, n, k, xs, za, w, ws, wz, bias, output == DataType.Float ? null : (ys, yz, output));
            var feeds = new Dictionary<string, Tensor> { ["a"] = new Tensor<byte>(a, [m, k]) };
            foreach (bool generated in new[] { true, false })
                foreach (int threads in new[] { 1, 2 })
                {
                    using var session = new InferenceSession(model.Clone(), new SessionOptions
                    {
                        IntraOpThreads = threads,
                        IntegerExecution = new IntegerExecutionOptions { Requantization = mode, GeneratedCode = generated },
                    });
                    var y = session.Run(feeds).Values.Single();
                    switch (y)
                    {
                        case Tensor<float> f: Assert.Equal(expectedFloats, f.Data); break;
                        case Tensor<byte> u: Assert.Equal(expectedBytes, u.Data); break;
                        case Tensor<sbyte> s: Assert.Equal(expectedBytes, (byte[])(Array)s.Data); break;
                        default: Assert.Fail($"unexpected output {y}"); break;
                    }
                }
        }
    }

    /// <summary>A graph of one lowered integer Gemm (u8 a [m, k], s8 w [n, k] with trans_b = 1, per-column scales and
    /// zero points, float bias) with a u8/s8 output (y_scale, y_zero_point) or a float one (quantized = null).</summary>
    private static Model LoweredGemm(int m, int n, int k, float xs, int za, sbyte[] w, float[] ws, sbyte[] wz, float[] bias,
        (float Scale, int Zero, DataType Type)? quantized)
    {
        var g = new Graph.Graph { Name = "lowered_gemm" };
        var e = g.Edit();
        var a = e.AddInput("a", TensorTypeInfo.FromShape(DataType.UInt8, [m, k]));
        var inputs = new List<Value?>
        {
            a,
            e.AddInitializer("a_scale", new Tensor<float>([xs], [])),
            e.AddInitializer("a_zero_point", new Tensor<byte>([(byte)za], [])),
            e.AddInitializer("w", new Tensor<sbyte>(w, [n, k])),
            e.AddInitializer("w_scale", new Tensor<float>(ws, [n])),
            e.AddInitializer("w_zero_point", new Tensor<sbyte>(wz, [n])),
            e.AddInitializer("bias", new Tensor<float>(bias, [n])),
        };
        if (quantized is { } q)
        {
            inputs.Add(e.AddInitializer("y_scale", new Tensor<float>([q.Scale], [])));
            inputs.Add(e.AddInitializer("y_zero_point", q.Type == DataType.Int8 ? new Tensor<sbyte>([(sbyte)q.Zero], []) : new Tensor<byte>([(byte)q.Zero], [])));
        }
        var node = e.AddNode("Gemm", inputs, domain: IntegerLowering.Domain, attributes: [NodeAttribute.Of("trans_b", 1L)]);
        e.AddOutput(node.Outputs[0]!);
        var model = new Model(g);
        model.SetOpset("", 21);
        model.SetOpset(IntegerLowering.Domain, 1);
        return model;
    }
}
