using System.Runtime.Intrinsics;
using System.Runtime.CompilerServices;
using QuantSharp.Graph;
using QuantSharp.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// Softmax and LogSoftmax. Before opset 13 the input is coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])]
/// (axis default 1) and normalised over the second dimension; from 13 over the single axis (default −1).
/// softmax(x) = exp(x − max) / Σ exp(x − max); logsoftmax(x) = x − max − log Σ exp(x − max).
/// </summary>
public abstract class SoftmaxKernelBase : OpKernel
{
    protected abstract bool Log { get; }

    /// <summary>[outer, reduce, inner] view of a Softmax/LogSoftmax/Hardmax input under the node's opset rules.</summary>
    internal static (int Outer, int Reduce, int Inner) Layout(OpKernel k, int[] shape)
    {
        int rank = shape.Length;
        if (rank == 0) return (1, 1, 1);
        if (k.OpsetVersion < 13)
        {
            int axis = ShapeUtil.NormalizeAxis(k.Node.GetInt("axis", 1), rank);
            int outer = 1, inner = 1;
            for (int d = 0; d < axis; d++) outer *= shape[d];
            for (int d = axis; d < rank; d++) inner *= shape[d];
            return (outer, inner, 1);
        }
        int a = ShapeUtil.NormalizeAxis(k.Node.GetInt("axis", -1), rank);
        int o = 1, i = 1;
        for (int d = 0; d < a; d++) o *= shape[d];
        for (int d = a + 1; d < rank; d++) i *= shape[d];
        return (o, shape[a], i);
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0, x.DataType, (int[])x.Shape.Clone());
        if (x.Length == 0) return;
        var (outer, reduce, inner) = Layout(this, x.Shape);
        switch (x)
        {
            case Tensor<float> xf: Run(ctx, xf.Data, ((Tensor<float>)y).Data, outer, reduce, inner); break;
            case Tensor<Half> or Tensor<BFloat16>:
                var f = Conversions.ToFloat(x);
                var r = new float[f.Length];
                Run(ctx, f, r, outer, reduce, inner);
                Conversions.FromFloat(r, y);
                break;
            case Tensor<double> xd: RunDouble(xd.Data, ((Tensor<double>)y).Data, outer, reduce, inner); break;
            default: throw new QuantSharpException($"{Node.OpType} does not accept {DataTypes.Name(x.DataType)} inputs");
        }
    }

    private void Run(KernelContext ctx, float[] x, float[] y, int outer, int reduce, int inner)
    {
        bool log = Log;
        int block = reduce * inner;
        int minChunk = Math.Max(1, Broadcast.ParallelChunk / Math.Max(1, block));
        if (inner == 1 && !log && reduce % 16 == 0 && Vector512.IsHardwareAccelerated)
        {
            ctx.ParallelFor(outer, minChunk, (s, e) => Rows16(x.AsSpan(s * reduce, (e - s) * reduce), y.AsSpan(s * reduce, (e - s) * reduce), reduce));
            return;
        }
        if (inner == 1)
        {
            ctx.ParallelFor(outer, minChunk, (s, e) =>
            {
                for (int o = s; o < e; o++) Row(x.AsSpan(o * reduce, reduce), y.AsSpan(o * reduce, reduce), log);
            });
            return;
        }
        ctx.ParallelFor(outer, minChunk, (s, e) =>
        {
            var m = new float[inner];
            var sum = new float[inner];
            for (int o = s; o < e; o++) Strided(x.AsSpan(o * block, block), y.AsSpan(o * block, block), reduce, inner, m, sum, log);
        });
    }

    /// <summary>
    /// Softmax of consecutive rows whose length is a multiple of 16, in registers: the row maximum from 16-lane
    /// maxima, e = exp(x − max) stored with a 16-lane running sum, then y = e / Σ. Short rows (attention's 16 or 64
    /// keys) pay no per-row call overhead, which dominates the TensorPrimitives path there.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows16(ReadOnlySpan<float> x, Span<float> y, int reduce)
    {
        for (int o = 0; o + reduce <= x.Length; o += reduce)
        {
            var xr = x.Slice(o, reduce);
            var yr = y.Slice(o, reduce);
            var m = Vector512.Create(xr);
            for (int i = 16; i < reduce; i += 16) m = Vector512.Max(m, Vector512.Create(xr.Slice(i, 16)));
            var m8 = Vector256.Max(m.GetLower(), m.GetUpper());
            var m4 = Vector128.Max(m8.GetLower(), m8.GetUpper());
            float max = MathF.Max(MathF.Max(m4[0], m4[1]), MathF.Max(m4[2], m4[3]));
            var vmax = Vector512.Create(max);
            var sum = Vector512<float>.Zero;
            for (int i = 0; i < reduce; i += 16)
            {
                var e = ActivationMath.ExpNonPositive(Vector512.Create(xr.Slice(i, 16)) - vmax); // x − max ≤ 0
                sum += e;
                e.CopyTo(yr.Slice(i, 16));
            }
            var vs = Vector512.Create(Vector512.Sum(sum));
            for (int i = 0; i < reduce; i += 16) (Vector512.Create(yr.Slice(i, 16)) / vs).CopyTo(yr.Slice(i, 16));
        }
    }

    /// <summary>Normalises one contiguous row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row(ReadOnlySpan<float> x, Span<float> y, bool log)
    {
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, y);
        TensorPrimitives.Exp(y, y);
        float sum = TensorPrimitives.Sum(y);
        if (log) TensorPrimitives.Subtract(x, max + MathF.Log(sum), y);
        else TensorPrimitives.Divide(y, sum, y);
    }

    /// <summary>Normalises a [reduce, inner] block along its first dimension, one vectorised row at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Strided(ReadOnlySpan<float> x, Span<float> y, int reduce, int inner, float[] m, float[] sum, bool log)
    {
        x[..inner].CopyTo(m);
        for (int r = 1; r < reduce; r++) TensorPrimitives.Max(m, x.Slice(r * inner, inner), m);
        Array.Clear(sum);
        for (int r = 0; r < reduce; r++)
        {
            var yr = y.Slice(r * inner, inner);
            TensorPrimitives.Subtract(x.Slice(r * inner, inner), m, yr);
            TensorPrimitives.Exp(yr, yr);
            TensorPrimitives.Add(sum, yr, sum);
        }
        if (log)
        {
            // y = x − (max + log Σ)
            TensorPrimitives.Log(sum, sum);
            TensorPrimitives.Add(sum, m, sum);
            for (int r = 0; r < reduce; r++) TensorPrimitives.Subtract(x.Slice(r * inner, inner), sum, y.Slice(r * inner, inner));
        }
        else
        {
            for (int r = 0; r < reduce; r++) TensorPrimitives.Divide(y.Slice(r * inner, inner), sum, y.Slice(r * inner, inner));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void RunDouble(double[] x, double[] y, int outer, int reduce, int inner)
    {
        for (int o = 0; o < outer; o++)
        {
            for (int i = 0; i < inner; i++)
            {
                int b = o * reduce * inner + i;
                double max = double.NegativeInfinity;
                for (int r = 0; r < reduce; r++) max = Math.Max(max, x[b + r * inner]);
                double sum = 0;
                for (int r = 0; r < reduce; r++) sum += Math.Exp(x[b + r * inner] - max);
                for (int r = 0; r < reduce; r++)
                {
                    double v = x[b + r * inner] - max;
                    y[b + r * inner] = Log ? v - Math.Log(sum) : Math.Exp(v) / sum;
                }
            }
        }
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is { } t) ctx.SetOutputType(0, t);
    }
}

