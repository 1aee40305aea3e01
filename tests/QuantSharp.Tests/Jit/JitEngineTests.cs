using QuantSharp.Data;
using QuantSharp.Onnx;
using QuantSharp.Quantization.Calibration;
using QuantSharp.Quantization.Quantizers;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Kernels.Jit;
using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Tensors;
using QuantSharp.Tests.Kernels;

namespace QuantSharp.Tests.Jit;

/// <summary>
/// The generated VNNI kernel as the integer engine's micro-kernel: bit-exact against the scalar reference over
/// random shapes aimed at its register blocking (6-row blocks and 1–5-row tails, 4-block column groups and 1–3-block
/// remainders, a masked last block), through the driver with 1 and 2 threads, and whole quantized models giving
/// identical outputs with generated code on and off.
/// </summary>
public class JitEngineTests
{
    private static IInt8GemmKernel Generated => Int8Gemm.Find(GeneratedInt8Kernel.KernelName);

    [JitBackendFact(JitBackend.Avx512Vnni)]
    public void GeneratedKernelIsTheDriversDefaultAndTheOptionSelectsAManagedOne()
    {
        Assert.True(GeneratedInt8Kernel.Instance.IsSupported);
        if (!CpuFeatures.DisabledByEnvironment && Environment.GetEnvironmentVariable(Int8Gemm.KernelEnvironmentVariable) is null or "")
            Assert.Equal(GeneratedInt8Kernel.KernelName, Int8Gemm.Default.Name);
        Assert.Null(GeneratedInt8Kernel.Select(allowGenerated: true));
        var managed = GeneratedInt8Kernel.Select(allowGenerated: false);
        Assert.NotNull(managed);
        Assert.False(GeneratedInt8Kernel.IsGenerated(managed));
        Assert.True(managed.IsSupported);
    }

    [JitBackendFact(JitBackend.Avx512Vnni)]
    public void RandomShapesMatchReferenceThroughTheDriver()
    {
        var rnd = new Random(2024);
        var kernel = Generated;
        // Fixed edge shapes first: M = 1, K not a multiple of 4 or 64, N not a multiple of 16, and more than one
        // 96-row driver tile and 8-block column tile.
        var shapes = new List<(int M, int N, int K)>
        {
            (1, 1, 1), (1, 4096 / 16, 3), (1, 17, 67), (6, 64, 64), (7, 65, 130), (13, 49, 5), (5, 15, 257),
            (97, 130, 61), (193, 47, 33), (12, 200, 4), (11, 143, 2),
        };
        while (shapes.Count < 40) shapes.Add((rnd.Next(1, 40), rnd.Next(1, 160), rnd.Next(1, 300)));
        int t = 0;
        foreach (var (m, n, k) in shapes)
        {
            bool signedA = (t & 1) != 0, transB = (t & 2) != 0;
            int za = signedA ? rnd.Next(-128, 128) : rnd.Next(256);
            int[] zb = (t % 3) switch { 0 => [], 1 => [rnd.Next(-128, 128)], _ => Enumerable.Range(0, n).Select(_ => rnd.Next(-128, 128)).ToArray() };
            var a = Int8GemmCheck.Bytes(rnd, m * k, signedA);
            var b = (sbyte[])(Array)Int8GemmCheck.Bytes(rnd, k * n, true);
            foreach (int threads in new[] { 1, 2 })
                Assert.Null(Int8GemmCheck.Compare(kernel, m, n, k, a, signedA, za, b, transB, zb, threads));
            t++;
        }
    }

    [JitBackendFact(JitBackend.Avx512Vnni)]
    public void EveryTilePlanAndPrefetchSettingMatchesReference()
    {
        // Row- and column-major tile orders, small tiles (many row and column tiles, ragged last ones), and the VNNI
        // variants with the software prefetch forced on (threshold 0: also for the last group, where it falls back to
        // the current block) or off: each gives the reference's exact product, with 1 and 2 threads.
        var kernels = new IInt8GemmKernel[] { new GeneratedInt8Kernel(null, prefetchMinBytes: 0), new GeneratedInt8Kernel(null, prefetchMinBytes: long.MaxValue) };
        Int8GemmTiling[] plans = [Int8GemmTiling.RowMajor, new(96, 8, true), new(7, 1, true), new(13, 3, false), new(12, 5, true)];
        var rnd = new Random(31);
        int t = 0;
        foreach (var (m, n, k) in new[] { (1, 300, 129), (13, 1000, 5), (97, 520, 33), (200, 300, 70), (31, 65, 257), (6, 64, 64) })
        {
            bool signedA = (t++ & 1) != 0;
            int za = signedA ? -3 : 200;
            int[] zb = Enumerable.Range(0, n).Select(_ => rnd.Next(-128, 128)).ToArray();
            var a = Int8GemmCheck.Bytes(rnd, m * k, signedA);
            var b = (sbyte[])(Array)Int8GemmCheck.Bytes(rnd, k * n, true);
            var packed = PackedInt8Weights.Pack(k, n, b, n, false, zb);
            var expected = new int[m * n];
            if (signedA) Int8GemmReference.Gemm<sbyte>(m, n, k, (sbyte[])(Array)a, k, za, b, n, false, zb, expected, n);
            else Int8GemmReference.Gemm<byte>(m, n, k, a, k, za, b, n, false, zb, expected, n);
            foreach (var kernel in kernels)
                foreach (var plan in plans)
                    foreach (int threads in new[] { 1, 2 })
                    {
                        var actual = new int[m * n];
                        if (signedA) Int8Gemm.Multiply(m, (ReadOnlySpan<sbyte>)(sbyte[])(Array)a, k, za, packed, actual, n, threads, kernel, plan);
                        else Int8Gemm.Multiply(m, (ReadOnlySpan<byte>)a, k, za, packed, actual, n, threads, kernel, plan);
                        Assert.Equal(expected, actual);
                    }
        }
    }

