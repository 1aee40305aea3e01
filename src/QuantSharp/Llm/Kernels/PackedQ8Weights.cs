using System.Runtime.CompilerServices;
using QuantSharp.Llm.Formats;

namespace QuantSharp.Llm.Kernels;

/// <summary>The 32-weight block formats with a native product against int8 activations.</summary>
public enum QFormat
{
    Q8_0,
    Q4_0,
    Q4_1,
}

/// <summary>
/// A Q8_0/Q4_0/Q4_1 weight matrix repacked for the int8 kernels. Rows are taken in groups of 8 (the last group padded
/// with zero-scale rows). For group g and block column b there is one "tile" holding the 8 rows' 32 codes as
/// unsigned bytes u, interleaved in 4-byte quads so one 32-byte load holds 4 consecutive codes of each of the 8 rows
/// (the u8×s8 operand layout of vpdpbusd: one int32 lane per row):
/// <list type="bullet">
/// <item>Q8_0: u = q + 128 (1..255); 256 bytes; byte [q·32 + r·4 + j] is code k = 4q + j of row r.</item>
/// <item>Q4_0/Q4_1: u = the nibble (0..15); 128 bytes; byte [h·32 + r·4 + j] holds code k = 4h + j of row r in its low
/// nibble and code k + 16 in its high nibble (llama.cpp's nibble order), so mask and shift give quads h and h + 4.</item>
/// </list>
/// Scales d (fp16, 8 per tile) and for Q4_1 the minimums m (fp16) are separate streams, [g][b][8]. Bytes per weight
/// are those of the block format (8.5, 4.5, 5 bits). The signed code is q = u − <see cref="Offset"/> (128, 8, 0), so
/// Σ q·x = Σ u·x − Offset·Σ x exactly, with Σ x per activation block precomputed.
/// </summary>
public sealed unsafe class PackedQ8Weights
{
    public const int GroupRows = 8;
    public const int Block = 32;

    private readonly byte[] _quantStore, _scaleStore, _minStore;

    public PackedQ8Weights(QFormat format, int rows, int cols)
    {
        if (rows <= 0 || cols <= 0) throw new ArgumentException($"invalid shape [{rows},{cols}]");
        Format = format;
        Rows = rows;
        Cols = cols;
        Blocks = (cols + Block - 1) / Block;
        Groups = (rows + GroupRows - 1) / GroupRows;
        TileBytes = format == QFormat.Q8_0 ? 256 : 128;
        long tiles = (long)Groups * Blocks;
        // 64-byte aligned views into pinned arrays: tiles start on cache lines, so 32/64-byte loads never split a line.
        Quants = (byte*)Aligned(tiles * TileBytes, out _quantStore);
        Scales = (ushort*)Aligned(tiles * GroupRows * 2, out _scaleStore);
        Mins = format == QFormat.Q4_1 ? (ushort*)Aligned(tiles * GroupRows * 2, out _minStore) : null;
        _minStore ??= [];
    }

    private static byte* Aligned(long bytes, out byte[] store)
    {
        store = GC.AllocateArray<byte>(checked((int)(bytes + 64)), pinned: true);
        nint p = (nint)Unsafe.AsPointer(ref store[0]);
        return (byte*)((p + 63) & ~(nint)63);
    }

    public QFormat Format { get; }
    public int Rows { get; }
    public int Cols { get; }
    /// <summary>32-weight blocks per row (the last may be partial).</summary>
    public int Blocks { get; }
    /// <summary>8-row groups (the last may be partial).</summary>
    public int Groups { get; }
    public int TileBytes { get; }
    public byte* Quants { get; }
    public ushort* Scales { get; }
    public ushort* Mins { get; }

    /// <summary>128 for Q8_0, 8 for Q4_0, 0 for Q4_1: signed code = stored code − Offset.</summary>
    public int Offset => Format switch { QFormat.Q8_0 => 128, QFormat.Q4_0 => 8, _ => 0 };

    /// <summary>Stored bytes of the real rows (row padding of the last group not counted, like the block form).</summary>
    public long Bytes => (long)Rows * Blocks * (Format switch { QFormat.Q8_0 => 34, QFormat.Q4_0 => 18, _ => 20 });

    public byte* Tile(int group, int block) => Quants + ((long)group * Blocks + block) * TileBytes;
    public ushort* TileScales(int group, int block) => Scales + ((long)group * Blocks + block) * GroupRows;
    public ushort* TileMins(int group, int block) => Mins + ((long)group * Blocks + block) * GroupRows;

    /// <summary>Stored (unsigned) code of weight (row, k) with k = 0..31 inside block <paramref name="block"/>.</summary>
    public int Code(int row, int block, int k)
    {
        byte* t = Tile(row / GroupRows, block);
        int r = row % GroupRows;
        if (Format == QFormat.Q8_0) return t[(k / 4) * 32 + r * 4 + k % 4];
        int kk = k % 16;
        byte v = t[(kk / 4) * 32 + r * 4 + kk % 4];
        return k < 16 ? v & 0x0F : v >> 4;
    }

