using System.Runtime.CompilerServices;
using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// A contiguous run of output elements: output[OutOffset .. OutOffset+Length) reads input k starting at
/// InputOffsets[k], advancing by the input's inner stride (<see cref="BroadcastPlan.InnerStride"/>: 1, or 0 when
/// the input is broadcast along the run).
/// </summary>
public delegate void BroadcastRunAction(int outOffset, ReadOnlySpan<int> inputOffsets, int length);

/// <summary>
/// NumPy/ONNX multidirectional broadcasting of any number of inputs to one output shape. Dimensions are
/// coalesced so that the innermost run is as long as possible: equal shapes become one run, [N,C]+[C] becomes N
/// runs of C, [N,C,H,W]+[C,1,1] becomes N·C runs of H·W with the second input constant along each run.
/// </summary>
public sealed class BroadcastPlan
{
    private readonly int[] _dims;       // coalesced output dims, outermost first, never empty
    private readonly int[][] _strides;  // per input, per coalesced dim; 0 where that input is broadcast

    public BroadcastPlan(params int[][] inputShapes)
    {
        if (inputShapes.Length == 0) throw new QuantSharpException("broadcast needs at least one input");
        int rank = inputShapes.Max(s => s.Length);
        var outShape = new int[rank];
        for (int d = 0; d < rank; d++)
        {
            int size = 1;
            foreach (var s in inputShapes)
            {
                int k = d - (rank - s.Length);
                int v = k < 0 ? 1 : s[k];
                if (v == size || v == 1) continue;
                if (size == 1) size = v;
                else throw new QuantSharpException(
                    $"shapes {string.Join(" and ", inputShapes.Select(x => ShapeUtil.Format(x)))} cannot be broadcast");
            }
            outShape[d] = size;
        }
        OutputShape = outShape;
        OutputLength = ShapeUtil.Product(outShape);
        InputCount = inputShapes.Length;

        // Full-rank strides per input (0 for broadcast dims), then drop size-1 output dims and merge neighbours.
        var full = new int[inputShapes.Length][];
        for (int i = 0; i < inputShapes.Length; i++)
        {
            var s = inputShapes[i];
            var st = new int[rank];
            int acc = 1;
            for (int d = rank - 1; d >= 0; d--)
            {
                int k = d - (rank - s.Length);
                int v = k < 0 ? 1 : s[k];
                st[d] = v == 1 ? 0 : acc;
                acc *= v;
            }
            full[i] = st;
        }
        var dims = new List<int>();
        var strides = Enumerable.Range(0, InputCount).Select(_ => new List<int>()).ToArray();
        for (int d = 0; d < rank; d++)
        {
            if (outShape[d] == 1) continue;
            if (dims.Count > 0)
            {
                bool merge = true;
                for (int i = 0; i < InputCount && merge; i++)
                {
                    int inner = full[i][d], outer = strides[i][^1];
                    merge = (inner == 0 && outer == 0) || (inner != 0 && outer == inner * outShape[d]);
                }
                if (merge)
                {
                    dims[^1] *= outShape[d];
                    for (int i = 0; i < InputCount; i++) strides[i][^1] = full[i][d];
                    continue;
                }
            }
            dims.Add(outShape[d]);
            for (int i = 0; i < InputCount; i++) strides[i].Add(full[i][d]);
        }
        if (dims.Count == 0)
        {
            dims.Add(OutputLength == 0 ? 0 : 1);
            foreach (var s in strides) s.Add(0);
        }
        _dims = dims.ToArray();
        _strides = strides.Select(s => s.ToArray()).ToArray();
    }

    public int[] OutputShape { get; }
    public int OutputLength { get; }
    public int InputCount { get; }

    /// <summary>Length of each contiguous output run.</summary>
    public int InnerLength => _dims[^1];

    /// <summary>Stride of input <paramref name="input"/> along a run: 1 (contiguous) or 0 (one value repeated).</summary>
    public int InnerStride(int input) => _strides[input][^1];

