using QuantSharp.Tensors;

namespace QuantSharp.Runtime;

/// <summary>
/// Recycles tensor buffers between nodes and between runs. Arrays are keyed by element type and exact length,
/// which suits inference: the same shapes recur every run, so after the first run nothing is allocated.
/// Rented buffers are not cleared.
/// </summary>
public sealed class TensorPool
{
    private readonly Dictionary<(Type, int), Stack<Array>> _free = new();
    private long _pooledBytes;

    /// <summary>Upper bound on bytes kept idle in the pool; beyond it returned buffers are dropped.</summary>
    public long MaxPooledBytes { get; init; } = 1L << 30;

    public T[] RentArray<T>(int length)
    {
        if (length == 0) return [];
        lock (_free)
        {
            if (_free.TryGetValue((typeof(T), length), out var s) && s.Count > 0)
            {
                var a = (T[])s.Pop();
                _pooledBytes -= ByteSize(a);
                return a;
            }
        }
        return GC.AllocateUninitializedArray<T>(length);
    }

    public Tensor Rent(DataType dt, int[] shape) => dt switch
    {
        DataType.Float => new Tensor<float>(RentArray<float>(ShapeUtil.Product(shape)), shape, dt),
        DataType.Double => new Tensor<double>(RentArray<double>(ShapeUtil.Product(shape)), shape, dt),
        DataType.UInt8 or DataType.UInt4 => new Tensor<byte>(RentArray<byte>(ShapeUtil.Product(shape)), shape, dt),
        DataType.Int8 or DataType.Int4 => new Tensor<sbyte>(RentArray<sbyte>(ShapeUtil.Product(shape)), shape, dt),
        DataType.Int32 => new Tensor<int>(RentArray<int>(ShapeUtil.Product(shape)), shape, dt),
        DataType.Int64 => new Tensor<long>(RentArray<long>(ShapeUtil.Product(shape)), shape, dt),
        DataType.Int16 => new Tensor<short>(RentArray<short>(ShapeUtil.Product(shape)), shape, dt),
        DataType.UInt16 => new Tensor<ushort>(RentArray<ushort>(ShapeUtil.Product(shape)), shape, dt),
        DataType.Bool => new Tensor<bool>(RentArray<bool>(ShapeUtil.Product(shape)), shape, dt),
        DataType.Float16 => new Tensor<Half>(RentArray<Half>(ShapeUtil.Product(shape)), shape, dt),
        _ => Tensor.Zeros(dt, shape),
    };

    public void Return(Tensor t)
    {
        var a = t.Buffer;
        if (a.Length == 0 || t.DataType == DataType.String) return;
        long bytes = ByteSize(a);
        lock (_free)
        {
            if (_pooledBytes + bytes > MaxPooledBytes) return;
            var key = (a.GetType().GetElementType()!, a.Length);
            if (!_free.TryGetValue(key, out var s)) _free[key] = s = new Stack<Array>();
            s.Push(a);
            _pooledBytes += bytes;
        }
    }

    private static long ByteSize(Array a) => (long)a.Length * (a is bool[] or byte[] or sbyte[] ? 1 :
        a is short[] or ushort[] or Half[] or BFloat16[] ? 2 : a is float[] or int[] or uint[] ? 4 : 8);
}
