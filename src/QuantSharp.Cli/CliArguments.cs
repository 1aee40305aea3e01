namespace QuantSharp.Cli;

/// <summary>A bad command line: unknown command or option, missing or malformed value. Exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>An option a command accepts. <see cref="TakesValue"/> options consume the next argument (or "=value").</summary>
public sealed record OptionSpec(string Name, string? Alias, bool TakesValue, bool Repeatable, string Help, string? ValueName = null);

/// <summary>
/// The parsed arguments of one command: positionals in order and option values by canonical name.
/// A value is taken verbatim after its option, so negative numbers ("--mean -1") work.
/// </summary>
public sealed class CliArguments
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly string _command;

    private CliArguments(string command) => _command = command;

    public List<string> Positionals { get; } = [];

    public static CliArguments Parse(string command, IReadOnlyList<string> args, IReadOnlyList<OptionSpec> specs)
    {
        var r = new CliArguments(command);
        bool onlyPositionals = false;
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (onlyPositionals || a == "-" || !a.StartsWith('-') || IsNumber(a))
            {
                r.Positionals.Add(a);
                continue;
            }
            if (a == "--")
            {
                onlyPositionals = true;
                continue;
            }
            string name = a;
            string? inline = null;
            int eq = a.IndexOf('=');
            if (a.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                name = a[..eq];
                inline = a[(eq + 1)..];
            }
            var spec = specs.FirstOrDefault(s => s.Name == name || s.Alias == name)
                ?? throw new UsageException($"unknown option '{name}' for '{command}' (see 'quantsharp {command} --help')");
            string value;
            if (spec.TakesValue)
            {
                if (inline is not null) value = inline;
                else if (i + 1 < args.Count) value = args[++i];
                else throw new UsageException($"option {spec.Name} needs a value ({spec.ValueName ?? "VALUE"})");
            }
            else
            {
                if (inline is not null) throw new UsageException($"option {spec.Name} takes no value");
                value = "true";
            }
            if (!r._values.TryGetValue(spec.Name, out var list)) r._values[spec.Name] = list = [];
            if (list.Count > 0 && !spec.Repeatable) throw new UsageException($"option {spec.Name} was given more than once");
            list.Add(value);
        }
        return r;
    }

    private static bool IsNumber(string a) => a.Length > 1 && a[0] == '-' && (char.IsDigit(a[1]) || a[1] == '.');

    public bool Has(string name) => _values.ContainsKey(name);

    public bool Flag(string name) => _values.ContainsKey(name);

    public string? Value(string name) => _values.TryGetValue(name, out var l) ? l[^1] : null;

    public IReadOnlyList<string> Values(string name) => _values.TryGetValue(name, out var l) ? l : [];

    /// <summary>The single positional argument named <paramref name="what"/>.</summary>
    public string SinglePositional(string what)
    {
        if (Positionals.Count == 0) throw new UsageException($"'{_command}' needs a {what} (see 'quantsharp {_command} --help')");
        if (Positionals.Count > 1)
            throw new UsageException($"'{_command}' takes one {what}, got {Positionals.Count} arguments: {string.Join(" ", Positionals)} (options start with --)");
        return Positionals[0];
    }

    public int Int(string name, int fallback, int min, int max)
    {
        var v = Value(name);
        if (v is null) return fallback;
        if (!int.TryParse(v, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int n) || n < min || n > max)
            throw new UsageException($"option {name} must be an integer in [{min}, {max}], got '{v}'");
        return n;
    }

    /// <summary>A number, also written as a fraction "a/b" (e.g. 1/255).</summary>
    public static float ParseNumber(string option, string text)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        const System.Globalization.NumberStyles st = System.Globalization.NumberStyles.Float;
        int slash = text.IndexOf('/');
        double v;
        if (slash > 0)
        {
            if (!double.TryParse(text[..slash], st, inv, out double a) || !double.TryParse(text[(slash + 1)..], st, inv, out double b) || b == 0)
                throw new UsageException($"option {option}: '{text}' is not a number or a fraction like 1/255");
            v = a / b;
        }
        else if (!double.TryParse(text, st, inv, out v))
            throw new UsageException($"option {option}: '{text}' is not a number or a fraction like 1/255");
        if (!double.IsFinite(v)) throw new UsageException($"option {option}: '{text}' is not finite");
        return (float)v;
    }

    /// <summary>A comma-separated list of numbers (each may be a fraction), or null when the option is absent.</summary>
    public float[]? Numbers(string name)
    {
        var v = Value(name);
        if (v is null) return null;
        var parts = v.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Any(p => p.Length == 0)) throw new UsageException($"option {name}: empty item in '{v}'");
        return parts.Select(p => ParseNumber(name, p)).ToArray();
    }
}
