using System.IO.Compression;
using QuantSharp.Tensors;

namespace QuantSharp.Data;

/// <summary>PNG colour types (IHDR byte 9).</summary>
public enum PngColorType : byte
{
    Grayscale = 0,
    Truecolor = 2,
    Indexed = 3,
    GrayscaleAlpha = 4,
    TruecolorAlpha = 6,
}

/// <summary>
/// A decoded PNG: pixels row-major [Height, Width, Channels] with Channels 1 (gray), 2 (gray, alpha), 3 (RGB) or
/// 4 (RGBA). Palette images are expanded to RGB, and a tRNS chunk adds an alpha channel. Samples of 1, 2 and 4 bits
/// are scaled to 8 bits (v·255/(2^depth−1)); 16-bit samples are kept at 16 bits until converted.
/// </summary>
public sealed class PngImage
{
    private readonly byte[]? _samples8;
    private readonly ushort[]? _samples16;

    internal PngImage(int width, int height, int channels, PngColorType colorType, int sourceBitDepth, bool interlaced,
        byte[]? samples8, ushort[]? samples16)
    {
        Width = width;
        Height = height;
        Channels = channels;
        ColorType = colorType;
        SourceBitDepth = sourceBitDepth;
        Interlaced = interlaced;
        _samples8 = samples8;
        _samples16 = samples16;
    }

    public int Width { get; }
    public int Height { get; }
    public int Channels { get; }
    public PngColorType ColorType { get; }

    /// <summary>The bit depth in the file: 1, 2, 4, 8 or 16.</summary>
    public int SourceBitDepth { get; }

    public bool Interlaced { get; }

    /// <summary>Whether samples are held at 16 bits (the file's depth was 16).</summary>
    public bool Is16Bit => _samples16 is not null;

    /// <summary>uint8 [H, W, C]; 16-bit samples are reduced as round(v·255/65535).</summary>
    public Tensor<byte> ToUInt8()
    {
        if (_samples8 is not null) return new Tensor<byte>((byte[])_samples8.Clone(), Shape);
        var s = _samples16!;
        var d = new byte[s.Length];
        for (int i = 0; i < s.Length; i++) d[i] = (byte)((s[i] * 255 + 32767) / 65535);
        return new Tensor<byte>(d, Shape);
    }

    /// <summary>uint16 [H, W, C]; 8-bit samples are widened as v·257 (so 255 → 65535).</summary>
    public Tensor<ushort> ToUInt16()
    {
        if (_samples16 is not null) return new Tensor<ushort>((ushort[])_samples16.Clone(), Shape);
        var s = _samples8!;
        var d = new ushort[s.Length];
        for (int i = 0; i < s.Length; i++) d[i] = (ushort)(s[i] * 257);
        return new Tensor<ushort>(d, Shape);
    }

    /// <summary>float32 [H, W, C] on the 0..255 scale; 16-bit samples keep their precision as v·255/65535.</summary>
    public Tensor<float> ToFloat()
    {
        var d = new float[Height * Width * Channels];
        if (_samples8 is not null)
            for (int i = 0; i < d.Length; i++) d[i] = _samples8[i];
        else
            for (int i = 0; i < d.Length; i++) d[i] = _samples16![i] * (255f / 65535f);
        return new Tensor<float>(d, Shape);
    }

    /// <summary>The image as a tensor [H, W, C]: uint8, or float32 on the 0..255 scale for 16-bit files.</summary>
    public Tensor ToTensor() => Is16Bit ? ToFloat() : ToUInt8();

    private int[] Shape => [Height, Width, Channels];
}

