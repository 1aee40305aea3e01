namespace QuantSharp.Runtime;

/// <summary>
/// Splits [0, count) into contiguous chunks run on up to <c>threads</c> workers. Chunk boundaries depend only on
/// count, threads and minChunk, and each chunk writes its own outputs, so results do not depend on scheduling.
/// </summary>
public static class Parallelism
{
    public static void For(int threads, int count, int minChunk, Action<int, int> body)
    {
        if (count <= 0) return;
        int chunks = Math.Min(Math.Max(threads, 1), Math.Max(1, count / Math.Max(minChunk, 1)));
        if (chunks <= 1)
        {
            body(0, count);
            return;
        }
        // More chunks than threads evens out uneven work; boundaries stay deterministic.
        int pieces = Math.Min(count, chunks * 4);
        Parallel.For(0, pieces, new ParallelOptions { MaxDegreeOfParallelism = chunks }, p =>
        {
            int start = (int)((long)count * p / pieces);
            int end = (int)((long)count * (p + 1) / pieces);
            if (end > start) body(start, end);
        });
    }
}
