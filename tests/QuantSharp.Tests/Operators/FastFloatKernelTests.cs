using QuantSharp.Graph;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Operators.OpTester;

namespace QuantSharp.Tests.Operators;

/// <summary>
/// The vectorised FP32 paths added for the transformer baseline (Softmax over rows of a multiple of 16,
/// LayerNormalization with 16-lane statistics, Add of a trailing bias) against double-precision references, over
/// row lengths on and off the vector width and with 1 and 2 threads.
/// </summary>
public class FastFloatKernelTests
{
    [Theory]
    [InlineData(16)]
    [InlineData(32)]
    [InlineData(48)]
    [InlineData(17)]
    [InlineData(64)]
    public void SoftmaxLastAxisMatchesDouble(int reduce)
    {
        int rows = 37;
        var data = Random(rows * reduce, 3, -20f, 20f);
        data[5] = 80f;
        data[reduce + 1] = -80f;
        var x = F(data, rows, reduce);
        foreach (int threads in new[] { 1, 2 })
        {
            var y = Run1("Softmax", 13, [x], threads: threads);
            var want = new double[data.Length];
            for (int r = 0; r < rows; r++)
            {
                double max = double.NegativeInfinity, sum = 0;
                for (int i = 0; i < reduce; i++) max = Math.Max(max, data[r * reduce + i]);
                for (int i = 0; i < reduce; i++) sum += Math.Exp(data[r * reduce + i] - max);
                for (int i = 0; i < reduce; i++) want[r * reduce + i] = Math.Exp(data[r * reduce + i] - max) / sum;
            }
            AllClose(want, y, 1e-5, 1e-9);
        }
    }

    [Theory]
    [InlineData(64, true)]
    [InlineData(64, false)]
    [InlineData(35, true)]
    [InlineData(16, true)]
    [InlineData(7, false)]
    public void LayerNormalizationMatchesDouble(int size, bool withBias)
    {
        int rows = 19;
        var data = Random(rows * size, 4, -3f, 5f);
        var scale = Random(size, 5, 0.5f, 2f);
        var bias = Random(size, 6, -1f, 1f);
        Tensor?[] inputs = withBias ? [F(data, rows, size), F(scale, size), F(bias, size)] : [F(data, rows, size), F(scale, size)];
        var y = Run1("LayerNormalization", 17, inputs, [NodeAttribute.Of("epsilon", 1e-5f)]);
        var want = new double[data.Length];
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, var = 0;
            for (int i = 0; i < size; i++) mean += data[r * size + i];
            mean /= size;
            for (int i = 0; i < size; i++) var += Math.Pow(data[r * size + i] - mean, 2);
            double inv = 1 / Math.Sqrt(var / size + 1e-5);
            for (int i = 0; i < size; i++) want[r * size + i] = (data[r * size + i] - mean) * inv * scale[i] + (withBias ? bias[i] : 0);
        }
        AllClose(want, y, 1e-5, 1e-5);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AddOfTrailingBiasMatchesElementwise(bool biasFirst)
    {
        var a = Random(6 * 5 * 24, 7);
        var b = Random(24, 8);
        var ta = F(a, 6, 5, 24);
        var tb = F(b, 24);
        foreach (int threads in new[] { 1, 2 })
        {
            var y = Run1("Add", 14, biasFirst ? [tb, ta] : [ta, tb], threads: threads).As<float>();
            Assert.Equal([6, 5, 24], y.Shape);
            for (int i = 0; i < a.Length; i++) Assert.Equal(biasFirst ? b[i % 24] + a[i] : a[i] + b[i % 24], y.Data[i]);
        }
    }
}