/// <summary>
/// A PNG decoder following the PNG specification (W3C PNG 2nd edition / ISO 15948): signature, chunks with CRC-32,
/// IHDR, PLTE, tRNS, concatenated IDAT inflated with zlib, the five scanline filters, Adam7 interlacing, colour
/// types 0/2/3/4/6 with every allowed bit depth. Ancillary chunks other than tRNS are checked and skipped (no gamma
/// or colour-space correction). Any violation is a <see cref="QuantSharpException"/> naming the file.
/// </summary>
public static class PngDecoder
{
    private static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Adam7 passes: (x start, y start, x step, y step).</summary>
    private static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
    [
        (0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2),
    ];

    private static readonly uint[] CrcTable = MakeCrcTable();

    /// <summary>True when the bytes start with the 8-byte PNG signature.</summary>
    public static bool IsPng(ReadOnlySpan<byte> head) => head.Length >= 8 && head[..8].SequenceEqual(Signature);

    public static PngImage Decode(string path) => Decode(DataFile.ReadRaw(path), path);

    /// <summary>Decodes PNG bytes; <paramref name="name"/> is used in error messages.</summary>
    public static PngImage Decode(byte[] png, string name)
    {
        if (!IsPng(png)) throw new QuantSharpException($"{name}: not a PNG file (bad signature)");
        int pos = 8;
        Header? ihdr = null;
        byte[]? palette = null;
        byte[]? trns = null;
        var idat = new MemoryStream();
        bool sawIdat = false, sawEnd = false;
        while (!sawEnd)
        {
            if (png.Length - pos < 12) throw new QuantSharpException($"{name}: PNG is truncated (chunk header at byte {pos})");
            uint length = DataFile.ReadUInt32BE(png, pos);
            if (length > int.MaxValue) throw new QuantSharpException($"{name}: PNG chunk length {length} at byte {pos} exceeds 2^31-1");
            var typeBytes = png.AsSpan(pos + 4, 4);
            foreach (byte b in typeBytes)
                if (!char.IsAsciiLetter((char)b)) throw new QuantSharpException($"{name}: corrupt PNG chunk type at byte {pos}");
            string type = System.Text.Encoding.ASCII.GetString(typeBytes);
            if (png.Length - pos - 12 < length) throw new QuantSharpException($"{name}: PNG is truncated inside the {type} chunk");
            var data = png.AsSpan(pos + 8, (int)length);
            uint stored = DataFile.ReadUInt32BE(png, pos + 8 + (int)length);
            uint crc = Crc32(png.AsSpan(pos + 4, 4 + (int)length));
            if (crc != stored) throw new QuantSharpException($"{name}: CRC mismatch in the {type} chunk at byte {pos}");
            pos += 12 + (int)length;

            if (ihdr is null && type != "IHDR") throw new QuantSharpException($"{name}: PNG does not start with an IHDR chunk");
            switch (type)
            {
                case "IHDR":
                    if (ihdr is not null) throw new QuantSharpException($"{name}: PNG has two IHDR chunks");
                    ihdr = ParseHeader(data, name);
                    break;
                case "PLTE":
                    if (sawIdat) throw new QuantSharpException($"{name}: PLTE chunk after IDAT");
                    if (length == 0 || length % 3 != 0 || length > 256 * 3)
                        throw new QuantSharpException($"{name}: PLTE chunk length {length} is not 3 × 1..256 entries");
                    if (ihdr!.ColorType is PngColorType.Grayscale or PngColorType.GrayscaleAlpha)
                        throw new QuantSharpException($"{name}: PLTE chunk in a grayscale PNG");
                    palette = data.ToArray();
                    break;
                case "tRNS":
                    if (sawIdat) throw new QuantSharpException($"{name}: tRNS chunk after IDAT");
                    trns = ParseTransparency(data, ihdr!, palette, name);
                    break;
                case "IDAT":
                    idat.Write(data);
                    sawIdat = true;
                    break;
                case "IEND":
                    sawEnd = true;
                    break;
                default:
                    // Bit 5 of the first type byte clear (upper case) marks a critical chunk: decoding without it is wrong.
                    if ((typeBytes[0] & 0x20) == 0) throw new QuantSharpException($"{name}: unknown critical PNG chunk {type}");
                    break;
            }
        }
        var h = ihdr!;
        if (!sawIdat) throw new QuantSharpException($"{name}: PNG has no IDAT chunk");
        if (h.ColorType == PngColorType.Indexed && palette is null) throw new QuantSharpException($"{name}: indexed-colour PNG has no PLTE chunk");
        idat.Position = 0;
        return DecodePixels(h, palette, trns, idat, name);
    }

