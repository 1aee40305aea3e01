using System.Runtime.InteropServices;
using QuantSharp.Llm.Formats;

namespace QuantSharp.Llm.Quantization;

/// <summary>
/// Builds one quantized matrix weight by weight, the way every algorithm here needs it: the parameters of a group
/// (the columns of one row that share a scale) are chosen when the algorithm first reaches that group
/// (<see cref="InitGroup"/>, from the values the weights have at that moment), then each weight is rounded on that
/// grid (<see cref="Quantize"/>), which returns the value now stored so the algorithm can carry the rounding error.
/// Rows are independent: different rows may be built by different threads.
/// </summary>
public abstract class MatrixQuantizer
{
    protected MatrixQuantizer(string name, int rows, int cols)
    {
        Name = name;
        Rows = rows;
        Cols = cols;
    }

    public string Name { get; }
    public int Rows { get; }
    public int Cols { get; }

    /// <summary>The format's CLI name.</summary>
    public abstract string Type { get; }

    /// <summary>Columns of a row that share parameters (the block length; Cols for per-row and per-tensor formats).</summary>
    public abstract int GroupSize { get; }

    /// <summary>Per-tensor parameters from every weight (only per-tensor formats use it); called before any group.</summary>
    public virtual void PrepareTensor(ReadOnlySpan<float> values) { }

    /// <summary>
    /// Chooses the parameters of group <paramref name="group"/> of row <paramref name="row"/> from its current
    /// <paramref name="values"/> (the last group may be shorter). With a non-empty <paramref name="importance"/>
    /// (one weight per column of the group) the range is searched to minimise Σ importance·(w − q(w))² instead of taken
    /// from min/max.
    /// </summary>
    public abstract void InitGroup(int row, int group, ReadOnlySpan<float> values, ReadOnlySpan<float> importance);

    /// <summary>
    /// Chooses the parameters of a group from its values clipped to [lo·min(0, min v), hi·max(0, max v)] with the
    /// format's plain rule (lo = hi = 1 gives exactly <see cref="InitGroup"/>'s plain grid); the weights themselves are
    /// still rounded unclipped on that grid by <see cref="Quantize"/>. The candidates of a range search scored by the caller.
    /// </summary>
    public abstract void InitGroupClipped(int row, int group, ReadOnlySpan<float> values, float lo, float hi);

    /// <summary>Whether groups have parameters of their own (false for per-tensor formats: no range to search per group).</summary>
    public virtual bool HasGroupParameters => true;

    /// <summary>Rounds weight (row, col) to its group's grid, stores the code, returns the stored value.</summary>
    public abstract float Quantize(int row, int col, float value);

    /// <summary>The finished matrix.</summary>
    public abstract WeightMatrix Build();

    /// <summary>The shrink factors tried for the low and high end of a group's range by the importance-weighted search.</summary>
    public static readonly float[] ClipGrid = [1f, 0.95f, 0.9f, 0.85f, 0.8f, 0.75f, 0.7f, 0.65f, 0.6f, 0.55f, 0.5f];
}

/// <summary>A block format: group = block, built through the format's reference quantizer and its codec.</summary>
public sealed class BlockQuantizer<TBlock, TCodec> : MatrixQuantizer
    where TBlock : unmanaged, IWeightBlock<TBlock>
    where TCodec : IBlockCodec<TBlock>
{
    private readonly TBlock[] _blocks;
    private readonly int _bpr;
    private readonly Func<string, int, int, TBlock[], WeightMatrix> _make;

    public BlockQuantizer(string name, int rows, int cols, Func<string, int, int, TBlock[], WeightMatrix> make) : base(name, rows, cols)
    {
        _bpr = (cols + TBlock.Count - 1) / TBlock.Count;
        _blocks = new TBlock[(long)rows * _bpr];
        _make = make;
    }

    public override string Type => TBlock.TypeName;
    public override int GroupSize => TBlock.Count;

    public override void InitGroup(int row, int group, ReadOnlySpan<float> values, ReadOnlySpan<float> importance)
    {
        ref var slot = ref _blocks[row * _bpr + group];
        slot = TBlock.Quantize(values);
        if (importance.IsEmpty) return;
        // Weighted range search: clip the group to [lo·min, hi·max], let the reference quantizer pick the grid for the
        // clipped values, then score that grid on the unclipped weights. (1, 1) is the plain quantizer, so the chosen
        // grid is never worse than it on the weighted error.
        float min = 0, max = 0;
        foreach (float v in values)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        double best = Error(slot, values, importance);
        Span<float> clipped = stackalloc float[values.Length];
        foreach (float lo in ClipGrid)
            foreach (float hi in ClipGrid)
            {
                if (lo == 1f && hi == 1f) continue;
                var cand = Clipped(values, clipped, lo * min, hi * max);
                double e = Error(cand, values, importance);
                if (e < best)
                {
                    best = e;
                    slot = cand;
                }
            }
    }

    public override void InitGroupClipped(int row, int group, ReadOnlySpan<float> values, float lo, float hi)
    {
        float min = 0, max = 0;
        foreach (float v in values)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        Span<float> clipped = stackalloc float[values.Length];
        _blocks[row * _bpr + group] = lo == 1f && hi == 1f ? TBlock.Quantize(values) : Clipped(values, clipped, lo * min, hi * max);
    }

    /// <summary>The reference quantizer's block for the values clamped to [a, b].</summary>
    private static TBlock Clipped(ReadOnlySpan<float> values, Span<float> buffer, float a, float b)
    {
        for (int i = 0; i < values.Length; i++) buffer[i] = Math.Clamp(values[i], a, b);
        return TBlock.Quantize(buffer);
    }

    private static double Error(TBlock block, ReadOnlySpan<float> values, ReadOnlySpan<float> importance)
    {
        double e = 0;
        for (int i = 0; i < values.Length; i++)
        {
            double d = values[i] - TCodec.SetCode(ref block, i, values[i]);
            e += importance[i] * d * d;
        }
        return e;
    }

    public override float Quantize(int row, int col, float value)
        => TCodec.SetCode(ref _blocks[row * _bpr + col / TBlock.Count], col % TBlock.Count, value);

    public override WeightMatrix Build() => _make(Name, Rows, Cols, _blocks);
}

