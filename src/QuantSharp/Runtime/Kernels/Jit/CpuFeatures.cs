using System.Runtime.Intrinsics.X86;

namespace QuantSharp.Runtime.Kernels.Jit;

/// <summary>Which generated-code kernels this process can run.</summary>
public enum JitBackend
{
    /// <summary>No generated code: callers use the managed kernels.</summary>
    None = 0,
    /// <summary>512-bit vpdpbusd (AVX512-VNNI) micro-kernel.</summary>
    Avx512Vnni = 1,
    /// <summary>AMX-INT8 tiles (tdpbssd/tdpbusd).</summary>
    Amx = 2,
}

/// <summary>
/// CPU and OS support for the generated kernels. CPUID leaf 7 subleaf 0: EBX bit 16 AVX512F, bit 30 AVX512BW;
/// ECX bit 11 AVX512-VNNI; EDX bit 24 AMX-TILE, bit 25 AMX-INT8. The OS must enable the register state in XCR0
/// (bits 5–7 opmask/ZMM, bits 17/18 XTILECFG/XTILEDATA); on Linux the process must also ask for the 8 KiB tile data
/// state with arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) before the first tile instruction.
/// </summary>
public static unsafe class CpuFeatures
{
    private const long SysArchPrctl = 158;
    private const long ArchGetXcompPerm = 0x1022, ArchReqXcompPerm = 0x1023;
    private const int XfeatureXtiledata = 18;

    /// <summary>The environment variable that turns generated code off when set to 0 (or "false"/"off").</summary>
    public const string EnvironmentVariable = "QUANTSHARP_JIT";

    private static readonly Lazy<(bool Vnni, bool AmxCpu, ulong Xcr0)> Probe = new(ProbeCpu);
    private static readonly Lazy<bool> AmxPermission = new(RequestAmxPermission);

    /// <summary>True when the given environment value turns generated code off ("0", "false", "off", "no").</summary>
    public static bool IsDisabledValue(string? value) =>
        value is not null && value.Trim().ToLowerInvariant() is "0" or "false" or "off" or "no";

    /// <summary>Whether QUANTSHARP_JIT turned generated code off when the process started.</summary>
    // Read once per process: kernels chosen while packing weights and while multiplying must not differ because
    // the variable changed in between.
    public static bool DisabledByEnvironment { get; } = IsDisabledValue(Environment.GetEnvironmentVariable(EnvironmentVariable));

    /// <summary>AVX512F+BW+VNNI present and the OS saves ZMM/opmask state.</summary>
    public static bool HasAvx512Vnni => ExecutableMemory.IsSupported && Probe.Value.Vnni;

    /// <summary>AMX-TILE+AMX-INT8 present, XCR0 enables tile state and (on Linux) the process got tile permission.</summary>
    public static bool HasAmx => ExecutableMemory.IsSupported && Probe.Value.AmxCpu && (Probe.Value.Xcr0 & (3UL << 17)) == (3UL << 17)
        && AmxPermission.Value;

    /// <summary>XCR0 as read by xgetbv (0 when unavailable).</summary>
    public static ulong Xcr0 => Probe.Value.Xcr0;

    /// <summary>The best backend allowed by the hardware, the option and the environment.</summary>
    public static JitBackend Best(bool allowGenerated = true)
    {
        if (!allowGenerated || DisabledByEnvironment) return JitBackend.None;
        if (HasAmx) return JitBackend.Amx;
        if (HasAvx512Vnni) return JitBackend.Avx512Vnni;
        return JitBackend.None;
    }

    private static (bool, bool, ulong) ProbeCpu()
    {
        if (!X86Base.IsSupported || !ExecutableMemory.IsSupported) return (false, false, 0);
        var (_, _, ecx1, _) = X86Base.CpuId(1, 0);
        bool osxsave = (ecx1 & (1 << 27)) != 0;
        var (maxLeaf, _, _, _) = X86Base.CpuId(0, 0);
        if (!osxsave || maxLeaf < 7) return (false, false, 0);
        var (_, ebx7, ecx7, edx7) = X86Base.CpuId(7, 0);
        bool avx512f = (ebx7 & (1 << 16)) != 0, avx512bw = (ebx7 & (1 << 30)) != 0, vnni = (ecx7 & (1 << 11)) != 0;
        bool amxTile = (edx7 & (1 << 24)) != 0, amxInt8 = (edx7 & (1 << 25)) != 0;
        ulong xcr0 = ReadXcr0();
        // XCR0 bits 1, 2 (SSE/AVX) and 5, 6, 7 (opmask, ZMM_Hi256, Hi16_ZMM) must all be enabled for 512-bit code.
        bool zmmState = (xcr0 & 0xE6) == 0xE6;
        return (avx512f && avx512bw && vnni && zmmState, amxTile && amxInt8, xcr0);
    }

    /// <summary>XCR0 through a generated stub: xor ecx, ecx; xgetbv; shl rdx, 32; add rax, rdx (xgetbv zero-extends eax, so add acts as or); ret.</summary>
    private static ulong ReadXcr0()
    {
        try
        {
            var asm = new X64Assembler();
            asm.Xor32(Gp.Rcx, Gp.Rcx);
            asm.Xgetbv();
            asm.Shl(Gp.Rdx, 32);
            asm.Add(Gp.Rax, Gp.Rdx);
            asm.Ret();
            using var mem = new ExecutableMemory(asm.ToArray());
            var fn = (delegate* unmanaged<ulong>)mem.Address;
            return fn();
        }
        catch (QuantSharpException)
        {
            return 0;
        }
    }

    /// <summary>
    /// Linux: ask for the XTILEDATA state (permission is per process, granted once); then confirm with
    /// ARCH_GET_XCOMP_PERM. Windows enables the state for every process the OS supports it in.
    /// </summary>
    private static bool RequestAmxPermission()
    {
        if (!OperatingSystem.IsLinux()) return OperatingSystem.IsWindows();
        try
        {
            ExecutableMemory.Libc.syscall(SysArchPrctl, ArchReqXcompPerm, XfeatureXtiledata);
            ulong granted = 0;
            long rc = ExecutableMemory.Libc.syscall(SysArchPrctl, ArchGetXcompPerm, (long)(nint)(&granted));
            return rc == 0 && (granted & (1UL << XfeatureXtiledata)) != 0;
        }
        catch (DllNotFoundException)
        {
            return false;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Asks for tile permission from the calling thread (harmless when already granted); false without AMX.</summary>
    public static bool EnsureAmxPermission() => HasAmx && RequestAmxPermission();
}
