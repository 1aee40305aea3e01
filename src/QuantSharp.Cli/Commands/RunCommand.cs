using System.Globalization;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Cli.Commands;

/// <summary>`quantsharp run MODEL --input NAME=FILE … [-o OUT.npz]`: one inference on tensors read from files.</summary>
public sealed class RunCommand : Command
{
    public override string Name => "run";
    public override string Summary => "run a model once on input tensors from .npy/.pb files and save the outputs";
    public override string Usage => "run MODEL --input NAME=FILE [--input NAME=FILE ...] [-o OUT.npz|OUT.npy] [--threads T]";
    public override string Details =>
        "Input files are NumPy .npy or ONNX TensorProto .pb. NAME= may be left out for a single-input model, and for\n" +
        ".pb files that carry the input's name. The output file (.npz with every output, or .npy when the model has\n" +
        "one output) is written atomically: on any error no file is left. Without -o the outputs are summarised.";

    public override IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("--input", "-i", true, true, "an input tensor file, NAME=FILE (repeat per input)", "NAME=FILE"),
        new("--output", "-o", true, false, "write the outputs to this .npz (or .npy) file", "FILE"),
        new("--threads", "-t", true, false, "threads per operator (default: all cores)", "T"),
    ];

    public override int Execute(CliArguments args, CliContext ctx)
    {
        string modelPath = args.SinglePositional("MODEL file");
        string? outPath = args.Value("--output");
        if (outPath is not null)
        {
            string ext = Path.GetExtension(outPath).ToLowerInvariant();
            if (ext is not (".npz" or ".npy")) throw new UsageException($"output '{outPath}' must end in .npz or .npy");
        }
        int threads = args.Int("--threads", Environment.ProcessorCount, 1, 1024);
        if (args.Values("--input").Count == 0) throw new UsageException("'run' needs at least one --input NAME=FILE");

        // Read every input before loading the model, so that file errors come first and cheaply.
        var given = new List<(string? Name, string File, Tensor Tensor)>();
        foreach (var spec in args.Values("--input"))
        {
            int eq = spec.IndexOf('=');
            string? name = eq > 0 ? spec[..eq] : null;
            string file = eq > 0 ? spec[(eq + 1)..] : spec;
            if (eq == 0 || file.Length == 0) throw new UsageException($"--input '{spec}' must be NAME=FILE");
            var (storedName, tensor) = TensorFiles.Read(file);
            given.Add((name ?? storedName, file, tensor));
        }

        var model = ModelFiles.Load(modelPath);
        using var session = new InferenceSession(model, new SessionOptions { IntraOpThreads = threads });
        var feeds = AssignInputs(session, given);
        var outputs = session.Run(feeds);

        if (outPath is not null)
        {
            if (Path.GetExtension(outPath).Equals(".npy", StringComparison.OrdinalIgnoreCase) && outputs.Count != 1)
                throw new QuantSharpException($"the model has {outputs.Count} outputs ({string.Join(", ", outputs.Keys)}); write them to an .npz file");
            TensorFiles.Write(outPath, outputs);
        }
        foreach (var (name, t) in outputs) ctx.Out.WriteLine($"{name}  {t}  {Describe(t)}");
        if (outPath is not null) ctx.Out.WriteLine($"wrote {outputs.Count} output(s) to {outPath}");
        return Program.ExitOk;
    }

    /// <summary>
    /// Names each given tensor: its explicit or stored name when the model has such an input; a single unnamed
    /// tensor goes to a single-input model. Unknown names are errors listing the model's inputs.
    /// </summary>
    private static Dictionary<string, Tensor> AssignInputs(InferenceSession session, List<(string? Name, string File, Tensor Tensor)> given)
    {
        var inputs = session.Inputs;
        string list = string.Join(", ", inputs.Select(v => $"'{v.Name}' {v.Type?.ToString() ?? "?"}"));
        var feeds = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, file, tensor) in given)
        {
            string target;
            if (name is not null && inputs.Any(v => v.Name == name)) target = name;
            else if (name is null && given.Count == 1 && inputs.Count == 1) target = inputs[0].Name;
            else if (name is null) throw new QuantSharpException($"input file '{file}' has no input name; write NAME={file} (the model's inputs are: {list})");
            else throw new InvalidInputException($"model has no input named '{name}' (from '{file}'); its inputs are: {list}");
            if (!feeds.TryAdd(target, tensor)) throw new QuantSharpException($"input '{target}' was given more than once");
        }
        var missing = inputs.Where(v => !feeds.ContainsKey(v.Name)).Select(v => $"'{v.Name}' {v.Type?.ToString() ?? "?"}").ToList();
        if (missing.Count > 0) throw new InvalidInputException($"missing input(s) {string.Join(", ", missing)}");
        return feeds;
    }

    /// <summary>A one-line summary: the first values, and for float outputs min/max and the argmax.</summary>
    private static string Describe(Tensor t)
    {
        if (t.Length == 0) return "(empty)";
        var inv = CultureInfo.InvariantCulture;
        int shown = Math.Min(t.Length, 6);
        string first;
        if (t is Tensor<string> s) first = string.Join(", ", s.Data.Take(shown).Select(x => $"\"{x}\""));
        else first = string.Join(", ", Enumerable.Range(0, shown).Select(i => t.GetDouble(i).ToString("G6", inv)));
        if (t.Length > shown) first += ", …";
        if (!DataTypes.IsFloatingPoint(t.DataType)) return $"[{first}]";
        double min = double.PositiveInfinity, max = double.NegativeInfinity;
        int arg = 0;
        for (int i = 0; i < t.Length; i++)
        {
            double v = t.GetDouble(i);
            if (v < min) min = v;
            if (v > max) { max = v; arg = i; }
        }
        return $"[{first}]  min {min.ToString("G6", inv)}  max {max.ToString("G6", inv)} at flat index {arg}";
    }
}
