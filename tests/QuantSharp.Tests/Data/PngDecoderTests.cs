using System.Globalization;
using QuantSharp.Data;

namespace QuantSharp.Tests.Data;

public class PngDecoderTests
{
    public static TheoryData<int, int> ColorTypesAndDepths()
    {
        var d = new TheoryData<int, int>();
        foreach (int depth in new[] { 1, 2, 4, 8, 16 }) d.Add(0, depth);
        foreach (int depth in new[] { 8, 16 }) { d.Add(2, depth); d.Add(4, depth); d.Add(6, depth); }
        foreach (int depth in new[] { 1, 2, 4, 8 }) d.Add(3, depth);
        return d;
    }

    /// <summary>Random samples at the file's depth; palette indices stay below the palette size.</summary>
    private static int[] RandomSamples(Random rng, TestPngEncoder enc, int paletteEntries)
    {
        var s = new int[enc.Width * enc.Height * enc.FileChannels];
        int max = enc.ColorType == 3 ? paletteEntries : 1 << enc.BitDepth;
        for (int i = 0; i < s.Length; i++) s[i] = rng.Next(max);
        return s;
    }

    private static byte[] RandomPalette(Random rng, int entries)
    {
        var p = new byte[entries * 3];
        rng.NextBytes(p);
        return p;
    }

    /// <summary>What the decoder must produce, computed from the samples and the specification's rules.</summary>
    private static int[] Expected(TestPngEncoder enc, int[] samples, out int channels)
    {
        int n = enc.Width * enc.Height, fc = enc.FileChannels;
        bool trns = enc.Transparency is not null;
        channels = enc.ColorType switch
        {
            3 => trns ? 4 : 3,
            0 or 2 => fc + (trns ? 1 : 0),
            _ => fc,
        };
        var e = new int[n * channels];
        int max = (1 << enc.BitDepth) - 1;
        for (int i = 0; i < n; i++)
        {
            if (enc.ColorType == 3)
            {
                int idx = samples[i];
                for (int c = 0; c < 3; c++) e[i * channels + c] = enc.Palette![3 * idx + c];
                if (trns) e[i * channels + 3] = idx < enc.Transparency!.Length ? enc.Transparency[idx] : 255;
                continue;
            }
            bool transparent = trns;
            for (int c = 0; c < fc; c++)
            {
                int v = samples[i * fc + c];
                if (trns) transparent &= v == (enc.Transparency![2 * c] << 8 | enc.Transparency[2 * c + 1]);
                e[i * channels + c] = enc.BitDepth >= 8 ? v : (int)Math.Round(v * 255.0 / max);
            }
            if (trns) e[i * channels + fc] = transparent ? 0 : (enc.BitDepth == 16 ? 65535 : 255);
        }
        return e;
    }

    private static void AssertDecodes(TestPngEncoder enc, int[] samples)
    {
        var img = PngDecoder.Decode(enc.Encode(samples), "test.png");
        var expected = Expected(enc, samples, out int channels);
        Assert.Equal(enc.Width, img.Width);
        Assert.Equal(enc.Height, img.Height);
        Assert.Equal(channels, img.Channels);
        Assert.Equal(enc.Interlaced, img.Interlaced);
        Assert.Equal(enc.BitDepth, img.SourceBitDepth);
        if (enc.BitDepth == 16)
        {
            Assert.True(img.Is16Bit);
            Assert.Equal(expected, img.ToUInt16().Data.Select(v => (int)v).ToArray());
        }
        else
        {
            Assert.Equal(expected, img.ToUInt8().Data.Select(v => (int)v).ToArray());
        }
        Assert.Equal([enc.Height, enc.Width, channels], img.ToUInt8().Shape);
    }

    [Theory]
    [MemberData(nameof(ColorTypesAndDepths))]
    public void EveryColorTypeDepthFilterAndInterlace(int colorType, int depth)
    {
        var rng = new Random(colorType * 100 + depth);
        foreach (bool interlaced in new[] { false, true })
            for (int filter = 0; filter <= 5; filter++)
            {
                // Filter 5 here means "a different filter on every row" (0, 1, 2, 3, 4, 0, …).
                int entries = 1 + rng.Next(Math.Min(256, 1 << depth));
                var enc = new TestPngEncoder
                {
                    Width = 13,
                    Height = 11,
                    ColorType = colorType,
                    BitDepth = depth,
                    Interlaced = interlaced,
                    Filters = filter == 5 ? [0, 1, 2, 3, 4] : [filter],
                    Palette = colorType == 3 ? RandomPalette(rng, entries) : null,
                };
                AssertDecodes(enc, RandomSamples(rng, enc, entries));
            }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(1, 5)]
    [InlineData(3, 2)]
    [InlineData(9, 9)]
    [InlineData(17, 3)]
    public void SmallAndOddSizesInterlaced(int w, int h)
    {
        var rng = new Random(w * 31 + h);
        foreach (var (ct, depth) in new[] { (0, 1), (0, 4), (2, 8), (6, 16), (3, 2) })
        {
            var enc = new TestPngEncoder
            {
                Width = w, Height = h, ColorType = ct, BitDepth = depth, Interlaced = true, Filters = [4, 3, 1],
                Palette = ct == 3 ? RandomPalette(rng, 4) : null,
            };
            AssertDecodes(enc, RandomSamples(rng, enc, 4));
        }
    }