[OnnxOperator("Softmax", 1)]
public sealed class SoftmaxKernel : SoftmaxKernelBase
{
    protected override bool Log => false;
}

[OnnxOperator("LogSoftmax", 1)]
public sealed class LogSoftmaxKernel : SoftmaxKernelBase
{
    protected override bool Log => true;
}

/// <summary>Hardmax: 1 at the first maximum along the axis (opset rules as Softmax), 0 elsewhere.</summary>
[OnnxOperator("Hardmax", 1)]
public sealed class HardmaxKernel : OpKernel
{
    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var (outer, reduce, inner) = SoftmaxKernelBase.Layout(this, x.Shape);
        var y = ctx.Output(0, x.DataType, (int[])x.Shape.Clone());
        var v = x is Tensor<float> f ? f.Data : ((Tensor<float>)Conversions.Convert(x, DataType.Float)).Data;
        var r = new float[x.Length];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int b = o * reduce * inner + i, best = 0;
                for (int k = 1; k < reduce; k++) if (v[b + k * inner] > v[b + best * inner]) best = k;
                if (reduce > 0) r[b + best * inner] = 1f;
            }
        Conversions.Convert(new Tensor<float>(r, (int[])x.Shape.Clone()), y);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is { } t) ctx.SetOutputType(0, t);
    }
}
