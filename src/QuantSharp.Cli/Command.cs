namespace QuantSharp.Cli;

/// <summary>What a command writes to and how it was invoked.</summary>
public sealed class CliContext
{
    public required TextWriter Out { get; init; }
    public required TextWriter Error { get; init; }
    public bool Verbose { get; init; }

    /// <summary>Whether stderr is an interactive terminal (progress bars are drawn only then).</summary>
    public bool ErrorIsTerminal { get; init; }
}

/// <summary>One subcommand: its name, options and help, and the code that runs it.</summary>
public abstract class Command
{
    public abstract string Name { get; }
    public abstract string Summary { get; }
    /// <summary>Usage line(s) after "quantsharp", e.g. "inspect MODEL [--json]".</summary>
    public abstract string Usage { get; }
    /// <summary>Longer help shown by --help after the option list (may be empty).</summary>
    public virtual string Details => "";
    public abstract IReadOnlyList<OptionSpec> Options { get; }

    public abstract int Execute(CliArguments args, CliContext ctx);

    public void WriteHelp(TextWriter w)
    {
        w.WriteLine($"usage: quantsharp {Usage}");
        w.WriteLine();
        w.WriteLine(Summary);
        w.WriteLine();
        w.WriteLine("options:");
        foreach (var o in Options.Concat(Program.GlobalOptions))
        {
            string left = (o.Alias is null ? "" : o.Alias + ", ") + o.Name + (o.TakesValue ? " " + (o.ValueName ?? "VALUE") : "");
            w.WriteLine($"  {left,-28} {o.Help}");
        }
        if (Details.Length > 0)
        {
            w.WriteLine();
            w.WriteLine(Details.TrimEnd());
        }
    }
}