/// <summary>Per-row symmetric INT8 (<see cref="Int8ChannelMatrix"/>): scale = max|w|/127 over the row, q = clamp(round(w/scale), −127, 127).</summary>
public sealed class Int8ChannelQuantizer(string name, int rows, int cols) : MatrixQuantizer(name, rows, cols)
{
    private readonly float[] _scale = new float[rows];
    private readonly sbyte[] _q = new sbyte[(long)rows * cols];

    public override string Type => "int8-channel";
    public override int GroupSize => Cols;

    public override void InitGroup(int row, int group, ReadOnlySpan<float> values, ReadOnlySpan<float> importance)
    {
        float amax = 0;
        foreach (float v in values) amax = Math.Max(amax, Math.Abs(v));
        _scale[row] = amax / 127f;
        if (importance.IsEmpty) return;
        double best = double.PositiveInfinity;
        float bestScale = _scale[row];
        foreach (float a in ClipGrid)
        {
            float s = a * amax / 127f;
            double e = 0;
            for (int i = 0; i < values.Length; i++)
            {
                double d = values[i] - Round(values[i], s) * s;
                e += importance[i] * d * d;
            }
            if (e < best)
            {
                best = e;
                bestScale = s;
            }
        }
        _scale[row] = bestScale;
    }

    /// <summary>Symmetric: the clipped range [lo·min, hi·max] has amax = max(−lo·min, hi·max).</summary>
    public override void InitGroupClipped(int row, int group, ReadOnlySpan<float> values, float lo, float hi)
    {
        float min = 0, max = 0;
        foreach (float v in values)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        _scale[row] = lo == 1f && hi == 1f ? Math.Max(-min, max) / 127f : Math.Max(-lo * min, hi * max) / 127f;
    }

    private static int Round(float x, float s) => (int)Math.Clamp(MathF.Round(x * (s != 0 ? 1f / s : 0f), MidpointRounding.AwayFromZero), -127, 127);

    public override float Quantize(int row, int col, float value)
    {
        float s = _scale[row];
        int q = Round(value, s);
        _q[(long)row * Cols + col] = (sbyte)q;
        return s * q;
    }

    public override WeightMatrix Build() => new Int8ChannelMatrix(Name, Rows, Cols, _scale, _q);
}

/// <summary>
/// Per-tensor UINT8 (<see cref="U8TensorMatrix"/>): the one (scale, zero) comes from the min/max of the whole tensor in
/// <see cref="PrepareTensor"/>; groups have no parameters of their own, so the importance search does not apply.
/// </summary>
public sealed class U8TensorQuantizer(string name, int rows, int cols) : MatrixQuantizer(name, rows, cols)
{
    private U8TensorHeader _h;
    private readonly byte[] _q = new byte[(long)rows * cols];

    public override string Type => "u8-tensor";
    public override int GroupSize => Cols;

    public override void PrepareTensor(ReadOnlySpan<float> values)
    {
        float min = 0, max = 0;
        foreach (float v in values)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        _h = U8TensorHeader.FromRange(min, max);
    }

    public override void InitGroup(int row, int group, ReadOnlySpan<float> values, ReadOnlySpan<float> importance) { }

    public override void InitGroupClipped(int row, int group, ReadOnlySpan<float> values, float lo, float hi) { }

    public override bool HasGroupParameters => false;

    public override float Quantize(int row, int col, float value)
    {
        byte q = _h.Code(value);
        _q[(long)row * Cols + col] = q;
        return _h.Value(q);
    }

