using System.Runtime.CompilerServices;
using System.Numerics;
using QuantSharp.Graph;
using QuantSharp.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace QuantSharp.Runtime.Operators;

/// <summary>What a Reduce* op computes: a map of each element, a combining rule, and a final map.</summary>
public enum ReduceKind { Sum, Mean, Max, Min, Prod, SumSquare, L1, L2, LogSum, LogSumExp }

/// <summary>
/// Reduce* ops. Axes come from the attribute before opset 13 (ReduceSum) / 18 (the others) and from optional
/// input 1 after; no axes means all axes unless noop_with_empty_axes=1, which makes the op an identity.
/// keepdims (default 1) keeps reduced axes as size 1. Reducing an empty set gives the combining rule's identity
/// (0 for sums, 1 for Prod, −inf for Max and LogSum(Exp), +inf for Min, NaN for Mean).
/// float with one block of adjacent reduced axes is vectorised; other cases accumulate in double.
/// </summary>
public abstract class ReduceKernel : OpKernel
{
    protected abstract ReduceKind Kind { get; }

    /// <summary>First opset in which axes is an input rather than an attribute.</summary>
    protected virtual int AxesInputSince => 18;

    private long[]? AxesFrom(Func<int, Tensor?> constant, out bool known)
    {
        known = true;
        if (OpsetVersion < AxesInputSince) return Node.GetInts("axes");
        if (Node.Input(1) is null) return null;
        var t = constant(1);
        if (t is null) { known = false; return null; }
        var r = new long[t.Length];
        for (int i = 0; i < r.Length; i++) r[i] = (long)t.GetDouble(i);
        return r;
    }

    /// <summary>Reduced-axis flags for a rank, or null when the op is an identity (noop_with_empty_axes).</summary>
    private bool[]? Mask(long[]? axes, int rank)
    {
        var mask = new bool[rank];
        if (axes is null || axes.Length == 0)
        {
            if (OpsetVersion >= AxesInputSince && Node.GetInt("noop_with_empty_axes", 0) != 0) return null;
            Array.Fill(mask, true);
            return mask;
        }
        foreach (var a in axes) mask[ShapeUtil.NormalizeAxis(a, rank, $"{Node.OpType} axis")] = true;
        return mask;
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var axes = AxesFrom(i => ctx.OptionalInput(i), out _);
        var mask = Mask(axes, x.Rank);
        bool keep = Node.GetInt("keepdims", 1) != 0;
        if (mask is null)
        {
            var id = ctx.Output(0, x.DataType, (int[])x.Shape.Clone());
            Array.Copy(x.Buffer, id.Buffer, x.Length);
            return;
        }
        var outShape = new List<int>();
        for (int d = 0; d < x.Rank; d++)
            if (!mask[d]) outShape.Add(x.Shape[d]);
            else if (keep) outShape.Add(1);
        var y = ctx.Output(0, x.DataType, outShape.ToArray());

        // Coalesce into alternating kept/reduced groups (size-1 dims dropped).
        var groups = new List<(int Size, bool Reduced)>();
        for (int d = 0; d < x.Rank; d++)
        {
            if (x.Shape[d] == 1) continue;
            if (groups.Count > 0 && groups[^1].Reduced == mask[d]) groups[^1] = (groups[^1].Size * x.Shape[d], mask[d]);
            else groups.Add((x.Shape[d], mask[d]));
        }
        int reducedCount = 1;
        for (int d = 0; d < x.Rank; d++) if (mask[d]) reducedCount *= x.Shape[d];

        if (x is Tensor<float> xf && TryFast(ctx, xf.Data, ((Tensor<float>)y).Data, groups, reducedCount)) return;
        Generic(x, y, groups, reducedCount);
    }

