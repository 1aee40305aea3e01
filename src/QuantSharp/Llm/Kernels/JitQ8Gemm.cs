using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using QuantSharp.Runtime.Kernels.Jit;

namespace QuantSharp.Llm.Kernels;

/// <summary>
/// Q8_0 weights re-packed for the generated block-scaled kernel: rows in panels of 16 (one zmm of int32/float lanes),
/// per panel p and 32-weight block b one 576-byte record at (p·Blocks + b)·576: 512 code bytes
/// [q·64 + r·4 + j] = u8 code (q8 + 128) of row 16p + r, weight 4q + j (the u8 operand of vpdpbusd, one dword lane per
/// row), then the 16 row scales d as float (fp16 widened, exact). Rows past the matrix have code 0 and scale 0 (their
/// lanes are never stored). 9 bits per weight, in addition to the 8-row <see cref="PackedQ8Weights"/> form
/// (which decode keeps using).
/// </summary>
public sealed unsafe class JitQ8Panels
{
    public const int PanelRows = 16;
    public const int RecordBytes = 576;
    public JitQ8Panels(PackedQ8Weights w)
    {
        if (w.Format != QFormat.Q8_0) throw new ArgumentException($"{w.Format} weights have no generated block kernel");
        Rows = w.Rows;
        Blocks = w.Blocks;
        Panels = (w.Rows + PanelRows - 1) / PanelRows;
        long bytes = (long)Panels * Blocks * RecordBytes;
        // Native, 64-byte aligned and not zeroed (every byte is written below): a GC array would be zeroed first and
        // its size would count towards the managed heap's collection budget.
        Pointer = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        GC.AddMemoryPressure(bytes);
        // Panel p = groups 2p (rows 0–7) and 2p+1 (rows 8–15): quad q of the record is quad q of the first tile
        // (32 bytes) followed by quad q of the second, so the copy is by whole quads. A missing second group
        // (odd group count) stays zero, like the padded rows of a partial group (code 0, scale 0).
        for (int p = 0; p < Panels; p++)
            for (int half = 0; half < 2; half++)
            {
                int g = 2 * p + half;
                if (g >= w.Groups)
                {
                    for (int b = 0; b < Blocks; b++)
                    {
                        byte* rec = Record(p, b);
                        for (int q = 0; q < 8; q++) new Span<byte>(rec + q * 64 + half * 32, 32).Clear();
                        new Span<float>((float*)(rec + 512) + half * PackedQ8Weights.GroupRows, PackedQ8Weights.GroupRows).Clear();
                    }
                    continue;
                }
                for (int b = 0; b < Blocks; b++)
                {
                    byte* rec = Record(p, b);
                    byte* tile = w.Tile(g, b);
                    for (int q = 0; q < 8; q++) Buffer.MemoryCopy(tile + q * 32, rec + q * 64 + half * 32, 32, 32);
                    float* sc = (float*)(rec + 512) + half * PackedQ8Weights.GroupRows;
                    ushort* d = w.TileScales(g, b);
                    for (int r = 0; r < PackedQ8Weights.GroupRows; r++) sc[r] = (float)BitConverter.UInt16BitsToHalf(d[r]);
                }
            }
    }

    ~JitQ8Panels()
    {
        NativeMemory.AlignedFree(Pointer);
        GC.RemoveMemoryPressure(Bytes);
    }

    public int Rows { get; }
    public int Blocks { get; }
    public int Panels { get; }
    public byte* Pointer { get; }
    public long Bytes => (long)Panels * Blocks * RecordBytes;
    public long PanelStride => (long)Blocks * RecordBytes;
    public byte* Record(int panel, int block) => Pointer + ((long)panel * Blocks + block) * RecordBytes;

    private static readonly ConditionalWeakTable<PackedQ8Weights, Lazy<JitQ8Panels>> Cache = new();

