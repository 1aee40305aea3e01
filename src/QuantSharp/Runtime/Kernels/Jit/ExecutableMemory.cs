using System.Runtime.InteropServices;

namespace QuantSharp.Runtime.Kernels.Jit;

/// <summary>
/// A block of generated machine code under W^X: pages are mapped read+write, the code is copied in, then the
/// protection is switched to read+execute. The pages are never writable and executable at the same time.
/// Linux x64 uses libc mmap/mprotect/munmap; Windows uses VirtualAlloc/VirtualProtect/VirtualFree.
/// </summary>
public sealed unsafe class ExecutableMemory : IDisposable
{
    private byte* _address;
    private readonly nuint _size;

    /// <summary>Start of the code; valid until <see cref="Dispose"/>.</summary>
    public IntPtr Address => _address == null ? throw new ObjectDisposedException(nameof(ExecutableMemory)) : (IntPtr)_address;

    public int Length { get; }

    /// <summary>Whether this process can map executable memory here (x64 Linux or x64 Windows).</summary>
    public static bool IsSupported =>
        RuntimeInformation.ProcessArchitecture == Architecture.X64 && (OperatingSystem.IsLinux() || OperatingSystem.IsWindows());

    public ExecutableMemory(ReadOnlySpan<byte> code)
    {
        if (!IsSupported) throw new QuantSharpException("generated code: executable memory needs x64 Linux or Windows");
        if (code.Length == 0) throw new QuantSharpException("generated code: empty code block");
        Length = code.Length;
        const nuint page = 4096;
        _size = ((nuint)code.Length + page - 1) / page * page;
        if (OperatingSystem.IsWindows())
        {
            _address = (byte*)Win.VirtualAlloc(IntPtr.Zero, _size, Win.MemCommit | Win.MemReserve, Win.PageReadWrite);
            if (_address == null) throw new QuantSharpException($"generated code: VirtualAlloc failed (error {Marshal.GetLastPInvokeError()})");
            code.CopyTo(new Span<byte>(_address, code.Length));
            if (!Win.VirtualProtect((IntPtr)_address, _size, Win.PageExecuteRead, out _))
            {
                int err = Marshal.GetLastPInvokeError();
                Win.VirtualFree((IntPtr)_address, 0, Win.MemRelease);
                _address = null;
                throw new QuantSharpException($"generated code: VirtualProtect failed (error {err})");
            }
            Win.FlushInstructionCache(Win.GetCurrentProcess(), (IntPtr)_address, _size);
        }
        else
        {
            var p = Libc.mmap(IntPtr.Zero, _size, Libc.ProtRead | Libc.ProtWrite, Libc.MapPrivate | Libc.MapAnonymous, -1, 0);
            if (p == Libc.MapFailed) throw new QuantSharpException($"generated code: mmap failed (errno {Marshal.GetLastPInvokeError()})");
            _address = (byte*)p;
            code.CopyTo(new Span<byte>(_address, code.Length));
            if (Libc.mprotect(p, _size, Libc.ProtRead | Libc.ProtExec) != 0)
            {
                int err = Marshal.GetLastPInvokeError();
                Libc.munmap(p, _size);
                _address = null;
                throw new QuantSharpException($"generated code: mprotect to read+execute failed (errno {err})");
            }
        }
    }

    public void Dispose()
    {
        if (_address == null) return;
        if (OperatingSystem.IsWindows()) Win.VirtualFree((IntPtr)_address, 0, Win.MemRelease);
        else Libc.munmap((IntPtr)_address, _size);
        _address = null;
        GC.SuppressFinalize(this);
    }

    ~ExecutableMemory()
    {
        if (_address == null) return;
        if (OperatingSystem.IsWindows()) Win.VirtualFree((IntPtr)_address, 0, Win.MemRelease);
        else Libc.munmap((IntPtr)_address, _size);
        _address = null;
    }

    internal static class Libc
    {
        public const int ProtRead = 1, ProtWrite = 2, ProtExec = 4;
        public const int MapPrivate = 0x02, MapAnonymous = 0x20;
        public static readonly IntPtr MapFailed = new(-1);

        [DllImport("libc", SetLastError = true)]
        public static extern IntPtr mmap(IntPtr addr, nuint length, int prot, int flags, int fd, nint offset);

        [DllImport("libc", SetLastError = true)]
        public static extern int mprotect(IntPtr addr, nuint length, int prot);

        [DllImport("libc", SetLastError = true)]
        public static extern int munmap(IntPtr addr, nuint length);

        /// <summary>syscall(number, a1, a2): used for arch_prctl (158 on x86-64).</summary>
        [DllImport("libc", SetLastError = true)]
        public static extern long syscall(long number, long a1, long a2);
    }

    private static class Win
    {
        public const uint MemCommit = 0x1000, MemReserve = 0x2000, MemRelease = 0x8000;
        public const uint PageReadWrite = 0x04, PageExecuteRead = 0x20;

        [DllImport("kernel32", SetLastError = true)]
        public static extern IntPtr VirtualAlloc(IntPtr address, nuint size, uint type, uint protect);

        [DllImport("kernel32", SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        public static extern bool VirtualProtect(IntPtr address, nuint size, uint newProtect, out uint oldProtect);

        [DllImport("kernel32", SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        public static extern bool VirtualFree(IntPtr address, nuint size, uint type);

        [DllImport("kernel32")]
        public static extern IntPtr GetCurrentProcess();

        [DllImport("kernel32", SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        public static extern bool FlushInstructionCache(IntPtr process, IntPtr address, nuint size);
    }
}
