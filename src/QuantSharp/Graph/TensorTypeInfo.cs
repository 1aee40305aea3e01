using QuantSharp.Tensors;

namespace QuantSharp.Graph;

/// <summary>One dimension of a declared shape: a fixed size, a named symbol ("batch"), or unknown (both null).</summary>
public readonly record struct Dimension(long? Value, string? Symbol = null)
{
    public static Dimension Unknown => new(null, null);
    public static implicit operator Dimension(long v) => new(v);
    public bool IsKnown => Value.HasValue;
    public override string ToString() => Value?.ToString() ?? Symbol ?? "?";
}

/// <summary>Element type and (optionally) shape of a tensor value. <see cref="Shape"/> null means the rank is unknown.</summary>
public sealed record TensorTypeInfo(DataType ElementType, Dimension[]? Shape)
{
    public static TensorTypeInfo FromShape(DataType dt, ReadOnlySpan<int> shape)
    {
        var dims = new Dimension[shape.Length];
        for (int i = 0; i < shape.Length; i++) dims[i] = new Dimension(shape[i]);
        return new TensorTypeInfo(dt, dims);
    }

    public int? Rank => Shape?.Length;

    /// <summary>The concrete shape when every dimension is known, else null.</summary>
    public int[]? ConcreteShape()
    {
        if (Shape is null) return null;
        var r = new int[Shape.Length];
        for (int i = 0; i < r.Length; i++)
        {
            if (Shape[i].Value is not long v || v < 0 || v > int.MaxValue) return null;
            r[i] = (int)v;
        }
        return r;
    }

    public override string ToString() =>
        DataTypes.Name(ElementType) + (Shape is null ? "[?]" : "[" + string.Join(",", Shape.Select(d => d.ToString())) + "]");

    public bool Equals(TensorTypeInfo? other) => other is not null && ElementType == other.ElementType &&
        (Shape is null ? other.Shape is null : other.Shape is not null && Shape.AsSpan().SequenceEqual(other.Shape));

    public override int GetHashCode() => HashCode.Combine(ElementType, Shape?.Length ?? -1);
}