    /// <summary>The panels of <paramref name="w"/>, built once (also when workers ask at the same time) and kept
    /// while the weights live.</summary>
    public static JitQ8Panels For(PackedQ8Weights w) =>
        Cache.GetValue(w, static x => new Lazy<JitQ8Panels>(() => new JitQ8Panels(x), LazyThreadSafetyMode.ExecutionAndPublication)).Value;
}

/// <summary>Arguments of the generated block-scaled kernel (rdi points here). Offsets are fixed in the code.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct JitQ8Args
{
    public nint X;        // 0: codes of the first token, block 0
    public long XStride;  // 8: bytes between tokens' codes
    public nint Dx;       // 16: activation scales of the first token (float, one per block)
    public nint Corr;     // 24: −128·Σx of the first token (int32, one per block)
    public long DStride;  // 32: bytes between tokens in Dx and Corr
    public nint W;        // 40: record (panel, block 0) of the first panel
    public long PStride;  // 48: bytes between panels
    public nint Y;        // 56: output of the first token, first panel's first row
    public long Ldy;      // 64: bytes between tokens' outputs
    public long Blocks;   // 72: 32-weight blocks
    public long Mask;     // 80: store mask of the last panel (its real rows)
}

/// <summary>
/// Generated 512-bit kernels of the Q8_0 × int8-activation product, exactly the <see cref="QKernels"/> definition:
/// per token t, row r and block b in order, p = Σ u8(w)·s8(x) − 128·Σx (vpdpbusd from the start value −128·Σx, exact
/// int32), acc ← fma(d[r,b]·dx[t,b], (float)p, acc) from acc = +0 (vmulps, vcvtdq2ps, vfmadd231ps: the same roundings
/// as the scalar reference). A variant covers 1–3 tokens × 1–4 panels (16 rows each): 12 int32 and 12 float
/// accumulators (zmm0–23), 4 weight vectors (zmm24–27, reused for the block's float scales), 2 activation broadcasts
/// (zmm28–29) and 2 scale products (zmm30–31).
/// </summary>
public static unsafe class JitQ8Gemm
{
    public const int MaxTokens = 3, MaxPanels = 4;

    private static readonly Lazy<ExecutableMemory?> Code = new(Generate);
    private static int[] _offsets = [];

    /// <summary>The CPU, OS and runtime can run the generated kernels (QUANTSHARP_JIT=0 not considered).</summary>
    public static bool IsSupported => GeneratedInt8Kernel.Instance.IsSupported && Code.Value is not null;

    /// <summary>Whether prompt processing uses the generated kernels by default: supported and QUANTSHARP_JIT not 0.</summary>
    public static bool IsEnabled { get; } = !CpuFeatures.DisabledByEnvironment && IsSupported;

    private static ExecutableMemory? Generate()
    {
        if (!GeneratedInt8Kernel.Instance.IsSupported) return null;
        var all = new List<byte>();
        var offsets = new int[MaxTokens * MaxPanels];
        for (int t = 1; t <= MaxTokens; t++)
            for (int c = 1; c <= MaxPanels; c++)
            {
                while (all.Count % 64 != 0) all.Add(0xCC);
                offsets[(t - 1) * MaxPanels + c - 1] = all.Count;
                all.AddRange(Emit(t, c));
            }
        try
        {
            var mem = new ExecutableMemory(all.ToArray());
            _offsets = offsets;
            return mem;
        }
        catch (QuantSharpException)
        {
            return null;
        }
    }

    private static int I(int t, int c) => t * MaxPanels + c;
    private static int F(int t, int c) => 12 + t * MaxPanels + c;