    /// <summary>
    /// float: each block of adjacent reduced axes is an [outer, reduce, inner] reduction with vectorised rows.
    /// Several separated blocks (Sum, Mean, Max, Min) are reduced one after another, innermost first, since
    /// those rules compose; Mean divides once by the total count at the end.
    /// </summary>
    private bool TryFast(KernelContext ctx, float[] x, float[] y, List<(int Size, bool Reduced)> groups, int reducedCount)
    {
        var kind = Kind;
        if (kind is not (ReduceKind.Sum or ReduceKind.Mean or ReduceKind.Max or ReduceKind.Min or ReduceKind.SumSquare or ReduceKind.L2 or ReduceKind.L1)) return false;
        if (x.Length == 0) return false;
        var g = new List<(int Size, bool Reduced)>(groups);
        if (g.Count(t => t.Reduced) > 1)
        {
            if (kind is not (ReduceKind.Sum or ReduceKind.Mean or ReduceKind.Max or ReduceKind.Min)) return false;
            var src = x;
            while (g.Count(t => t.Reduced) > 1)
            {
                int k = g.FindLastIndex(t => t.Reduced);
                int o = 1, r = g[k].Size, n = 1;
                for (int i = 0; i < k; i++) o *= g[i].Size;
                for (int i = k + 1; i < g.Count; i++) n *= g[i].Size;
                var dst = new float[o * n];
                ReduceBlock(ctx, src, dst, o, r, n, kind == ReduceKind.Mean ? ReduceKind.Sum : kind, 1);
                src = dst;
                // Drop the reduced group and merge the kept groups around it.
                g.RemoveAt(k);
                if (k < g.Count && k > 0 && !g[k - 1].Reduced && !g[k].Reduced)
                {
                    g[k - 1] = (g[k - 1].Size * g[k].Size, false);
                    g.RemoveAt(k);
                }
            }
            x = src;
        }
        int idx = g.FindIndex(t => t.Reduced);
        int outer = 1, inner = 1, reduce = 1;
        for (int i = 0; i < g.Count; i++)
        {
            if (idx < 0 || i < idx) outer *= g[i].Size;
            else if (i == idx) reduce = g[i].Size;
            else inner *= g[i].Size;
        }
        return ReduceBlock(ctx, x, y, outer, reduce, inner, kind, reducedCount);
    }

    /// <summary>y[o, i] = reduce over r of x[o, r, i]; Mean divides by <paramref name="meanCount"/>.</summary>
    private static bool ReduceBlock(KernelContext ctx, float[] x, float[] y, int outer, int reduce, int inner, ReduceKind kind, int meanCount)
    {
        if (inner == 1)
        {
            int minChunk = Math.Max(1, Broadcast.ParallelChunk / reduce);
            ctx.ParallelFor(outer, minChunk, (s, e) =>
            {
                for (int o = s; o < e; o++)
                {
                    var row = new ReadOnlySpan<float>(x, o * reduce, reduce);
                    y[o] = kind switch
                    {
                        ReduceKind.Sum => TensorPrimitives.Sum(row),
                        ReduceKind.Mean => TensorPrimitives.Sum(row) / meanCount,
                        ReduceKind.Max => TensorPrimitives.Max(row),
                        ReduceKind.Min => TensorPrimitives.Min(row),
                        ReduceKind.SumSquare => TensorPrimitives.SumOfSquares(row),
                        ReduceKind.L2 => MathF.Sqrt(TensorPrimitives.SumOfSquares(row)),
                        _ => TensorPrimitives.SumOfMagnitudes(row),
                    };
                }
            });
            return true;
        }
        if (kind is ReduceKind.L1) return false;
        // inner > 1: accumulate whole rows of length `inner`; split over outer, or over columns when outer is small.
        void Block(int o, int c0, int c1)
        {
            var acc = new Span<float>(y, o * inner + c0, c1 - c0);
            int baseX = o * reduce * inner;
            var first = new ReadOnlySpan<float>(x, baseX + c0, c1 - c0);
            bool square = kind is ReduceKind.SumSquare or ReduceKind.L2;
            if (square) TensorPrimitives.Multiply(first, first, acc);
            else first.CopyTo(acc);
            for (int r = 1; r < reduce; r++)
            {
                var row = new ReadOnlySpan<float>(x, baseX + r * inner + c0, c1 - c0);
                switch (kind)
                {
                    case ReduceKind.Max: TensorPrimitives.Max(acc, row, acc); break;
                    case ReduceKind.Min: TensorPrimitives.Min(acc, row, acc); break;
                    case ReduceKind.SumSquare or ReduceKind.L2: TensorPrimitives.MultiplyAdd(row, row, acc, acc); break;
                    default: TensorPrimitives.Add(acc, row, acc); break;
                }
            }
            if (kind == ReduceKind.Mean) TensorPrimitives.Divide(acc, (float)meanCount, acc);
            else if (kind == ReduceKind.L2) TensorPrimitives.Sqrt(acc, acc);
        }
        if (outer >= ctx.Threads || inner < 2 * Broadcast.ParallelChunk)
        {
            int minChunk = Math.Max(1, Broadcast.ParallelChunk / (reduce * inner));
            ctx.ParallelFor(outer, minChunk, (s, e) => { for (int o = s; o < e; o++) Block(o, 0, inner); });
        }
        else
        {
            for (int o = 0; o < outer; o++)
            {
                int oo = o;
                ctx.ParallelFor(inner, Math.Max(1, Broadcast.ParallelChunk / reduce), (s, e) => Block(oo, s, e));
            }
        }
        return true;
    }

