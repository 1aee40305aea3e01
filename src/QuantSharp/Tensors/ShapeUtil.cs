namespace QuantSharp.Tensors;

public static class ShapeUtil
{
    /// <summary>Element count of a shape; throws on negative dimensions or a count that overflows int32.</summary>
    public static int Product(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new QuantSharpException($"negative dimension {d} in shape {Format(shape)}");
            n *= d;
            if (n > Array.MaxLength) throw new QuantSharpException($"shape {Format(shape)} has more than {Array.MaxLength} elements");
        }
        return (int)n;
    }

    /// <summary>Row-major strides in elements.</summary>
    public static int[] Strides(ReadOnlySpan<int> shape)
    {
        var s = new int[shape.Length];
        int acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            s[i] = acc;
            acc *= shape[i];
        }
        return s;
    }

    /// <summary>Normalises a possibly negative axis into [0, rank); throws naming the op when out of range.</summary>
    public static int NormalizeAxis(long axis, int rank, string what = "axis")
    {
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= Math.Max(rank, 1))
            throw new QuantSharpException($"{what} {axis} is out of range for rank {rank}");
        return (int)a;
    }

    /// <summary>NumPy/ONNX multidirectional broadcast of two shapes.</summary>
    public static int[] Broadcast(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var r = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da == db || db == 1) r[i] = da;
            else if (da == 1) r[i] = db;
            else throw new QuantSharpException($"shapes {Format(a)} and {Format(b)} cannot be broadcast");
        }
        return r;
    }

    public static bool SameShape(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);

    public static string Format(ReadOnlySpan<int> shape) => "[" + string.Join(",", shape.ToArray()) + "]";
}