    private sealed record Header(int Width, int Height, int BitDepth, PngColorType ColorType, bool Interlaced)
    {
        /// <summary>Samples per pixel as stored in the file.</summary>
        public int FileChannels => ColorType switch
        {
            PngColorType.Grayscale or PngColorType.Indexed => 1,
            PngColorType.GrayscaleAlpha => 2,
            PngColorType.Truecolor => 3,
            _ => 4,
        };
    }

    private static Header ParseHeader(ReadOnlySpan<byte> d, string name)
    {
        if (d.Length != 13) throw new QuantSharpException($"{name}: IHDR chunk is {d.Length} bytes, not 13");
        uint w = DataFile.ReadUInt32BE(d, 0), h = DataFile.ReadUInt32BE(d, 4);
        int depth = d[8], color = d[9];
        if (w == 0 || h == 0 || w > int.MaxValue || h > int.MaxValue)
            throw new QuantSharpException($"{name}: PNG size {w}×{h} is invalid");
        bool ok = color switch
        {
            0 => depth is 1 or 2 or 4 or 8 or 16,
            3 => depth is 1 or 2 or 4 or 8,
            2 or 4 or 6 => depth is 8 or 16,
            _ => throw new QuantSharpException($"{name}: PNG colour type {color} is invalid"),
        };
        if (!ok) throw new QuantSharpException($"{name}: bit depth {depth} is not allowed for PNG colour type {color}");
        if (d[10] != 0) throw new QuantSharpException($"{name}: PNG compression method {d[10]} is unknown");
        if (d[11] != 0) throw new QuantSharpException($"{name}: PNG filter method {d[11]} is unknown");
        if (d[12] > 1) throw new QuantSharpException($"{name}: PNG interlace method {d[12]} is unknown");
        var header = new Header((int)w, (int)h, depth, (PngColorType)color, d[12] == 1);
        int outChannels = header.FileChannels is 1 && header.ColorType == PngColorType.Indexed ? 4 : header.FileChannels + 1;
        if ((long)w * h * outChannels > Array.MaxLength) throw new QuantSharpException($"{name}: PNG size {w}×{h} is too large");
        return header;
    }

    private static byte[]? ParseTransparency(ReadOnlySpan<byte> d, Header h, byte[]? palette, string name)
    {
        switch (h.ColorType)
        {
            case PngColorType.Grayscale:
                if (d.Length != 2) throw new QuantSharpException($"{name}: tRNS chunk for a grayscale PNG is {d.Length} bytes, not 2");
                return d.ToArray();
            case PngColorType.Truecolor:
                if (d.Length != 6) throw new QuantSharpException($"{name}: tRNS chunk for a truecolour PNG is {d.Length} bytes, not 6");
                return d.ToArray();
            case PngColorType.Indexed:
                if (palette is null) throw new QuantSharpException($"{name}: tRNS chunk before PLTE");
                if (d.Length > palette.Length / 3)
                    throw new QuantSharpException($"{name}: tRNS chunk has {d.Length} entries for a {palette.Length / 3}-entry palette");
                return d.ToArray();
            default:
                // Colour types with an alpha channel must not carry tRNS; it has nothing to add, so it is ignored.
                return null;
        }
    }