    [Fact]
    public void TransparencyChunks()
    {
        var rng = new Random(5);
        // Grayscale key at depth 4: the samples include the key value 7.
        var gray = new TestPngEncoder { Width = 6, Height = 5, ColorType = 0, BitDepth = 4, Transparency = [0, 7] };
        var gs = RandomSamples(rng, gray, 0);
        gs[0] = 7;
        gs[3] = 7;
        AssertDecodes(gray, gs);
        var gray16 = new TestPngEncoder { Width = 4, Height = 3, ColorType = 0, BitDepth = 16, Transparency = [0x12, 0x34], Interlaced = true };
        var g16 = RandomSamples(rng, gray16, 0);
        g16[5] = 0x1234;
        AssertDecodes(gray16, g16);

        var rgb = new TestPngEncoder { Width = 5, Height = 4, ColorType = 2, BitDepth = 8, Transparency = [0, 10, 0, 20, 0, 30], Filters = [1, 4] };
        var rs = RandomSamples(rng, rgb, 0);
        rs[0] = 10; rs[1] = 20; rs[2] = 30;
        rs[6] = 10; rs[7] = 20; rs[8] = 31;
        AssertDecodes(rgb, rs);

        // Palette alpha for the first 3 of 6 entries; the others are opaque.
        var pal = new TestPngEncoder
        {
            Width = 7, Height = 3, ColorType = 3, BitDepth = 4, Palette = RandomPalette(rng, 6), Transparency = [0, 128, 255],
        };
        AssertDecodes(pal, RandomSamples(rng, pal, 6));
        var img = PngDecoder.Decode(pal.Encode(Enumerable.Repeat(1, 21).ToArray()), "p.png");
        Assert.Equal(4, img.Channels);
        Assert.All(Enumerable.Range(0, 21), i => Assert.Equal(128, img.ToUInt8().Data[i * 4 + 3]));
    }

    [Fact]
    public void SixteenBitConversions()
    {
        var enc = new TestPngEncoder { Width = 4, Height = 1, ColorType = 0, BitDepth = 16 };
        var img = PngDecoder.Decode(enc.Encode([0, 257, 32896, 65535]), "w.png");
        Assert.Equal(new ushort[] { 0, 257, 32896, 65535 }, img.ToUInt16().Data);
        // round(v·255/65535)
        Assert.Equal(new byte[] { 0, 1, 128, 255 }, img.ToUInt8().Data);
        var f = img.ToFloat().Data;
        Assert.Equal(32896 * 255.0 / 65535, f[2], 3);
        Assert.Equal(Tensors.DataType.Float, img.ToTensor().DataType);
        var eight = PngDecoder.Decode(new TestPngEncoder { Width = 1, Height = 1, ColorType = 0, BitDepth = 8 }.Encode([200]), "e.png");
        Assert.Equal(Tensors.DataType.UInt8, eight.ToTensor().DataType);
        Assert.Equal(200 * 257, eight.ToUInt16().Data[0]);
    }

    [Fact]
    public void SplitIdatAndAncillaryChunks()
    {
        var rng = new Random(9);
        var enc = new TestPngEncoder { Width = 20, Height = 10, ColorType = 6, BitDepth = 8, IdatChunkSize = 7, Filters = [2, 3] };
        enc.ExtraChunks.Add(("tEXt", "Comment\0hello"u8.ToArray()));
        enc.ExtraChunks.Add(("gAMA", [0, 0, 0xB1, 0x8F]));
        AssertDecodes(enc, RandomSamples(rng, enc, 0));
    }

    private static byte[] ValidPng() =>
        new TestPngEncoder { Width = 8, Height = 8, ColorType = 2, BitDepth = 8, Filters = [4] }
            .Encode(Enumerable.Range(0, 8 * 8 * 3).Select(i => (i * 37) & 255).ToArray());