    /// <summary>Calls <paramref name="action"/> for every run that intersects output elements [start, end).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void ForEachRun(int start, int end, BroadcastRunAction action)
    {
        if (start >= end) return;
        int rank = _dims.Length, n = InputCount, inner = InnerLength;
        Span<int> counter = stackalloc int[rank];
        Span<int> offsets = stackalloc int[n];
        // Decompose the starting row into the odometer of outer dims.
        int row = start / inner, col = start % inner;
        int rem = row;
        for (int d = rank - 2; d >= 0; d--)
        {
            counter[d] = rem % _dims[d];
            rem /= _dims[d];
        }
        for (int i = 0; i < n; i++)
        {
            int o = col * _strides[i][rank - 1];
            for (int d = 0; d < rank - 1; d++) o += counter[d] * _strides[i][d];
            offsets[i] = o;
        }
        int pos = start;
        while (pos < end)
        {
            int len = Math.Min(inner - col, end - pos);
            action(pos, offsets, len);
            pos += len;
            if (pos >= end) break;
            // Next row: advance the odometer and rebuild offsets from it.
            col = 0;
            for (int d = rank - 2; d >= 0; d--)
            {
                if (++counter[d] < _dims[d]) break;
                counter[d] = 0;
            }
            for (int i = 0; i < n; i++)
            {
                int o = 0;
                var st = _strides[i];
                for (int d = 0; d < rank - 1; d++) o += counter[d] * st[d];
                offsets[i] = o;
            }
        }
    }

    /// <summary>Runs <see cref="ForEachRun"/> over the whole output, split over the context's threads when large.</summary>
    public void Run(KernelContext? ctx, BroadcastRunAction action, int minChunk = Broadcast.ParallelChunk)
    {
        if (ctx is null || ctx.Threads <= 1 || OutputLength < 2 * minChunk) ForEachRun(0, OutputLength, action);
        else ctx.ParallelFor(OutputLength, minChunk, (s, e) => ForEachRun(s, e, action));
    }
}

/// <summary>
/// An elementwise binary operation over spans, in the three forms a broadcast run needs. Implementations are
/// structs so the JIT specialises the broadcast loop per operation and element type.
/// </summary>
public interface IBinaryOp<T, TOut>
{
    static abstract void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<TOut> y);
    static abstract void Apply(ReadOnlySpan<T> a, T b, Span<TOut> y);
    static abstract void Apply(T a, ReadOnlySpan<T> b, Span<TOut> y);
}

/// <summary>Broadcasting entry points for kernels (usable by any operator family).</summary>
public static class Broadcast
{
    /// <summary>Elements per parallel work item: below this, thread hand-off costs more than it saves.</summary>
    public const int ParallelChunk = 32768;

