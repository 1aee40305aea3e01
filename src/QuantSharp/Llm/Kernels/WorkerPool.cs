namespace QuantSharp.Llm.Kernels;

/// <summary>A unit of parallel work: <see cref="Run"/> is called once for every chunk index.</summary>
internal abstract class PoolJob
{
    public abstract void Run(int chunk);
}

/// <summary>
/// Persistent workers for the decoder's many short parallel sections (about 100 per generated token): the caller
/// runs chunks too, workers claim chunk indices with an atomic counter, and between sections they spin briefly before
/// sleeping, so a hand-off costs well under the microseconds Parallel.For needs. Which thread runs a chunk does not
/// matter: chunks write disjoint outputs with a fixed computation.
/// </summary>
internal sealed class WorkerPool
{
    private readonly Thread[] _workers;
    private readonly SemaphoreSlim _wake = new(0);
    private long _generation;

    public WorkerPool(int threads)
    {
        Threads = Math.Max(1, threads);
        _workers = new Thread[Threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new Thread(Work) { IsBackground = true, Name = $"quantsharp-llm-{i + 1}" };
            _workers[i].Start();
        }
    }

    public int Threads { get; }

    private static readonly Dictionary<int, WorkerPool> Shared = new();

    /// <summary>One pool per thread count for the whole process (workers are background threads).</summary>
    public static WorkerPool For(int threads)
    {
        lock (Shared)
        {
            if (!Shared.TryGetValue(threads, out var p)) Shared[threads] = p = new WorkerPool(threads);
            return p;
        }
    }

    /// <summary>One parallel section: its own claim and completion counters, so a late worker can only drain its section.</summary>
    private sealed class Section(PoolJob job, int chunks)
    {
        public readonly PoolJob Job = job;
        public readonly int Chunks = chunks;
        public int Next, Pending = chunks;
        public Exception? Error;

        public void Drain()
        {
            while (true)
            {
                int c = Interlocked.Increment(ref Next) - 1;
                if (c >= Chunks) return;
                try
                {
                    Job.Run(c);
                }
                catch (Exception e)
                {
                    Error ??= e;
                }
                Interlocked.Decrement(ref Pending);
            }
        }
    }

    private Section? _current;
    private int _sleeping;

    /// <summary>Runs job.Run(0 … chunks−1) on the caller and the workers; returns when all are done.</summary>
    public void Run(PoolJob job, int chunks)
    {
        if (chunks <= 0) return;
        if (Threads == 1 || chunks == 1)
        {
            for (int c = 0; c < chunks; c++) job.Run(c);
            return;
        }
        lock (this)
        {
            var sec = new Section(job, chunks);
            Volatile.Write(ref _current, sec);
            Interlocked.Increment(ref _generation);
            if (Volatile.Read(ref _sleeping) > 0) _wake.Release(_workers.Length);
            sec.Drain();
            var spin = new SpinWait();
            while (Volatile.Read(ref sec.Pending) > 0) spin.SpinOnce(-1);
            if (sec.Error is { } e) throw new AggregateException(e);
        }
    }

    private void Work()
    {
        long seen = 0;
        while (true)
        {
            // Spin about a millisecond for the next section (they follow each other closely while decoding), then
            // sleep until woken; a sleeping worker re-checks every 100 ms without spinning again.
            var spin = new SpinWait();
            long start = Environment.TickCount64;
            while (Volatile.Read(ref _generation) == seen && (spin.Count <= 100 || Environment.TickCount64 - start <= 1)) spin.SpinOnce(-1);
            while (Volatile.Read(ref _generation) == seen)
            {
                Interlocked.Increment(ref _sleeping);
                if (Volatile.Read(ref _generation) == seen) _wake.Wait(100);
                Interlocked.Decrement(ref _sleeping);
            }
            seen = Volatile.Read(ref _generation);
            Volatile.Read(ref _current)?.Drain();
        }
    }
}
