using System.IO.Compression;
using System.Text;

namespace QuantSharp.Tests.Data;

/// <summary>
/// A minimal PNG encoder for tests, written independently of the decoder: bitwise CRC, Adam7 from the 8×8 pass
/// pattern of the specification, filters applied forwards. Samples are given at the file's bit depth, one int per
/// sample, row-major [H, W, channels in file].
/// </summary>
internal sealed class TestPngEncoder
{
    public required int Width { get; init; }
    public required int Height { get; init; }
    public required int ColorType { get; init; }
    public required int BitDepth { get; init; }
    public bool Interlaced { get; init; }

    /// <summary>Filter type per scanline (0..4), cycled; one value fixes the filter for every row.</summary>
    public int[] Filters { get; init; } = [0];

    public byte[]? Palette { get; init; }
    public byte[]? Transparency { get; init; }

    /// <summary>Split the zlib stream into IDAT chunks of at most this many bytes.</summary>
    public int IdatChunkSize { get; init; } = int.MaxValue;

    /// <summary>Extra chunks (type, data) written after IHDR.</summary>
    public List<(string Type, byte[] Data)> ExtraChunks { get; } = [];

    public int FileChannels => ColorType switch { 0 or 3 => 1, 4 => 2, 2 => 3, _ => 4 };

    private static readonly int[,] AdamPattern =
    {
        { 1, 6, 4, 6, 2, 6, 4, 6 },
        { 7, 7, 7, 7, 7, 7, 7, 7 },
        { 5, 6, 5, 6, 5, 6, 5, 6 },
        { 7, 7, 7, 7, 7, 7, 7, 7 },
        { 3, 6, 4, 6, 3, 6, 4, 6 },
        { 7, 7, 7, 7, 7, 7, 7, 7 },
        { 5, 6, 5, 6, 5, 6, 5, 6 },
        { 7, 7, 7, 7, 7, 7, 7, 7 },
    };

    public byte[] Encode(int[] samples)
    {
        var ms = new MemoryStream();
        ms.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        PutU32(ihdr, 0, (uint)Width);
        PutU32(ihdr, 4, (uint)Height);
        ihdr[8] = (byte)BitDepth;
        ihdr[9] = (byte)ColorType;
        ihdr[12] = (byte)(Interlaced ? 1 : 0);
        WriteChunk(ms, "IHDR", ihdr);
        foreach (var (t, d) in ExtraChunks) WriteChunk(ms, t, d);
        if (Palette is not null) WriteChunk(ms, "PLTE", Palette);
        if (Transparency is not null) WriteChunk(ms, "tRNS", Transparency);
        byte[] z = Compress(Scanlines(samples));
        for (int off = 0; off < z.Length; off += IdatChunkSize)
            WriteChunk(ms, "IDAT", z.AsSpan(off, Math.Min(IdatChunkSize, z.Length - off)).ToArray());
        WriteChunk(ms, "IEND", []);
        return ms.ToArray();
    }

    /// <summary>The filtered scanlines (filter byte + bytes) of every pass, concatenated.</summary>
    public byte[] Scanlines(int[] samples)
    {
        var output = new MemoryStream();
        int rowIndex = 0;
        var passes = Interlaced ? Enumerable.Range(1, 7) : [0];
        foreach (int pass in passes)
        {
            byte[]? prior = null;
            for (int y = 0; y < Height; y++)
            {
                var xs = Enumerable.Range(0, Width).Where(x => pass == 0 || AdamPattern[y % 8, x % 8] == pass).ToList();
                if (xs.Count == 0) continue;
                byte[] raw = PackRow(samples, y, xs);
                int filter = Filters[rowIndex++ % Filters.Length];
                output.WriteByte((byte)filter);
                output.Write(FilterRow(raw, prior ?? new byte[raw.Length], filter));
                prior = raw;
            }
        }
        return output.ToArray();
    }

    private byte[] PackRow(int[] samples, int y, List<int> xs)
    {
        int ch = FileChannels;
        int bits = xs.Count * ch * BitDepth;
        var row = new byte[(bits + 7) / 8];
        int bitPos = 0;
        foreach (int x in xs)
            for (int c = 0; c < ch; c++)
            {
                int v = samples[(y * Width + x) * ch + c];
                if (BitDepth == 16)
                {
                    row[bitPos / 8] = (byte)(v >> 8);
                    row[bitPos / 8 + 1] = (byte)v;
                }
                else
                {
                    // Most significant bits first within each byte.
                    row[bitPos / 8] |= (byte)(v << (8 - BitDepth - bitPos % 8));
                }
                bitPos += BitDepth;
            }
        return row;
    }

    private byte[] FilterRow(byte[] raw, byte[] prior, int filter)
    {
        int bpp = Math.Max(1, FileChannels * BitDepth / 8);
        var f = new byte[raw.Length];
        for (int i = 0; i < raw.Length; i++)
        {
            int left = i >= bpp ? raw[i - bpp] : 0;
            int up = prior[i];
            int upLeft = i >= bpp ? prior[i - bpp] : 0;
            int predictor = filter switch
            {
                0 => 0,
                1 => left,
                2 => up,
                3 => (left + up) / 2,
                4 => Paeth(left, up, upLeft),
                _ => 0,
            };
            f[i] = (byte)(raw[i] - predictor);
        }
        return f;
    }

    private static int Paeth(int a, int b, int c)
    {
        int estimate = a + b - c;
        int da = Math.Abs(estimate - a), db = Math.Abs(estimate - b), dc = Math.Abs(estimate - c);
        if (da <= db && da <= dc) return a;
        return db <= dc ? b : c;
    }

    public static byte[] Compress(byte[] data)
    {
        var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Fastest, leaveOpen: true)) z.Write(data);
        return ms.ToArray();
    }

    public static void WriteChunk(Stream s, string type, byte[] data)
    {
        var head = new byte[8];
        PutU32(head, 0, (uint)data.Length);
        Encoding.ASCII.GetBytes(type, head.AsSpan(4));
        s.Write(head);
        s.Write(data);
        var crcInput = new byte[4 + data.Length];
        head.AsSpan(4, 4).CopyTo(crcInput);
        data.CopyTo(crcInput, 4);
        var crc = new byte[4];
        PutU32(crc, 0, BitwiseCrc(crcInput));
        s.Write(crc);
    }

    /// <summary>CRC-32 computed bit by bit (no table), polynomial 0x04C11DB7 reflected.</summary>
    public static uint BitwiseCrc(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ ((crc & 1) * 0xEDB88320u);
        }
        return ~crc;
    }

    private static void PutU32(byte[] b, int o, uint v)
    {
        b[o] = (byte)(v >> 24);
        b[o + 1] = (byte)(v >> 16);
        b[o + 2] = (byte)(v >> 8);
        b[o + 3] = (byte)v;
    }
}