    private static PngImage DecodePixels(Header h, byte[]? palette, byte[]? trns, Stream idat, string name)
    {
        int fileChannels = h.FileChannels;
        int outChannels = h.ColorType switch
        {
            PngColorType.Indexed => trns is null ? 3 : 4,
            PngColorType.Grayscale or PngColorType.Truecolor => fileChannels + (trns is null ? 0 : 1),
            _ => fileChannels,
        };
        bool wide = h.BitDepth == 16;
        int count = h.Width * h.Height * outChannels;
        byte[]? out8 = wide ? null : new byte[count];
        ushort[]? out16 = wide ? new ushort[count] : null;

        int bitsPerPixel = fileChannels * h.BitDepth;
        // Filters operate on bytes; "bpp" is the byte distance to the corresponding byte of the previous pixel (≥ 1).
        int bpp = Math.Max(1, bitsPerPixel / 8);
        long maxRowBytes = ((long)h.Width * bitsPerPixel + 7) / 8;
        if (maxRowBytes > Array.MaxLength - 1) throw new QuantSharpException($"{name}: PNG rows of {maxRowBytes} bytes are too long");
        var cur = new byte[maxRowBytes + 1];
        var prev = new byte[maxRowBytes + 1];
        int maxSample = (1 << h.BitDepth) - 1;
        int trnsGray = -1, trnsR = -1, trnsG = -1, trnsB = -1;
        if (trns is not null && h.ColorType == PngColorType.Grayscale) trnsGray = trns[0] << 8 | trns[1];
        if (trns is not null && h.ColorType == PngColorType.Truecolor)
        {
            trnsR = trns[0] << 8 | trns[1];
            trnsG = trns[2] << 8 | trns[3];
            trnsB = trns[4] << 8 | trns[5];
        }
        int paletteEntries = palette is null ? 0 : palette.Length / 3;

        using var z = new ZLibStream(idat, CompressionMode.Decompress);
        var passes = h.Interlaced ? Adam7 : [(0, 0, 1, 1)];
        Span<int> px = stackalloc int[4];
        for (int p = 0; p < passes.Length; p++)
        {
            var (x0, y0, dx, dy) = passes[p];
            int pw = h.Width > x0 ? (h.Width - x0 + dx - 1) / dx : 0;
            int ph = h.Height > y0 ? (h.Height - y0 + dy - 1) / dy : 0;
            // An empty pass has no scanlines and no filter bytes.
            if (pw == 0 || ph == 0) continue;
            int rowBytes = (int)(((long)pw * bitsPerPixel + 7) / 8);
            Array.Clear(prev, 0, rowBytes + 1);
            for (int y = 0; y < ph; y++)
            {
                ReadRow(z, cur.AsSpan(0, rowBytes + 1), name);
                Unfilter(cur[0], cur.AsSpan(1, rowBytes), prev.AsSpan(1, rowBytes), bpp, name, p, y);
                var row = cur.AsSpan(1, rowBytes);
                int oy = y0 + y * dy;
                for (int x = 0; x < pw; x++)
                {
                    // Gather the file's samples for this pixel at their native depth.
                    if (h.BitDepth < 8)
                    {
                        int bit = x * h.BitDepth;
                        px[0] = (row[bit >> 3] >> (8 - h.BitDepth - (bit & 7))) & maxSample;
                    }
                    else if (h.BitDepth == 8)
                    {
                        for (int c = 0; c < fileChannels; c++) px[c] = row[x * fileChannels + c];
                    }
                    else
                    {
                        for (int c = 0; c < fileChannels; c++)
                        {
                            int o = 2 * (x * fileChannels + c);
                            px[c] = row[o] << 8 | row[o + 1];
                        }
                    }
                    int ox = x0 + x * dx;
                    int dst = (oy * h.Width + ox) * outChannels;
                    if (h.ColorType == PngColorType.Indexed)
                    {
                        int idx = px[0];
                        if (idx >= paletteEntries)
                            throw new QuantSharpException($"{name}: palette index {idx} at pixel ({ox},{oy}) is outside the {paletteEntries}-entry palette");
                        out8![dst] = palette![3 * idx];
                        out8[dst + 1] = palette[3 * idx + 1];
                        out8[dst + 2] = palette[3 * idx + 2];
                        if (outChannels == 4) out8[dst + 3] = idx < trns!.Length ? trns[idx] : (byte)255;
                        continue;
                    }
                    int alpha = -1;
                    if (trnsGray >= 0) alpha = px[0] == trnsGray ? 0 : maxSample;
                    else if (trnsR >= 0) alpha = px[0] == trnsR && px[1] == trnsG && px[2] == trnsB ? 0 : maxSample;
                    if (wide)
                    {
                        for (int c = 0; c < fileChannels; c++) out16![dst + c] = (ushort)px[c];
                        if (alpha >= 0) out16![dst + fileChannels] = (ushort)alpha;
                    }
                    else
                    {
                        // Low bit depths scale to 8 bits as v·255/(2^depth−1), which is exact for depths 1, 2 and 4.
                        int mul = 255 / maxSample;
                        for (int c = 0; c < fileChannels; c++) out8![dst + c] = (byte)(px[c] * mul);
                        if (alpha >= 0) out8![dst + fileChannels] = (byte)(alpha * mul);
                    }
                }
                (cur, prev) = (prev, cur);
            }
        }
        return new PngImage(h.Width, h.Height, outChannels, h.ColorType, h.BitDepth, h.Interlaced, out8, out16);
    }