    /// <summary>Any dtype and axis pattern: one pass over the input in order, accumulating in double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Generic(Tensor x, Tensor y, List<(int Size, bool Reduced)> groups, int reducedCount)
    {
        var kind = Kind;
        // One vectorised conversion up front instead of a per-element virtual (boxing) read.
        var xd = x is Tensor<double> td ? td.Data : ((Tensor<double>)Conversions.Convert(x, DataType.Double)).Data;
        var acc = new double[y.Length];
        double identity = kind switch
        {
            ReduceKind.Max or ReduceKind.LogSumExp => double.NegativeInfinity,
            ReduceKind.Min => double.PositiveInfinity,
            ReduceKind.Prod => 1,
            _ => 0,
        };
        // LogSumExp subtracts the per-output maximum first so exp never overflows.
        double[]? shift = null;
        if (kind == ReduceKind.LogSumExp)
        {
            shift = new double[y.Length];
            Array.Fill(shift, double.NegativeInfinity);
            Walk(x, groups, (xi, yi) => shift[yi] = Math.Max(shift[yi], xd[xi]));
            for (int i = 0; i < shift.Length; i++) if (double.IsInfinity(shift[i])) shift[i] = 0;
            Array.Clear(acc);
        }
        else Array.Fill(acc, identity);
        Walk(x, groups, (xi, yi) =>
        {
            double v = xd[xi];
            acc[yi] = kind switch
            {
                ReduceKind.Sum or ReduceKind.Mean or ReduceKind.LogSum => acc[yi] + v,
                ReduceKind.Max => double.IsNaN(v) || double.IsNaN(acc[yi]) ? double.NaN : Math.Max(acc[yi], v),
                ReduceKind.Min => double.IsNaN(v) || double.IsNaN(acc[yi]) ? double.NaN : Math.Min(acc[yi], v),
                ReduceKind.Prod => acc[yi] * v,
                ReduceKind.SumSquare or ReduceKind.L2 => acc[yi] + v * v,
                ReduceKind.L1 => acc[yi] + Math.Abs(v),
                _ => acc[yi] + Math.Exp(v - shift![yi]),
            };
        });
        for (int i = 0; i < acc.Length; i++)
        {
            acc[i] = kind switch
            {
                ReduceKind.Mean => acc[i] / reducedCount,
                ReduceKind.L2 => Math.Sqrt(acc[i]),
                ReduceKind.LogSum => Math.Log(acc[i]),
                ReduceKind.LogSumExp => Math.Log(acc[i]) + shift![i],
                _ => acc[i],
            };
        }
        var accT = new Tensor<double>(acc, (int[])y.Shape.Clone());
        if (DataTypes.IsInteger(y.DataType))
        {
            // Integer results: Max/Min of an empty set give the type's extremes (saturating conversion);
            // Mean truncates like NumPy's astype.
            for (int i = 0; i < acc.Length; i++) if (!double.IsInfinity(acc[i])) acc[i] = Math.Truncate(acc[i]);
        }
        Conversions.Convert(accT, y);
    }