    /// <summary>Writes one block of one row from its block-format codes (signed codes for Q8_0, nibbles for Q4_x).</summary>
    public void SetBlock(int row, int block, ushort d, ushort m, ReadOnlySpan<int> codes)
    {
        int g = row / GroupRows, r = row % GroupRows;
        if (!float.IsFinite((float)BitConverter.UInt16BitsToHalf(d)) || !float.IsFinite((float)BitConverter.UInt16BitsToHalf(m)))
            throw new QuantSharpException($"non-finite block scale in row {row}, block {block}");
        byte* t = Tile(g, block);
        TileScales(g, block)[r] = d;
        if (Format == QFormat.Q4_1) TileMins(g, block)[r] = m;
        if (Format == QFormat.Q8_0)
        {
            for (int k = 0; k < 32; k++) t[(k / 4) * 32 + r * 4 + k % 4] = (byte)(codes[k] + 128);
            return;
        }
        for (int k = 0; k < 16; k++) t[(k / 4) * 32 + r * 4 + k % 4] = (byte)(codes[k] | (codes[k + 16] << 4));
    }

    public void SetBlock(int row, int block, in BlockQ8_0 b)
    {
        Span<int> c = stackalloc int[32];
        for (int k = 0; k < 32; k++) c[k] = b.Qs[k];
        SetBlock(row, block, BitConverter.HalfToUInt16Bits(b.D), 0, c);
    }

    public void SetBlock(int row, int block, in BlockQ4_0 b)
    {
        Span<int> c = stackalloc int[32];
        for (int k = 0; k < 16; k++)
        {
            c[k] = b.Qs[k] & 0x0F;
            c[k + 16] = b.Qs[k] >> 4;
        }
        SetBlock(row, block, BitConverter.HalfToUInt16Bits(b.D), 0, c);
    }

    public void SetBlock(int row, int block, in BlockQ4_1 b)
    {
        Span<int> c = stackalloc int[32];
        for (int k = 0; k < 16; k++)
        {
            c[k] = b.Qs[k] & 0x0F;
            c[k + 16] = b.Qs[k] >> 4;
        }
        SetBlock(row, block, BitConverter.HalfToUInt16Bits(b.D), BitConverter.HalfToUInt16Bits(b.M), c);
    }

    /// <summary>The block-format struct of (row, block) read back from the packed form.</summary>
    public TBlock GetBlock<TBlock>(int row, int block) where TBlock : unmanaged
    {
        int g = row / GroupRows, r = row % GroupRows;
        var d = BitConverter.UInt16BitsToHalf(TileScales(g, block)[r]);
        if (typeof(TBlock) == typeof(BlockQ8_0))
        {
            var b = new BlockQ8_0 { D = d };
            for (int k = 0; k < 32; k++) b.Qs[k] = (sbyte)(Code(row, block, k) - 128);
            return Unsafe.As<BlockQ8_0, TBlock>(ref b);
        }
        if (typeof(TBlock) == typeof(BlockQ4_0))
        {
            var b = new BlockQ4_0 { D = d };
            for (int k = 0; k < 16; k++) b.Qs[k] = (byte)(Code(row, block, k) | (Code(row, block, k + 16) << 4));
            return Unsafe.As<BlockQ4_0, TBlock>(ref b);
        }
        if (typeof(TBlock) == typeof(BlockQ4_1))
        {
            var b = new BlockQ4_1 { D = d, M = BitConverter.UInt16BitsToHalf(TileMins(g, block)[r]) };
            for (int k = 0; k < 16; k++) b.Qs[k] = (byte)(Code(row, block, k) | (Code(row, block, k + 16) << 4));
            return Unsafe.As<BlockQ4_1, TBlock>(ref b);
        }
        throw new ArgumentException($"{typeof(TBlock).Name} is not a packed block format");
    }

    /// <summary>The format of a block struct type.</summary>
    public static QFormat FormatOf<TBlock>() =>
        typeof(TBlock) == typeof(BlockQ8_0) ? QFormat.Q8_0 :
        typeof(TBlock) == typeof(BlockQ4_0) ? QFormat.Q4_0 :
        typeof(TBlock) == typeof(BlockQ4_1) ? QFormat.Q4_1 :
        throw new ArgumentException($"{typeof(TBlock).Name} has no packed int8 form");

    /// <summary>Row <paramref name="row"/> as FP32: w = d·q (+ m for Q4_1), the block format's dequantization.</summary>
    public void DequantizeRow(int row, Span<float> destination)
    {
        int g = row / GroupRows, r = row % GroupRows, off = Offset;
        for (int b = 0; b < Blocks; b++)
        {
            float d = (float)BitConverter.UInt16BitsToHalf(TileScales(g, b)[r]);
            float m = Format == QFormat.Q4_1 ? (float)BitConverter.UInt16BitsToHalf(TileMins(g, b)[r]) : 0f;
            int n = Math.Min(Block, Cols - b * Block);
            for (int k = 0; k < n; k++) destination[b * Block + k] = d * (Code(row, b, k) - off) + m;
        }
    }
}
