using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime;

/// <summary>
/// What a kernel sees while computing: its inputs, a way to allocate its outputs (pooled, NOT cleared: write
/// every element, or use <see cref="OutputZeroed"/>), and the thread budget.
/// </summary>
public sealed class KernelContext
{
    private readonly TensorPool _pool;
    internal Tensor?[] Inputs = [];
    internal Tensor?[] Outputs = [];

    internal KernelContext(TensorPool pool, int threads)
    {
        _pool = pool;
        Threads = threads;
    }

    public int Threads { get; }
    public int InputCount => Inputs.Length;
    public int OutputCount => Outputs.Length;
    internal Node Node { get; set; } = null!;

    public bool HasInput(int i) => i < Inputs.Length && Inputs[i] is not null;

    /// <summary>Input i; throws naming the node when a required input is missing.</summary>
    public Tensor Input(int i) => (i < Inputs.Length ? Inputs[i] : null)
        ?? throw new QuantSharpException($"node {Node.Describe()}: required input {i} is missing");

    public Tensor? OptionalInput(int i) => i < Inputs.Length ? Inputs[i] : null;

    public Tensor<T> Input<T>(int i)
    {
        var t = Input(i);
        if (t is Tensor<T> typed) return typed;
        throw new QuantSharpException($"node {Node.Describe()}: input {i} is {DataTypes.Name(t.DataType)}, expected {typeof(T).Name}");
    }

    /// <summary>Whether output i is wanted (optional outputs may be omitted in the model).</summary>
    public bool WantsOutput(int i) => i < Outputs.Length && Node.Output(i) is not null;

    /// <summary>Allocates output i (uninitialised contents).</summary>
    public Tensor<T> Output<T>(int i, int[] shape) => (Tensor<T>)Output(i, DataTypes.FromClr<T>(), shape);

    public Tensor Output(int i, DataType dt, int[] shape)
    {
        var t = _pool.Rent(dt, shape);
        Set(i, t);
        return t;
    }

    public Tensor<T> OutputZeroed<T>(int i, int[] shape)
    {
        var t = Output<T>(i, shape);
        Array.Clear(t.Data);
        return t;
    }

    /// <summary>
    /// Sets output i to a tensor the kernel built itself. It must not share a buffer with an input or another
    /// output, because buffers return to the pool when their value is no longer needed.
    /// </summary>
    public void SetOutput(int i, Tensor t) => Set(i, t);

    private void Set(int i, Tensor t)
    {
        if (i >= Outputs.Length) throw new QuantSharpException($"node {Node.Describe()}: output {i} does not exist");
        Outputs[i] = t;
    }

    /// <summary>Runs body over [0, count) split over <see cref="Threads"/> (see <see cref="Parallelism.For"/>).</summary>
    public void ParallelFor(int count, int minChunk, Action<int, int> body) => Parallelism.For(Threads, count, minChunk, body);

    /// <summary>Scratch array from the pool; give it back with <see cref="ReturnScratch{T}"/>.</summary>
    public T[] RentScratch<T>(int length) => _pool.RentArray<T>(length);

    public void ReturnScratch<T>(T[] a) { if (a.Length > 0) _pool.Return(new Tensor<T>(a, [a.Length], DataTypeOf<T>())); }

    private static DataType DataTypeOf<T>() => DataTypes.FromClr<T>();
}
