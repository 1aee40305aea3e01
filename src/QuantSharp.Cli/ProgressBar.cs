using System.Diagnostics;

namespace QuantSharp.Cli;

/// <summary>
/// A one-line progress bar redrawn in place with '\r' on an interactive stderr. Redraws at most every 100 ms so
/// that it costs nothing measurable; the line is cleared when disposed.
/// </summary>
internal sealed class ProgressBar(TextWriter w, int total) : IDisposable
{
    private const int Width = 30;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _lastDrawMs = -1000;
    private bool _drawn;

    public void Report(int done)
    {
        long now = _clock.ElapsedMilliseconds;
        if (now - _lastDrawMs < 100 && done < total) return;
        _lastDrawMs = now;
        int filled = total == 0 ? Width : (int)((long)Width * done / total);
        double rate = now > 0 ? done * 1000.0 / now : 0;
        w.Write($"\r[{new string('#', filled)}{new string('.', Width - filled)}] {done}/{total} {rate:0} samples/s ");
        w.Flush();
        _drawn = true;
    }

    public void Dispose()
    {
        if (!_drawn) return;
        w.Write("\r" + new string(' ', Width + 48) + "\r");
        w.Flush();
    }
}