    private static void ReadRow(Stream z, Span<byte> buffer, string name)
    {
        int total = 0;
        try
        {
            while (total < buffer.Length)
            {
                int n = z.Read(buffer[total..]);
                if (n == 0) throw new QuantSharpException($"{name}: PNG image data is truncated (IDAT holds too few scanlines)");
                total += n;
            }
        }
        catch (InvalidDataException e)
        {
            throw new QuantSharpException($"{name}: corrupt PNG image data (zlib: {e.Message})", e);
        }
    }

    /// <summary>
    /// Reverses one scanline filter in place. a = byte bpp to the left, b = byte above, c = byte above-left
    /// (0 outside the image or in a pass's first row); all sums are modulo 256.
    /// </summary>
    private static void Unfilter(byte filter, Span<byte> row, ReadOnlySpan<byte> prior, int bpp, string name, int pass, int y)
    {
        int n = row.Length;
        switch (filter)
        {
            case 0:
                break;
            case 1: // Sub: x + a
                for (int i = bpp; i < n; i++) row[i] = (byte)(row[i] + row[i - bpp]);
                break;
            case 2: // Up: x + b
                for (int i = 0; i < n; i++) row[i] = (byte)(row[i] + prior[i]);
                break;
            case 3: // Average: x + floor((a + b) / 2)
                for (int i = 0; i < bpp && i < n; i++) row[i] = (byte)(row[i] + (prior[i] >> 1));
                for (int i = bpp; i < n; i++) row[i] = (byte)(row[i] + ((row[i - bpp] + prior[i]) >> 1));
                break;
            case 4: // Paeth: x + the one of a, b, c closest to a + b − c (ties prefer a, then b)
                for (int i = 0; i < bpp && i < n; i++) row[i] = (byte)(row[i] + prior[i]);
                for (int i = bpp; i < n; i++)
                {
                    int a = row[i - bpp], b = prior[i], c = prior[i - bpp];
                    int pa = Math.Abs(b - c), pb = Math.Abs(a - c), pc = Math.Abs(a + b - 2 * c);
                    int pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
                    row[i] = (byte)(row[i] + pred);
                }
                break;
            default:
                throw new QuantSharpException($"{name}: unknown PNG filter type {filter} in row {y}" + (pass > 0 ? $" of Adam7 pass {pass + 1}" : ""));
        }
    }

    /// <summary>CRC-32 (ISO 3309 / ITU-T V.42, reflected polynomial 0xEDB88320), as the PNG specification defines for chunks.</summary>
    public static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    private static uint[] MakeCrcTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }
}
