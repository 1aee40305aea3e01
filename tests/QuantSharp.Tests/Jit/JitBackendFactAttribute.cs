using QuantSharp.Runtime.Kernels.Jit;

namespace QuantSharp.Tests.Jit;

/// <summary>
/// A fact that runs only where the CPU and OS support the generated backend; elsewhere it is reported as skipped
/// with the reason (the AMX kernel is then still checked by AmxKernelEmulationTests on an interpreter).
/// </summary>
public sealed class JitBackendFactAttribute : FactAttribute
{
    public JitBackendFactAttribute(JitBackend backend)
    {
        bool available = backend switch
        {
            JitBackend.Amx => CpuFeatures.HasAmx,
            JitBackend.Avx512Vnni => CpuFeatures.HasAvx512Vnni,
            _ => false,
        };
        if (!available)
            Skip = $"this CPU/OS does not offer {backend} (CPUID/XCR0), so generated {backend} code cannot run here";
    }
}
