using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantSharp.Runtime.Kernels.Reference;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>The 256-entry byte table lookup of <see cref="Int8LutReference"/>, 64 bytes at a time where AVX-512 VBMI exists.</summary>
public static unsafe class Int8Lut
{
    /// <summary>Whether the 64-lane path is available (vpermi2b needs AVX512_VBMI).</summary>
    public static bool IsVectorised => Avx512Vbmi.IsSupported;

    /// <summary>
    /// y[i] = table[x[i] xor flip]. With VBMI the table lives in four zmm registers: vpermi2b looks the low 7 bits
    /// of each index up in entries 0–127 and in entries 128–255, and bit 7 of the index (the byte's sign, vpmovb2m)
    /// picks between the two results. The tail uses the reference.
    /// </summary>
    public static void Lookup(ReadOnlySpan<byte> x, byte flip, ReadOnlySpan<byte> table, Span<byte> y)
    {
        if (table.Length != 256) throw new QuantSharpException($"int8 table: {table.Length} entries, expected 256");
        int n = y.Length;
        if (x.Length < n) throw new QuantSharpException("int8 table: input shorter than the output");
        int i = 0;
        if (Avx512Vbmi.IsSupported && n >= 64)
        {
            fixed (byte* pt = table) fixed (byte* px = x) fixed (byte* py = y)
            {
                var t0 = Vector512.Load(pt);
                var t1 = Vector512.Load(pt + 64);
                var t2 = Vector512.Load(pt + 128);
                var t3 = Vector512.Load(pt + 192);
                var vf = Vector512.Create(flip);
                for (; i <= n - 64; i += 64)
                {
                    var idx = Vector512.Load(px + i) ^ vf;
                    // vpermi2b uses index bits 0–6 (bit 6 selects the second table register); bit 7 is ignored.
                    var low = Avx512Vbmi.PermuteVar64x8x2(t0, idx, t1);
                    var high = Avx512Vbmi.PermuteVar64x8x2(t2, idx, t3);
                    // Bytes with bit 7 set (as signed: negative) take the upper half of the table.
                    var upper = Vector512.LessThan(idx.AsSByte(), Vector512<sbyte>.Zero).AsByte();
                    Vector512.ConditionalSelect(upper, high, low).Store(py + i);
                }
            }
        }
        if (i < n) Int8LutReference.Lookup(x.Slice(i, n - i), flip, table, y.Slice(i));
    }
}
