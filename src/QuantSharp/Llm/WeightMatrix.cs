using QuantSharp.Llm.Formats;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace QuantSharp.Llm;

/// <summary>
/// A [Rows, Cols] weight matrix used as y = W·x. Subclasses store it in FP32 or in a block format; each computes
/// rows [r0, r1) of the product so callers can split rows across threads (every row is independent → deterministic).
/// </summary>
public abstract class WeightMatrix
{
    protected WeightMatrix(string name, int rows, int cols)
    {
        Name = name;
        Rows = rows;
        Cols = cols;
    }

    public string Name { get; }
    public int Rows { get; }
    public int Cols { get; }

    /// <summary>Format name as the CLI spells it ("f32", "q8_0", "q4_0", "q4_1", "int8-channel", "int4-g32", …).</summary>
    public abstract string TypeName { get; }

    /// <summary>Bytes the stored form occupies (including scales and the padding of partial blocks).</summary>
    public abstract long Bytes { get; }

    /// <summary>Honest storage cost: stored bits divided by the number of real weights.</summary>
    public double BitsPerWeight => Bytes * 8.0 / ((long)Rows * Cols);

    /// <summary>Whether <see cref="MatVecQ8"/> is the native product (activations quantized per 32-block to int8).</summary>
    public virtual bool UsesQ8Activations => false;

    /// <summary>y[r] = Σ_c W[r,c]·x[c] for r in [r0, r1), with FP32 activations.</summary>
    public abstract void MatVec(ReadOnlySpan<float> x, Span<float> y, int r0, int r1);

    /// <summary>Rows [r0, r1) against activations already quantized to Q8 blocks (only when <see cref="UsesQ8Activations"/>).</summary>
    public virtual void MatVecQ8(Q8Activations x, Span<float> y, int r0, int r1) => throw new InvalidOperationException($"{Name}: {TypeName} has no int8-activation product");

    /// <summary>Writes row <paramref name="row"/> as FP32 (the value the format represents).</summary>
    public abstract void DequantizeRow(int row, Span<float> destination);
}

/// <summary>An FP32 matrix: a view over memory it does not own (a mapped checkpoint) or a pinned array.</summary>
public sealed unsafe class F32Matrix : WeightMatrix
{
    private readonly float* _data;
    // Keeps the memory alive: the mapped checkpoint or the pinned array.
    private readonly object _owner;

    internal F32Matrix(string name, int rows, int cols, float* data, object owner) : base(name, rows, cols)
    {
        _data = data;
        _owner = owner;
    }

    /// <summary>Wraps a copy of <paramref name="values"/> (row-major, rows×cols) in pinned memory.</summary>
    public static F32Matrix FromArray(string name, int rows, int cols, ReadOnlySpan<float> values)
    {
        if (values.Length != (long)rows * cols) throw new ArgumentException($"{name}: {values.Length} values for [{rows},{cols}]");
        var arr = GC.AllocateUninitializedArray<float>(values.Length, pinned: true);
        values.CopyTo(arr);
        return new F32Matrix(name, rows, cols, (float*)Unsafe_AsPointer(arr), arr);
    }

    private static void* Unsafe_AsPointer(float[] pinned) => System.Runtime.CompilerServices.Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned));

    public override string TypeName => "f32";
    public override long Bytes => (long)Rows * Cols * sizeof(float);

    public ReadOnlySpan<float> Row(int r) => new(_data + (long)r * Cols, Cols);

    /// <summary>All values, row-major.</summary>
    public ReadOnlySpan<float> Values => new(_data, checked(Rows * Cols));

    public override void MatVec(ReadOnlySpan<float> x, Span<float> y, int r0, int r1)
    {
        GC.KeepAlive(_owner);
        // TensorPrimitives.Dot vectorizes with the widest SIMD the CPU has (Vector512/256).
        for (int r = r0; r < r1; r++) y[r] = TensorPrimitives.Dot(Row(r), x[..Cols]);
    }

    public override void DequantizeRow(int row, Span<float> destination) => Row(row).CopyTo(destination);
}