    /// <summary>
    /// Code for <paramref name="tokens"/> tokens × <paramref name="panels"/> panels over all blocks. Registers: r8 codes
    /// of token 0 (tokens 1, 2 at +r9, +2·r9), rbx/r12 Dx/Corr of token 0 (tokens at +rcx, +2·rcx), r10 panel 0's
    /// record (panels at +r11, +2·r11, +r15 = 3·r11), rbp the block counter. Per block: int accumulators from Corr,
    /// 8 quads of vpdpbusd, then the float step per token and panel.
    /// </summary>
    internal static byte[] Emit(int tokens, int panels)
    {
        if (tokens is < 1 or > MaxTokens || panels is < 1 or > MaxPanels)
            throw new QuantSharpException($"Q8_0 block kernel: {tokens}×{panels} is outside 1–{MaxTokens} × 1–{MaxPanels}");
        var a = new X64Assembler();
        Gp[] saved = [Gp.Rbx, Gp.Rbp, Gp.R12, Gp.R13, Gp.R14, Gp.R15];
        foreach (var r in saved) a.Push(r);
        a.Mov(Gp.R8, Mem.At(Gp.Rdi, 0));
        a.Mov(Gp.R9, Mem.At(Gp.Rdi, 8));
        a.Mov(Gp.Rbx, Mem.At(Gp.Rdi, 16));
        a.Mov(Gp.R12, Mem.At(Gp.Rdi, 24));
        a.Mov(Gp.Rcx, Mem.At(Gp.Rdi, 32));
        a.Mov(Gp.R10, Mem.At(Gp.Rdi, 40));
        a.Mov(Gp.R11, Mem.At(Gp.Rdi, 48));
        a.Lea(Gp.R15, Mem.At(Gp.R11, Gp.R11, 2));
        a.Lea(Gp.R14, Mem.At(Gp.R9, Gp.R9, 2));
        a.Lea(Gp.R13, Mem.At(Gp.Rcx, Gp.Rcx, 2));
        a.Mov(Gp.Rbp, Mem.At(Gp.Rdi, 72));
        a.Mov(Gp.Rax, Mem.At(Gp.Rdi, 80));
        a.KmovwFromGp(1, Gp.Rax);
        for (int t = 0; t < tokens; t++)
            for (int c = 0; c < panels; c++) a.Vpxord(F(t, c), F(t, c), F(t, c));
        Mem Tok(Gp b, int t, int disp) => t switch { 0 => Mem.At(b, disp), 3 => Mem.At(b, Gp.R14, 1, disp), _ => Mem.At(b, Gp.R9, t, disp) };
        Mem Dm(Gp b, int t) => t switch { 0 => Mem.At(b), 3 => Mem.At(b, Gp.R13, 1), _ => Mem.At(b, Gp.Rcx, t) };
        Mem Wm(int c, int disp) => c switch
        {
            0 => Mem.At(Gp.R10, disp),
            1 => Mem.At(Gp.R10, Gp.R11, 1, disp),
            2 => Mem.At(Gp.R10, Gp.R11, 2, disp),
            _ => Mem.At(Gp.R10, Gp.R15, 1, disp),
        };
        var lk = new Label();
        a.Bind(lk);
        for (int t = 0; t < tokens; t++)
            for (int c = 0; c < panels; c++) a.Vpbroadcastd(I(t, c), Dm(Gp.R12, t));
        for (int q = 0; q < 8; q++)
        {
            for (int c = 0; c < panels; c++) a.Vmovdqu32(24 + c, Wm(c, 64 * q));
            for (int t = 0; t < tokens; t++)
            {
                int bc = 28 + (t & 1);
                a.Vpbroadcastd(bc, Tok(Gp.R8, t, 4 * q));
                for (int c = 0; c < panels; c++) a.Vpdpbusd(I(t, c), 24 + c, bc);
            }
        }
        for (int c = 0; c < panels; c++) a.Vmovdqu32(24 + c, Wm(c, 512));
        for (int t = 0; t < tokens; t++)
            for (int c = 0; c < panels; c++)
            {
                int s = 30 + (c & 1);
                a.Vmulps(s, 24 + c, Dm(Gp.Rbx, t), broadcast: true);
                a.Vcvtdq2ps(I(t, c), I(t, c));
                a.Vfmadd231ps(F(t, c), s, I(t, c));
            }
        a.Add(Gp.R8, 32);
        a.Add(Gp.R10, JitQ8Panels.RecordBytes);
        a.Add(Gp.Rbx, 4);
        a.Add(Gp.R12, 4);
        a.Dec(Gp.Rbp);
        a.J(Cond.Ne, lk);
        a.Mov(Gp.Rsi, Mem.At(Gp.Rdi, 56));
        a.Mov(Gp.Rdx, Mem.At(Gp.Rdi, 64));
        for (int t = 0; t < tokens; t++)
        {
            for (int c = 0; c < panels; c++)
                a.Vmovdqu32(Mem.At(Gp.Rsi, c * 64), F(t, c), c == panels - 1 ? 1 : 0);
            if (t < tokens - 1) a.Add(Gp.Rsi, Gp.Rdx);
        }
        a.Vzeroupper();
        for (int i = saved.Length - 1; i >= 0; i--) a.Pop(saved[i]);
        a.Ret();
        return a.ToArray();
    }

