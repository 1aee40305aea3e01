using System.Reflection;
using QuantSharp.Cli.Commands;

namespace QuantSharp.Cli;

/// <summary>
/// The `quantsharp` command. <see cref="Run"/> is the whole program and can be called in-process (tests do):
/// errors caused by input print one line "quantsharp: error: …" and give exit code 1 (2 for usage errors);
/// stack traces only with --verbose.
/// </summary>
public static class Program
{
    public const int ExitOk = 0, ExitError = 1, ExitUsage = 2;

    internal static readonly OptionSpec[] GlobalOptions =
    [
        new("--verbose", "-v", false, false, "show stack traces and extra detail on errors"),
        new("--help", "-h", false, false, "show this help"),
    ];

    public static IReadOnlyList<Command> Commands { get; } = [new InspectCommand(), new RunCommand(), new EvalCommand(), new QuantizeCommand(), new DemoCommand(), new LlmCommand(), new BenchCommand()];

    public static int Main(string[] args)
    {
        Console.OutputEncoding = System.Text.Encoding.UTF8;
        using var stdout = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = false };
        int rc = Run(args, stdout, Console.Error, !Console.IsErrorRedirected);
        stdout.Flush();
        return rc;
    }

    public static string Version =>
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(Program).Assembly.GetName().Version?.ToString() ?? "0";

    /// <summary>Runs the command line and returns the exit code; never throws for bad input.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, bool stderrIsTerminal = false)
    {
        bool verbose = args.Contains("--verbose") || args.Contains("-v");
        try
        {
            return Dispatch(args, stdout, stderr, verbose, stderrIsTerminal);
        }
        catch (UsageException e)
        {
            WriteError(stderr, e, verbose);
            return ExitUsage;
        }
        catch (Exception e) when (IsInputError(e))
        {
            WriteError(stderr, e, verbose);
            return ExitError;
        }
        catch (Exception e)
        {
            // A bug rather than bad input: still one line by default, but say so.
            stderr.WriteLine($"quantsharp: error: internal error ({e.GetType().Name}): {OneLine(e.Message)}" +
                (verbose ? "" : " (run with --verbose for the stack trace)"));
            if (verbose) stderr.WriteLine(e);
            return ExitError;
        }
        finally
        {
            stdout.Flush();
            stderr.Flush();
        }
    }

    private static bool IsInputError(Exception e) => e is QuantSharpException or IOException or UnauthorizedAccessException
        or InvalidDataException
        || (e is AggregateException a && a.InnerExceptions.Count == 1 && IsInputError(a.InnerExceptions[0]));

    private static void WriteError(TextWriter stderr, Exception e, bool verbose)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } a) e = a.InnerExceptions[0];
        stderr.WriteLine($"quantsharp: error: {OneLine(e.Message)}");
        if (verbose) stderr.WriteLine(e);
    }

    /// <summary>Collapses a message onto one line.</summary>
    public static string OneLine(string s) =>
        string.Join(" ", s.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static int Dispatch(string[] args, TextWriter stdout, TextWriter stderr, bool verbose, bool stderrIsTerminal)
    {
        var rest = args.Where(a => a is not ("--verbose" or "-v")).ToList();
        if (rest.Count == 0)
        {
            WriteMainHelp(stderr);
            return ExitUsage;
        }
        string first = rest[0];
        if (first is "--version" or "version")
        {
            stdout.WriteLine($"quantsharp {Version}");
            return ExitOk;
        }
        if (first is "--help" or "-h" or "help")
        {
            if (rest.Count > 1 && first == "help")
            {
                var c = Find(rest[1]);
                c.WriteHelp(stdout);
            }
            else WriteMainHelp(stdout);
            return ExitOk;
        }
        if (first.StartsWith('-')) throw new UsageException($"unknown option '{first}' (expected a command: {string.Join(", ", Commands.Select(c => c.Name))})");
        var cmd = Find(first);
        var cmdArgs = rest.Skip(1).ToList();
        if (cmdArgs.Any(a => a is "--help" or "-h"))
        {
            cmd.WriteHelp(stdout);
            return ExitOk;
        }
        var parsed = CliArguments.Parse(cmd.Name, cmdArgs, cmd.Options);
        var ctx = new CliContext { Out = stdout, Error = stderr, Verbose = verbose, ErrorIsTerminal = stderrIsTerminal };
        return cmd.Execute(parsed, ctx);
    }

    private static Command Find(string name) => Commands.FirstOrDefault(c => c.Name == name)
        ?? throw new UsageException($"unknown command '{name}' (commands: {string.Join(", ", Commands.Select(c => c.Name))}; see 'quantsharp --help')");

    private static void WriteMainHelp(TextWriter w)
    {
        w.WriteLine($"quantsharp {Version}: inspect, run and evaluate ONNX models");
        w.WriteLine();
        w.WriteLine("usage: quantsharp COMMAND [options]");
        w.WriteLine();
        w.WriteLine("commands:");
        foreach (var c in Commands) w.WriteLine($"  {c.Name,-10} {c.Summary}");
        w.WriteLine();
        w.WriteLine("global options:");
        w.WriteLine("  --verbose, -v   show stack traces on errors");
        w.WriteLine("  --help, -h      help (also 'quantsharp COMMAND --help')");
        w.WriteLine("  --version       print the version");
    }
}
