namespace QuantSharp.Tensors;

/// <summary>
/// A dense, row-major tensor. The element buffer always has exactly <see cref="Length"/> elements, so
/// kernels may use <c>Data.Length</c> and buffer pools can key on size. A scalar has shape [] and one element.
/// </summary>
public abstract class Tensor
{
    protected Tensor(DataType dataType, int[] shape)
    {
        DataType = dataType;
        Shape = shape;
        Length = ShapeUtil.Product(shape);
    }

    public DataType DataType { get; }

    /// <summary>Dimensions. Treat as read-only: tensors never change shape in place.</summary>
    public int[] Shape { get; }

    public int Rank => Shape.Length;

    public int Length { get; }

    /// <summary>The element array (float[], sbyte[], Half[], string[] …).</summary>
    public abstract Array Buffer { get; }

    public Tensor<T> As<T>()
    {
        if (this is Tensor<T> t) return t;
        throw new QuantSharpException(
            $"tensor of type {DataTypes.Name(DataType)} was used as {typeof(T).Name}");
    }

    /// <summary>A tensor of the same dtype with its own copy of the data.</summary>
    public abstract Tensor Clone();

    /// <summary>A tensor of the same dtype and data (copied) under another shape with the same element count.</summary>
    public abstract Tensor Reshape(int[] shape);

    /// <summary>Element i converted to double (for tests, reports and reference code; not for hot loops).</summary>
    public abstract double GetDouble(int i);

    /// <summary>Creates a zero-filled tensor whose element type follows <paramref name="dataType"/>.</summary>
    public static Tensor Zeros(DataType dataType, int[] shape) => dataType switch
    {
        DataType.Float => new Tensor<float>(shape),
        DataType.Double => new Tensor<double>(shape),
        DataType.UInt8 or DataType.UInt4 => new Tensor<byte>(shape, dataType),
        DataType.Int8 or DataType.Int4 => new Tensor<sbyte>(shape, dataType),
        DataType.UInt16 => new Tensor<ushort>(shape),
        DataType.Int16 => new Tensor<short>(shape),
        DataType.Int32 => new Tensor<int>(shape),
        DataType.Int64 => new Tensor<long>(shape),
        DataType.UInt32 => new Tensor<uint>(shape),
        DataType.UInt64 => new Tensor<ulong>(shape),
        DataType.Bool => new Tensor<bool>(shape),
        DataType.String => NewStrings(shape),
        DataType.Float16 => new Tensor<Half>(shape),
        DataType.BFloat16 => new Tensor<BFloat16>(shape),
        _ => throw new QuantSharpException($"data type {dataType} is not supported"),
    };

    private static Tensor<string> NewStrings(int[] shape)
    {
        var t = new Tensor<string>(shape);
        Array.Fill(t.Data, string.Empty);
        return t;
    }

    public override string ToString() => $"{DataTypes.Name(DataType)}{ShapeUtil.Format(Shape)}";
}

public sealed class Tensor<T> : Tensor
{
    /// <summary>A zero-filled tensor.</summary>
    public Tensor(int[] shape) : this(shape, DataTypes.FromClr<T>()) { }

    public Tensor(int[] shape, DataType dataType) : base(dataType, shape)
    {
        CheckClr(dataType);
        Data = Length == 0 ? [] : new T[Length];
    }

    /// <summary>Wraps <paramref name="data"/> without copying; its length must equal the shape's element count.</summary>
    public Tensor(T[] data, int[] shape) : this(data, shape, DataTypes.FromClr<T>()) { }

    public Tensor(T[] data, int[] shape, DataType dataType) : base(dataType, shape)
    {
        CheckClr(dataType);
        if (data.Length != Length)
            throw new QuantSharpException(
                $"tensor data has {data.Length} elements but shape {ShapeUtil.Format(shape)} needs {Length}");
        Data = data;
    }

    private static void CheckClr(DataType dataType)
    {
        if (DataTypes.ClrType(dataType) != typeof(T))
            throw new QuantSharpException($"{DataTypes.Name(dataType)} tensors are held in {DataTypes.ClrType(dataType).Name}, not {typeof(T).Name}");
    }

    /// <summary>The elements, exactly <see cref="Tensor.Length"/> of them.</summary>
    public T[] Data { get; }

    public Span<T> Span => Data;

    public override Array Buffer => Data;

    public static Tensor<T> Scalar(T value) => new([value], []);

    public static Tensor<T> FromArray(T[] data, params int[] shape) => new(data, shape);

    public override Tensor Clone() => new Tensor<T>((T[])Data.Clone(), (int[])Shape.Clone(), DataType);

    public override Tensor Reshape(int[] shape)
    {
        if (ShapeUtil.Product(shape) != Length)
            throw new QuantSharpException($"cannot reshape {ShapeUtil.Format(Shape)} to {ShapeUtil.Format(shape)}");
        return new Tensor<T>((T[])Data.Clone(), shape, DataType);
    }

    public override double GetDouble(int i)
    {
        object? v = Data[i];
        return v switch
        {
            float f => f,
            double d => d,
            byte b => b,
            sbyte sb => sb,
            short s => s,
            ushort us => us,
            int n => n,
            long l => l,
            uint u => u,
            ulong ul => ul,
            bool bo => bo ? 1 : 0,
            Half h => (double)h,
            BFloat16 bf => (float)bf,
            _ => double.NaN,
        };
    }
}