    /// <summary>Calls visit(inputIndex, outputIndex) for every input element, in input order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Walk(Tensor x, List<(int Size, bool Reduced)> groups, Action<int, int> visit)
    {
        int n = groups.Count;
        if (x.Length == 0) return;
        if (n == 0) { visit(0, 0); return; }
        // Output stride of each kept group (reduced groups contribute nothing).
        var outStride = new int[n];
        int s = 1;
        for (int g = n - 1; g >= 0; g--)
        {
            outStride[g] = groups[g].Reduced ? 0 : s;
            if (!groups[g].Reduced) s *= groups[g].Size;
        }
        var counter = new int[n];
        int yi = 0;
        for (int xi = 0; xi < x.Length; xi++)
        {
            visit(xi, yi);
            for (int g = n - 1; g >= 0; g--)
            {
                yi += outStride[g];
                if (++counter[g] < groups[g].Size) break;
                yi -= outStride[g] * groups[g].Size;
                counter[g] = 0;
            }
        }
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        if (t.Shape is null) { ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, null)); return; }
        var axes = AxesFrom(ctx.ConstantInput, out bool known);
        bool keep = Node.GetInt("keepdims", 1) != 0;
        if (!known)
        {
            ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, keep ? t.Shape.Select(_ => Dimension.Unknown).ToArray() : null));
            return;
        }
        var mask = Mask(axes, t.Shape.Length);
        if (mask is null) { ctx.SetOutputType(0, t); return; }
        var dims = new List<Dimension>();
        for (int d = 0; d < t.Shape.Length; d++)
            if (!mask[d]) dims.Add(t.Shape[d]);
            else if (keep) dims.Add(new Dimension(1));
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, dims.ToArray()));
    }
}

[OnnxOperator("ReduceSum", 1)]
public sealed class ReduceSumKernel : ReduceKernel
{
    protected override ReduceKind Kind => ReduceKind.Sum;
    protected override int AxesInputSince => 13;
}

[OnnxOperator("ReduceMean", 1)]
public sealed class ReduceMeanKernel : ReduceKernel { protected override ReduceKind Kind => ReduceKind.Mean; }

[OnnxOperator("ReduceMax", 1)]
public sealed class ReduceMaxKernel : ReduceKernel { protected override ReduceKind Kind => ReduceKind.Max; }

[OnnxOperator("ReduceMin", 1)]
public sealed class ReduceMinKernel : ReduceKernel { protected override ReduceKind Kind => ReduceKind.Min; }

[OnnxOperator("ReduceProd", 1)]
public sealed class ReduceProdKernel : ReduceKernel { protected override ReduceKind Kind => ReduceKind.Prod; }

[OnnxOperator("ReduceSumSquare", 1)]
public sealed class ReduceSumSquareKernel : ReduceKernel { protected override ReduceKind Kind => ReduceKind.SumSquare; }

[OnnxOperator("ReduceL1", 1)]
public sealed class ReduceL1Kernel : ReduceKernel { protected override ReduceKind Kind => ReduceKind.L1; }

[OnnxOperator("ReduceL2", 1)]
public sealed class ReduceL2Kernel : ReduceKernel { protected override ReduceKind Kind => ReduceKind.L2; }

[OnnxOperator("ReduceLogSum", 1)]
public sealed class ReduceLogSumKernel : ReduceKernel { protected override ReduceKind Kind => ReduceKind.LogSum; }

[OnnxOperator("ReduceLogSumExp", 1)]
public sealed class ReduceLogSumExpKernel : ReduceKernel { protected override ReduceKind Kind => ReduceKind.LogSumExp; }