    [Fact]
    public void DefaultTilePlanReReadsTheSmallerOperand()
    {
        var big = PackedInt8Weights.Pack(4096, 256, new sbyte[4096 * 256], 256, false);
        Assert.True(Int8GemmTiling.For(96, big).ColumnsOuter);
        Assert.False(Int8GemmTiling.For(1024, big).ColumnsOuter);
    }

    [JitBackendFact(JitBackend.Amx)]
    public void AmxEngineKernelMatchesReferenceOnHardware()
    {
        // B packed with K padded to 64 is what sends whole 32×32 blocks to the tiles (ragged parts stay on VNNI).
        Assert.Equal(JitBackend.Amx, GeneratedInt8Kernel.Instance.Backend);
        Assert.Equal(64, GeneratedInt8Kernel.KAlignmentFor(Generated));
        var rnd = new Random(64);
        foreach (var (m, n, k) in new[] { (32, 32, 64), (96, 128, 256), (70, 50, 130), (33, 47, 1), (200, 96, 300) })
            foreach (bool signedA in new[] { false, true })
                foreach (int threads in new[] { 1, 2 })
                {
                    var a = Int8GemmCheck.Bytes(rnd, m * k, signedA);
                    var b = (sbyte[])(Array)Int8GemmCheck.Bytes(rnd, k * n, true);
                    int za = signedA ? 9 : 140;
                    int[] zb = Enumerable.Range(0, n).Select(j => j % 5 - 2).ToArray();
                    var packed = PackedInt8Weights.Pack(k, n, b, n, false, zb, kAlignment: 64);
                    var expected = new int[m * n];
                    var actual = new int[m * n];
                    if (signedA)
                    {
                        Int8GemmReference.Gemm<sbyte>(m, n, k, (sbyte[])(Array)a, k, za, b, n, false, zb, expected, n);
                        Int8Gemm.Multiply(m, (ReadOnlySpan<sbyte>)(sbyte[])(Array)a, k, za, packed, actual, n, threads, Generated);
                    }
                    else
                    {
                        Int8GemmReference.Gemm<byte>(m, n, k, a, k, za, b, n, false, zb, expected, n);
                        Int8Gemm.Multiply(m, (ReadOnlySpan<byte>)a, k, za, packed, actual, n, threads, Generated);
                    }
                    Assert.Equal(expected, actual);
                }
    }

    [JitBackendFact(JitBackend.Avx512Vnni)]
    public unsafe void KernelWritesOnlyItsColumnBlocksAndRows()
    {
        // Direct calls with every block range of a 9-block (140-column) B: columns outside [16·start, 16·end) and
        // past N keep their sentinel; inside they equal the raw Σ A·B of the reference (no zero points).
        var rnd = new Random(7);
        int n = 140, k = 37, lda = 44, ldc = 150;
        var packed = PackedInt8Weights.Pack(k, n, (sbyte[])(Array)Int8GemmCheck.Bytes(rnd, k * n, true), n, false);
        var bRaw = new sbyte[k * n];
        for (int p = 0; p < k; p++)
            for (int j = 0; j < n; j++)
                bRaw[p * n + j] = (sbyte)packed.Data[j / 16 * packed.BlockStride + (p >> 2) * 64 + j % 16 * 4 + (p & 3)];
        foreach (int rows in new[] { 1, 5, 6, 7, 12, 17 })
        {
            var a = new byte[rows * lda];
            for (int i = 0; i < rows; i++) rnd.NextBytes(a.AsSpan(i * lda, k));
            var expected = new int[rows * n];
            Int8GemmReference.Gemm<byte>(rows, n, k, a, lda, 0, bRaw, n, false, [], expected, n);
            for (int start = 0; start < packed.ColumnBlocks; start++)
                for (int end = start + 1; end <= packed.ColumnBlocks; end++)
                {
                    var c = Enumerable.Repeat(int.MinValue, rows * ldc).ToArray();
                    fixed (byte* pa = a) fixed (int* pc = c) Generated.Multiply(pa, lda, rows, packed, start, end, pc, ldc);
                    for (int i = 0; i < rows; i++)
                        for (int j = 0; j < ldc; j++)
                        {
                            bool inside = j < n && j >= start * 16 && j < end * 16;
                            Assert.Equal(inside ? expected[i * n + j] : int.MinValue, c[i * ldc + j]);
                        }
                }
        }
    }