    private static void AssertCorrupt(byte[] png, string fragment)
    {
        var e = Assert.ThrowsAny<QuantSharpException>(() => PngDecoder.Decode(png, "bad.png"));
        Assert.Contains("bad.png", e.Message);
        Assert.Contains(fragment, e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void CorruptFilesGiveClearErrors()
    {
        var png = ValidPng();
        var badSig = (byte[])png.Clone();
        badSig[1] = (byte)'X';
        AssertCorrupt(badSig, "signature");

        var badCrc = (byte[])png.Clone();
        badCrc[8 + 8 + 3] ^= 0x01; // a byte of IHDR's data
        AssertCorrupt(badCrc, "CRC");

        // Truncated at every point: always an error, never a crash.
        for (int cut = 0; cut < png.Length; cut += 3)
            Assert.ThrowsAny<QuantSharpException>(() => PngDecoder.Decode(png[..cut], "cut.png"));
        AssertCorrupt(png[..^12], "truncated"); // no IEND

        AssertCorrupt(png[..8], "truncated");
    }

    [Fact]
    public void InvalidContentGivesClearErrors()
    {
        // Unknown filter type 5 in a row.
        var enc = new TestPngEncoder { Width = 4, Height = 2, ColorType = 0, BitDepth = 8 };
        var lines = enc.Scanlines([1, 2, 3, 4, 5, 6, 7, 8]);
        lines[5] = 5;
        AssertCorrupt(WithIdat(enc, TestPngEncoder.Compress(lines)), "filter type 5");

        // Too few scanlines.
        AssertCorrupt(WithIdat(enc, TestPngEncoder.Compress(lines[..5])), "truncated");

        // Not zlib data.
        AssertCorrupt(WithIdat(enc, [0x12, 0x34, 0x56, 0x78, 0x9A]), "image data");

        // Palette index beyond the palette.
        var pal = new TestPngEncoder { Width = 2, Height = 1, ColorType = 3, BitDepth = 8, Palette = [1, 2, 3, 4, 5, 6] };
        AssertCorrupt(pal.Encode([1, 2]), "palette index 2");

        // Indexed image without PLTE.
        AssertCorrupt(new TestPngEncoder { Width = 1, Height = 1, ColorType = 3, BitDepth = 8 }.Encode([0]), "PLTE");

        // Bit depth not allowed for the colour type.
        AssertCorrupt(new TestPngEncoder { Width = 1, Height = 1, ColorType = 2, BitDepth = 4 }.Encode([0, 0, 0]), "bit depth 4");

        // Unknown critical chunk.
        var crit = new TestPngEncoder { Width = 1, Height = 1, ColorType = 0, BitDepth = 8 };
        crit.ExtraChunks.Add(("ZZZZ", [1]));
        AssertCorrupt(crit.Encode([0]), "critical");
    }

    private static byte[] WithIdat(TestPngEncoder enc, byte[] zlib)
    {
        var ms = new MemoryStream();
        ms.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var full = enc.Encode(new int[enc.Width * enc.Height * enc.FileChannels]);
        ms.Write(full.AsSpan(8, 25)); // IHDR chunk as the encoder wrote it
        TestPngEncoder.WriteChunk(ms, "IDAT", zlib);
        TestPngEncoder.WriteChunk(ms, "IEND", []);
        return ms.ToArray();
    }

    [Fact]
    public void KittenMatchesTheReferenceTensor()
    {
        string png = TestPaths.SharedFile("models", "onnx", "kitten_224.png");
        string csv = TestPaths.SharedFile("models", "onnx", "kitten_224_bgr_chw.csv");
        var img = PngDecoder.Decode(png);
        Assert.Equal(224, img.Width);
        Assert.Equal(224, img.Height);
        Assert.Equal(4, img.Channels);
        // The CSV is one line of 3·224·224 integers 0..255: the BGR planes (CHW) of the model input.
        var reference = File.ReadAllText(csv).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(3 * 224 * 224, reference.Length);
        var p = new ImagePreprocessing { ChannelOrder = ChannelOrder.BGR, Layout = ImageLayout.NCHW, Channels = 3 };
        var t = ImageTransform.Apply(img.ToUInt8(), p, png).As<float>();
        Assert.Equal([3, 224, 224], t.Shape);
        Assert.Equal(reference, t.Data);
    }

    [Fact]
    public void FishDecodes()
    {
        string png = TestPaths.SharedFile("models", "onnx", "fish.png");
        var img = PngDecoder.Decode(png);
        Assert.Equal((224, 224, 3), (img.Width, img.Height, img.Channels));
        var px = img.ToUInt8().Data;
        Assert.True(px.Distinct().Count() > 100, "a photograph uses many distinct values");
    }

    [Fact]
    public void CrcMatchesTheSpecificationCheckValue()
    {
        // The standard CRC-32 check value of the ASCII string "123456789".
        Assert.Equal(0xCBF43926u, PngDecoder.Crc32("123456789"u8));
    }
}