/// <summary>
/// ArgMax / ArgMin: int64 index of the largest (smallest) value along <c>axis</c> (default 0); the first
/// occurrence wins unless select_last_index=1 (opset 12+). NaN counts as larger than everything for ArgMax and
/// smaller for ArgMin (NumPy).
/// </summary>
public abstract class ArgKernel : OpKernel
{
    protected abstract bool IsMax { get; }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        int rank = x.Rank;
        int axis = ShapeUtil.NormalizeAxis(Node.GetInt("axis", 0), Math.Max(rank, 1));
        bool keep = Node.GetInt("keepdims", 1) != 0;
        bool last = Node.GetInt("select_last_index", 0) != 0;
        if (rank == 0) throw new QuantSharpException($"{Node.OpType} needs an input of rank ≥ 1");
        int outer = 1, inner = 1, reduce = x.Shape[axis];
        for (int d = 0; d < axis; d++) outer *= x.Shape[d];
        for (int d = axis + 1; d < rank; d++) inner *= x.Shape[d];
        var shape = new List<int>();
        for (int d = 0; d < rank; d++)
            if (d != axis) shape.Add(x.Shape[d]);
            else if (keep) shape.Add(1);
        var y = ctx.Output<long>(0, shape.ToArray()).Data;
        if (y.Length == 0) return;
        if (reduce == 0) throw new QuantSharpException($"{Node.OpType} over an empty axis {axis}");
        switch (x)
        {
            case Tensor<float> t:
                if (inner == 1 && !last)
                {
                    for (int o = 0; o < outer; o++)
                    {
                        var row = new ReadOnlySpan<float>(t.Data, o * reduce, reduce);
                        y[o] = IsMax ? TensorPrimitives.IndexOfMax(row) : TensorPrimitives.IndexOfMin(row);
                    }
                }
                else Arg(t.Data, y, outer, reduce, inner, last);
                break;
            case Tensor<double> t: Arg(t.Data, y, outer, reduce, inner, last); break;
            case Tensor<int> t: Arg(t.Data, y, outer, reduce, inner, last); break;
            case Tensor<long> t: Arg(t.Data, y, outer, reduce, inner, last); break;
            case Tensor<sbyte> t: Arg(t.Data, y, outer, reduce, inner, last); break;
            case Tensor<byte> t: Arg(t.Data, y, outer, reduce, inner, last); break;
            case Tensor<short> t: Arg(t.Data, y, outer, reduce, inner, last); break;
            case Tensor<ushort> t: Arg(t.Data, y, outer, reduce, inner, last); break;
            case Tensor<uint> t: Arg(t.Data, y, outer, reduce, inner, last); break;
            case Tensor<ulong> t: Arg(t.Data, y, outer, reduce, inner, last); break;
            case Tensor<Half> or Tensor<BFloat16>: Arg(Conversions.ToFloat(x), y, outer, reduce, inner, last); break;
            default: throw new QuantSharpException($"{Node.OpType} does not accept {DataTypes.Name(x.DataType)} inputs");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Arg<T>(T[] x, long[] y, int outer, int reduce, int inner, bool last) where T : INumber<T>
    {
        bool max = IsMax;
        for (int o = 0; o < outer; o++)
        {
            for (int i = 0; i < inner; i++)
            {
                int b = o * reduce * inner + i;
                T best = x[b];
                int bi = 0;
                if (T.IsNaN(best)) { y[o * inner + i] = 0; continue; }
                for (int r = 1; r < reduce; r++)
                {
                    T v = x[b + r * inner];
                    if (T.IsNaN(v)) { bi = r; break; }
                    bool better = max ? (last ? v >= best : v > best) : (last ? v <= best : v < best);
                    if (better) { best = v; bi = r; }
                }
                y[o * inner + i] = bi;
            }
        }
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0)?.Shape is not { } s) { ctx.SetOutputType(0, new TensorTypeInfo(DataType.Int64, null)); return; }
        int axis = ShapeUtil.NormalizeAxis(Node.GetInt("axis", 0), Math.Max(s.Length, 1));
        bool keep = Node.GetInt("keepdims", 1) != 0;
        var dims = new List<Dimension>();
        for (int d = 0; d < s.Length; d++)
            if (d != axis) dims.Add(s[d]);
            else if (keep) dims.Add(new Dimension(1));
        ctx.SetOutputType(0, new TensorTypeInfo(DataType.Int64, dims.ToArray()));
    }
}

[OnnxOperator("ArgMax", 1)]
public sealed class ArgMaxKernel : ArgKernel { protected override bool IsMax => true; }

[OnnxOperator("ArgMin", 1)]
public sealed class ArgMinKernel : ArgKernel { protected override bool IsMax => false; }