    /// <summary>Broadcast output shape of two concrete shapes.</summary>
    public static int[] Shape(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => ShapeUtil.Broadcast(a, b);

    /// <summary>y = op(a, b) with multidirectional broadcasting; y is output 0 of the node.</summary>
    public static Tensor<TOut> Binary<T, TOut, TOp>(KernelContext ctx, Tensor<T> a, Tensor<T> b, int outputIndex = 0)
        where TOp : IBinaryOp<T, TOut>
    {
        int[] shape = ShapeUtil.SameShape(a.Shape, b.Shape) ? (int[])a.Shape.Clone() : ShapeUtil.Broadcast(a.Shape, b.Shape);
        var y = ctx.Output<TOut>(outputIndex, shape);
        Binary<T, TOut, TOp>(ctx, a.Data, a.Shape, b.Data, b.Shape, y.Data);
        return y;
    }

    /// <summary>y = op(a, b) into a preallocated buffer whose shape is the broadcast of the two shapes.</summary>
    public static void Binary<T, TOut, TOp>(KernelContext? ctx, T[] a, int[] aShape, T[] b, int[] bShape, TOut[] y)
        where TOp : IBinaryOp<T, TOut>
    {
        int threads = ctx?.Threads ?? 1;
        if (ShapeUtil.SameShape(aShape, bShape) || (a.Length == y.Length && b.Length == y.Length))
        {
            Chunked(threads, y.Length, (s, e) => TOp.Apply(a.AsSpan(s, e - s), b.AsSpan(s, e - s), y.AsSpan(s, e - s)));
            return;
        }
        if (b.Length == 1 && a.Length == y.Length)
        {
            T bv = b[0];
            Chunked(threads, y.Length, (s, e) => TOp.Apply(a.AsSpan(s, e - s), bv, y.AsSpan(s, e - s)));
            return;
        }
        if (a.Length == 1 && b.Length == y.Length)
        {
            T av = a[0];
            Chunked(threads, y.Length, (s, e) => TOp.Apply(av, b.AsSpan(s, e - s), y.AsSpan(s, e - s)));
            return;
        }
        if (a.Length == y.Length && IsTrailing(bShape, aShape, b.Length))
        {
            // a bias over the last axes (MatMul + B): whole rows against the same b, without the plan's per-row setup.
            Rows(threads, y.Length, b.Length, (o, n) => TOp.Apply(a.AsSpan(o, n), b.AsSpan(0, n), y.AsSpan(o, n)));
            return;
        }
        if (b.Length == y.Length && IsTrailing(aShape, bShape, a.Length))
        {
            Rows(threads, y.Length, a.Length, (o, n) => TOp.Apply(a.AsSpan(0, n), b.AsSpan(o, n), y.AsSpan(o, n)));
            return;
        }
        var plan = new BroadcastPlan(aShape, bShape);
        int sa = plan.InnerStride(0), sb = plan.InnerStride(1);
        plan.Run(ctx, (o, offs, len) =>
        {
            var dst = y.AsSpan(o, len);
            if (sa == 1 && sb == 1) TOp.Apply(a.AsSpan(offs[0], len), b.AsSpan(offs[1], len), dst);
            else if (sa == 1) TOp.Apply(a.AsSpan(offs[0], len), b[offs[1]], dst);
            else if (sb == 1) TOp.Apply(a[offs[0]], b.AsSpan(offs[1], len), dst);
            else TOp.Apply(a.AsSpan(offs[0], 1), b.AsSpan(offs[1], 1), dst);
        });
    }

    /// <summary>Whether <paramref name="small"/> (leading 1s dropped) equals the last axes of <paramref name="full"/> and is not empty.</summary>
    private static bool IsTrailing(int[] small, int[] full, int smallLength)
    {
        if (smallLength == 0) return false;
        int k = 0;
        while (k < small.Length && small[k] == 1) k++;
        int len = small.Length - k;
        if (len > full.Length) return false;
        for (int d = 0; d < len; d++)
            if (small[k + d] != full[full.Length - len + d]) return false;
        return true;
    }

    /// <summary>Calls <paramref name="row"/>(offset, rowLength) for each of the count/rowLength rows, split over threads by whole rows.</summary>
    private static void Rows(int threads, int count, int rowLength, Action<int, int> row)
    {
        int rows = count / rowLength;
        void Body(int s, int e)
        {
            for (int r = s; r < e; r++) row(r * rowLength, rowLength);
        }
        if (threads <= 1 || count < 2 * ParallelChunk) { Body(0, rows); return; }
        Parallelism.For(threads, rows, Math.Max(1, ParallelChunk / rowLength), Body);
    }

    /// <summary>Splits [0, count) into deterministic chunks over up to <paramref name="threads"/> workers.</summary>
    public static void Chunked(int threads, int count, Action<int, int> body)
    {
        if (threads <= 1 || count < 2 * ParallelChunk) { if (count > 0) body(0, count); return; }
        Parallelism.For(threads, count, ParallelChunk, body);
    }

    /// <summary>
    /// Symbolic broadcast of declared shapes for type inference: known sizes broadcast as numbers, a 1 yields
    /// to anything, equal symbols stay, anything else becomes unknown. Null when any rank is unknown.
    /// </summary>
    public static Dimension[]? InferShape(params TensorTypeInfo?[] types)
    {
        if (types.Any(t => t?.Shape is null)) return null;
        int rank = types.Max(t => t!.Shape!.Length);
        var r = new Dimension[rank];
        for (int d = 0; d < rank; d++)
        {
            Dimension acc = new(1);
            bool first = true;
            foreach (var t in types)
            {
                var s = t!.Shape!;
                int k = d - (rank - s.Length);
                Dimension v = k < 0 ? new Dimension(1) : s[k];
                if (first) { acc = v; first = false; continue; }
                if (v.Value == 1) continue;
                if (acc.Value == 1) { acc = v; continue; }
                if (v.Value is long a && acc.Value is long b)
                {
                    if (a != b) throw new QuantSharpException(
                        $"shapes {string.Join(" and ", types.Select(x => x!.ToString()))} cannot be broadcast");
                    continue;
                }
                if (v.Symbol is not null && v.Symbol == acc.Symbol) continue;
                // One side known (>1) and the other unknown: a valid model must have the known size.
                if (v.Value is long kv && kv > 1 && acc.Value is null) { acc = v; continue; }
                if (acc.Value is long ka && ka > 1 && v.Value is null) continue;
                acc = Dimension.Unknown;
            }
            r[d] = acc;
        }
        return r;
    }

    /// <summary>Sets output 0 to the broadcast of all inputs' shapes with element type <paramref name="dt"/> (or input 0's).</summary>
    public static void InferElementwise(TypeInferenceContext ctx, DataType? dt = null, int firstInput = 0)
    {
        var types = new List<TensorTypeInfo?>();
        for (int i = firstInput; i < ctx.InputCount; i++) if (ctx.HasInput(i)) types.Add(ctx.InputType(i));
        var elem = dt ?? ctx.InputType(firstInput)?.ElementType;
        if (elem is null || types.Count == 0) return;
        ctx.SetOutputType(0, new TensorTypeInfo(elem.Value, InferShape(types.ToArray())));
    }
}
