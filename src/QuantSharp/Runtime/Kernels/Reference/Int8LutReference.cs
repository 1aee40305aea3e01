namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>Scalar reference of the 256-entry byte table lookup that <see cref="Simd.Int8Lut"/> must match exactly.</summary>
public static class Int8LutReference
{
    /// <summary>y[i] = table[x[i] xor flip] (flip = 0x80 turns s8 codes into indices code + 128, 0 leaves u8 codes).</summary>
    public static void Lookup(ReadOnlySpan<byte> x, byte flip, ReadOnlySpan<byte> table, Span<byte> y)
    {
        if (table.Length != 256) throw new QuantSharpException($"int8 table: {table.Length} entries, expected 256");
        for (int i = 0; i < y.Length; i++) y[i] = table[x[i] ^ flip];
    }
}