    [ThreadStatic] private static int[]? _corr;

    /// <summary>
    /// Y[t, r] → y[t·ldy + r] for tokens [t0, t1) and the rows of panels [p0, p1) (16 rows each; the last panel's
    /// rows past the matrix are not written). Same result as <see cref="QKernels.Gemm"/> on the source weights.
    /// </summary>
    public static void Gemm(JitQ8Panels w, Q8Batch x, int t0, int t1, float* y, int ldy, int p0, int p1)
    {
        var code = Code.Value ?? throw new QuantSharpException("Q8_0 block kernel: generated code is not supported on this machine");
        if (x.Blocks != w.Blocks) throw new ArgumentException($"activation has {x.Blocks} blocks, the weight rows {w.Blocks}");
        if (t1 > x.Capacity || t0 < 0 || p0 < 0 || p1 > w.Panels) throw new ArgumentOutOfRangeException(nameof(t1));
        int n = t1 - t0, nb = w.Blocks;
        if (n <= 0 || p1 <= p0) return;
        var corr = _corr is { } c0 && c0.Length >= n * nb ? c0 : (_corr = new int[Math.Max(n * nb, 1024)]);
        var sums = x.Sums;
        for (int i = 0; i < n * nb; i++) corr[i] = -128 * sums[t0 * nb + i];
        nint entry = code.Address;
        fixed (float* dx = &x.D[t0 * nb])
        fixed (int* cp = corr)
        {
            var args = new JitQ8Args
            {
                XStride = x.Stride,
                DStride = (long)nb * 4,
                PStride = w.PanelStride,
                Ldy = (long)ldy * 4,
                Blocks = nb,
            };
            for (int pg = p0; pg < p1; pg += MaxPanels)
            {
                int panels = Math.Min(MaxPanels, p1 - pg);
                int lastRows = Math.Min(JitQ8Panels.PanelRows, w.Rows - (pg + panels - 1) * JitQ8Panels.PanelRows);
                args.Mask = (1 << lastRows) - 1;
                args.W = (nint)w.Record(pg, 0);
                for (int t = 0; t < n; t += MaxTokens)
                {
                    int tokens = Math.Min(MaxTokens, n - t);
                    args.X = (nint)x.Token(t0 + t);
                    args.Dx = (nint)(dx + (long)t * nb);
                    args.Corr = (nint)(cp + (long)t * nb);
                    args.Y = (nint)(y + (long)(t0 + t) * ldy + pg * JitQ8Panels.PanelRows);
                    ((delegate* unmanaged<JitQ8Args*, void>)(entry + _offsets[(tokens - 1) * MaxPanels + panels - 1]))(&args);
                }
            }
        }
        GC.KeepAlive(w);
        GC.KeepAlive(x);
    }
}