    [Fact]
    public void PublicInt8MatMulMatchesReference()
    {
        var rnd = new Random(11);
        foreach (var (m, n, k) in new[] { (1, 33, 70), (9, 64, 64), (70, 17, 5) })
        {
            var a = (sbyte[])(Array)Int8GemmCheck.Bytes(rnd, m * k, true);
            var w = (sbyte[])(Array)Int8GemmCheck.Bytes(rnd, n * k, true);
            var packed = Int8MatMul.PackWeights(w, k, n, transposed: true);
            var expected = new int[m * n];
            Int8GemmReference.Gemm<sbyte>(m, n, k, a, k, 0, w, k, true, [], expected, n);
            foreach (bool generated in new[] { true, false })
            {
                var c = new int[m * n];
                Int8MatMul.Multiply(m, a, k, 0, packed, c, n, threads: 2, allowGenerated: generated);
                Assert.Equal(expected, c);
                var aScale = Enumerable.Range(0, m).Select(i => 0.01f + i * 1e-3f).ToArray();
                var wScale = Enumerable.Range(0, n).Select(j => 0.02f + j * 1e-4f).ToArray();
                var bias = Enumerable.Range(0, n).Select(j => j * 0.5f - 3f).ToArray();
                var f = new float[m * n];
                Int8MatMul.MultiplyScaled(m, a, k, aScale, packed, wScale, bias, f, n, threads: 1, allowGenerated: generated);
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                        Assert.Equal(MathF.FusedMultiplyAdd(expected[i * n + j], aScale[i] * wScale[j], bias[j]), f[i * n + j]);
            }
        }
    }

    private const float Mean = 0.2860f, Std = 0.3530f;

    private static Tensor<float> Images(Tensor<byte> x, int start, int count)
    {
        int pixels = x.Length / x.Shape[0];
        var t = new Tensor<float>([count, 1, 28, 28]);
        for (int i = 0; i < count * pixels; i++) t.Data[i] = (x.Data[start * pixels + i] / 255f - Mean) / Std;
        return t;
    }

    [JitBackendAndModelFact(JitBackend.Avx512Vnni, "fmnist_cnn")]
    public void QuantizedCnnOutputsAreIdenticalWithGeneratedCodeOnAndOff() => CompareModel("fmnist_cnn");

    [JitBackendAndModelFact(JitBackend.Avx512Vnni, "fmnist_mobilenet")]
    public void QuantizedMobileNetOutputsAreIdenticalWithGeneratedCodeOnAndOff() => CompareModel("fmnist_mobilenet");

    private static void CompareModel(string name)
    {
        var examples = Path.Combine(TestPaths.RepoRoot, "examples");
        var model = OnnxModelIO.Load(Path.Combine(examples, "models", name + ".onnx"));
        var calib = Npz.Read(Path.Combine(examples, "data", "fmnist_calib_1000.npz")).Single(a => a.Name == "x").Tensor.As<byte>();
        string input = model.Graph.RuntimeInputs.Single().Name;
        var batches = Enumerable.Range(0, 2).Select(i => (IReadOnlyDictionary<string, Tensor>)new Dictionary<string, Tensor> { [input] = Images(calib, i * 32, 32) });
        var quantized = Quantizer.QuantizeStatic(model, batches, 64, new StaticQuantizerOptions
        {
            Calibration = new CalibrationOptions { Samples = 64, BatchSize = 32, IntraOpThreads = 2 },
        }).Model;
        var x = Images(calib, 100, 37);
        foreach (var mode in new[] { Runtime.Lowering.RequantizationMode.Float, Runtime.Lowering.RequantizationMode.FixedPoint })
        {
            float[]? first = null;
            foreach (bool generated in new[] { true, false })
                foreach (int threads in new[] { 1, 2 })
                {
                    using var session = new InferenceSession(quantized, new SessionOptions
                    {
                        IntraOpThreads = threads,
                        IntegerExecution = new IntegerExecutionOptions { Requantization = mode, GeneratedCode = generated },
                    });
                    Assert.Contains(session.Model.Graph.Nodes, n => n.Domain == IntegerLowering.Domain);
                    var y = session.Run(x).Values.First().As<float>().Data.ToArray();
                    if (first is null) first = y;
                    else Assert.Equal(first, y);
                }
        }
    }
}

/// <summary>A <see cref="JitBackendFactAttribute"/> that also skips, with the reason, when the example model is missing.</summary>
public sealed class JitBackendAndModelFactAttribute : FactAttribute
{
    public JitBackendAndModelFactAttribute(JitBackend backend, string model)
    {
        Skip = new JitBackendFactAttribute(backend).Skip;
        if (Skip is null && !File.Exists(Path.Combine(TestPaths.RepoRoot, "examples", "models", model + ".onnx")))
            Skip = $"examples/models/{model}.onnx is not in this checkout";
    }
}