    public override WeightMatrix Build() => new U8TensorMatrix(Name, Rows, Cols, _h, _q);
}

/// <summary>The quantizer of every type name, and round to nearest (plain or importance-weighted) built on it.</summary>
public static class MatrixQuantizers
{
    /// <summary>Types a matrix can be quantized to ("f32" keeps it).</summary>
    public static IReadOnlyList<string> Types { get; } = ["f32", "q8_0", "q4_0", "q4_1", "q4_k", "int8-channel", "int4-g32", "int4-g64", "int4-g128",
        "int3-g32", "int3-g64", "int3-g128", "int2-g32", "int2-g64", "int2-g128", "u8-tensor"];

    public static MatrixQuantizer Create(string type, string name, int rows, int cols) => type switch
    {
        "q8_0" => new BlockQuantizer<BlockQ8_0, Q8_0Codec>(name, rows, cols, (n, r, c, b) => new Q8DotMatrix<BlockQ8_0>(n, r, c, b)),
        "q4_0" => new BlockQuantizer<BlockQ4_0, Q4_0Codec>(name, rows, cols, (n, r, c, b) => new Q8DotMatrix<BlockQ4_0>(n, r, c, b)),
        "q4_1" => new BlockQuantizer<BlockQ4_1, Q4_1Codec>(name, rows, cols, (n, r, c, b) => new Q8DotMatrix<BlockQ4_1>(n, r, c, b)),
        "q4_k" => Plain<BlockQ4_K, Q4_KCodec>(name, rows, cols),
        "int8-channel" => new Int8ChannelQuantizer(name, rows, cols),
        "int4-g32" => Plain<BlockInt4G32, Int4G32Codec>(name, rows, cols),
        "int4-g64" => Plain<BlockInt4G64, Int4G64Codec>(name, rows, cols),
        "int4-g128" => Plain<BlockInt4G128, Int4G128Codec>(name, rows, cols),
        "int3-g32" => Plain<BlockInt3G32, Int3G32Codec>(name, rows, cols),
        "int3-g64" => Plain<BlockInt3G64, Int3G64Codec>(name, rows, cols),
        "int3-g128" => Plain<BlockInt3G128, Int3G128Codec>(name, rows, cols),
        "int2-g32" => Plain<BlockInt2G32, Int2G32Codec>(name, rows, cols),
        "int2-g64" => Plain<BlockInt2G64, Int2G64Codec>(name, rows, cols),
        "int2-g128" => Plain<BlockInt2G128, Int2G128Codec>(name, rows, cols),
        "u8-tensor" => new U8TensorQuantizer(name, rows, cols),
        _ => throw new QuantSharpException($"unknown weight type '{type}' (known: {string.Join(", ", Types)})"),
    };

    private static BlockQuantizer<TBlock, TCodec> Plain<TBlock, TCodec>(string name, int rows, int cols)
        where TBlock : unmanaged, IWeightBlock<TBlock> where TCodec : IBlockCodec<TBlock>
        => new(name, rows, cols, (n, r, c, b) => new BlockMatrix<TBlock>(n, r, c, b));

    /// <summary>All values of <paramref name="m"/>, row-major.</summary>
    public static float[] Values(WeightMatrix m)
    {
        var v = new float[(long)m.Rows * m.Cols];
        for (int r = 0; r < m.Rows; r++) m.DequantizeRow(r, v.AsSpan(r * m.Cols, m.Cols));
        return v;
    }

    /// <summary>
    /// Round to nearest: each group's grid from its weights (min/max rule of the format, or with
    /// <paramref name="importance"/> — one weight per input column, e.g. Σx² over calibration tokens — the weighted range
    /// search of <see cref="MatrixQuantizer.InitGroup"/>), every weight rounded on it.
    /// </summary>
    public static WeightMatrix RoundToNearest(WeightMatrix source, string type, ReadOnlySpan<float> importance = default)
        => RoundToNearest(source.Name, source.Rows, source.Cols, Values(source), type, importance);

    public static WeightMatrix RoundToNearest(string name, int rows, int cols, float[] values, string type, ReadOnlySpan<float> importance = default)
    {
        if (type == "f32") return F32Matrix.FromArray(name, rows, cols, values);
        if (!importance.IsEmpty && importance.Length != cols) throw new ArgumentException($"{name}: {importance.Length} importance weights for {cols} columns");
        var q = Create(type, name, rows, cols);
        q.PrepareTensor(values);
        int g = q.GroupSize;
        for (int r = 0; r < rows; r++)
        {
            var row = values.AsSpan(r * cols, cols);
            for (int s = 0, gi = 0; s < cols; s += g, gi++)
            {
                int n = Math.Min(g, cols - s);
                q.InitGroup(r, gi, row.Slice(s, n), importance.IsEmpty ? default : importance.Slice(s, n));
                for (int c = s; c < s + n; c++) q.Quantize(r, c, row[c]);
            }
        }
        return q.Build();
    }
}
