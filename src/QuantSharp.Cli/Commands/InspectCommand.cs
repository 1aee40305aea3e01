using System.Text.Json;
using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Cli.Commands;

/// <summary>`quantsharp inspect MODEL`: what a model file contains, without running it.</summary>
public sealed class InspectCommand : Command
{
    public override string Name => "inspect";
    public override string Summary => "show a model's IR version, opsets, producer, inputs/outputs, operators and parameters";
    public override string Usage => "inspect MODEL [--json]";
    public override string Details =>
        "Shapes print symbolic dimensions by name and unknown ones as '?'. Parameter bytes are at stored precision\n" +
        "(int4 counts half a byte). Operators the runtime has no kernel for are listed as unsupported.";

    public override IReadOnlyList<OptionSpec> Options { get; } = [new("--json", null, false, false, "print one JSON object instead of text")];

    public override int Execute(CliArguments args, CliContext ctx)
    {
        string path = args.SinglePositional("MODEL file");
        var model = ModelFiles.Load(path);
        var info = ModelSummary.Of(model, path);
        if (args.Flag("--json")) info.WriteJson(ctx.Out);
        else info.WriteText(ctx.Out);
        return Program.ExitOk;
    }
}

/// <summary>The facts `inspect` reports, computed once and printed as text or JSON.</summary>
internal sealed class ModelSummary
{
    public required string Path { get; init; }
    public long FileBytes { get; init; }
    public long IrVersion { get; init; }
    public required IReadOnlyList<OpsetImport> Opsets { get; init; }
    public required string Producer { get; init; }
    public required string ProducerVersion { get; init; }
    public required string GraphName { get; init; }
    public required IReadOnlyList<(string Name, TensorTypeInfo? Type)> Inputs { get; init; }
    public required IReadOnlyList<(string Name, TensorTypeInfo? Type)> Outputs { get; init; }
    public int NodeCount { get; init; }
    /// <summary>(op, count), most frequent first; op is "domain:Op" outside the default domain.</summary>
    public required IReadOnlyList<(string Op, int Count)> OpHistogram { get; init; }
    public required IReadOnlyList<string> UnsupportedOps { get; init; }
    public int InitializerCount { get; init; }
    /// <summary>Per dtype: tensors, elements, bytes.</summary>
    public required IReadOnlyList<(DataType Type, int Tensors, long Elements, long Bytes)> Parameters { get; init; }
    public required IReadOnlyList<KeyValuePair<string, string>> Metadata { get; init; }

    public long TotalParameters => Parameters.Sum(p => p.Elements);
    public long TotalBytes => Parameters.Sum(p => p.Bytes);

    public static ModelSummary Of(Model model, string path)
    {
        var g = model.Graph;
        static string OpName(Node n) => n.Domain.Length == 0 ? n.OpType : $"{n.Domain}:{n.OpType}";
        var hist = g.Nodes.GroupBy(OpName).Select(x => (Op: x.Key, Count: x.Count()))
            .OrderByDescending(x => x.Count).ThenBy(x => x.Op, StringComparer.Ordinal).ToList();
        var unsupported = g.Nodes
            .Where(n => !OperatorRegistry.Default.IsSupported(n.Domain, n.OpType, OperatorRegistry.OpsetFor(model, n)))
            .Select(n => $"{OpName(n)} (opset {OperatorRegistry.OpsetFor(model, n)})").Distinct().Order(StringComparer.Ordinal).ToList();
        var pars = g.Initializers.GroupBy(v => v.Initializer!.DataType)
            .Select(x => (Type: x.Key, Tensors: x.Count(), Elements: x.Sum(v => (long)v.Initializer!.Length),
                Bytes: x.Sum(v => BytesOf(v.Initializer!))))
            .OrderByDescending(x => x.Bytes).ToList();
        return new ModelSummary
        {
            Path = path,
            FileBytes = File.Exists(path) ? new FileInfo(path).Length : 0,
            IrVersion = model.IrVersion,
            Opsets = model.OpsetImports.ToList(),
            Producer = model.ProducerName,
            ProducerVersion = model.ProducerVersion,
            GraphName = g.Name,
            Inputs = g.RuntimeInputs.Select(v => (v.Name, v.Type)).ToList(),
            Outputs = g.Outputs.Select(v => (v.Name, v.Type)).ToList(),
            NodeCount = g.Nodes.Count,
            OpHistogram = hist,
            UnsupportedOps = unsupported,
            InitializerCount = g.Initializers.Count,
            Parameters = pars,
            Metadata = model.Metadata.ToList(),
        };
    }

    private static long BytesOf(Tensor t)
    {
        if (t is Tensor<string> s) return s.Data.Sum(x => (long)System.Text.Encoding.UTF8.GetByteCount(x));
        return ((long)t.Length * DataTypes.BitsPerElement(t.DataType) + 7) / 8;
    }

    private static string Domain(string d) => d.Length == 0 ? "ai.onnx" : d;

    internal static string TypeText(TensorTypeInfo? t) => t?.ToString() ?? "(type not declared)";

    public void WriteText(TextWriter w)
    {
        w.WriteLine($"model:      {Path} ({Human(FileBytes)})");
        w.WriteLine($"ir_version: {IrVersion}");
        w.WriteLine($"opsets:     {(Opsets.Count == 0 ? "(none)" : string.Join(", ", Opsets.Select(o => $"{Domain(o.Domain)} {o.Version}")))}");
        w.WriteLine($"producer:   {(Producer.Length == 0 ? "(unknown)" : (Producer + " " + ProducerVersion).Trim())}");
        if (GraphName.Length > 0) w.WriteLine($"graph:      {GraphName}");
        foreach (var (k, v) in Metadata) w.WriteLine($"metadata:   {k} = {Program.OneLine(v)}");
        WriteValues(w, "inputs", Inputs);
        WriteValues(w, "outputs", Outputs);
        w.WriteLine($"operators ({NodeCount} nodes, {OpHistogram.Count} types):");
        int opWidth = OpHistogram.Count == 0 ? 0 : OpHistogram.Max(o => o.Op.Length);
        foreach (var (op, n) in OpHistogram) w.WriteLine($"  {op.PadRight(opWidth)}  {n,6}");
        if (UnsupportedOps.Count > 0) w.WriteLine($"unsupported by the runtime: {string.Join(", ", UnsupportedOps)}");
        w.WriteLine($"parameters: {TotalParameters:N0} in {InitializerCount} initializers, {Human(TotalBytes)}");
        foreach (var p in Parameters)
            w.WriteLine($"  {DataTypes.Name(p.Type),-10} {p.Elements,14:N0} elements  {p.Tensors,5} tensors  {Human(p.Bytes),10}");
    }

    private static void WriteValues(TextWriter w, string title, IReadOnlyList<(string Name, TensorTypeInfo? Type)> values)
    {
        w.WriteLine($"{title}:");
        int width = values.Count == 0 ? 0 : values.Max(v => v.Name.Length);
        foreach (var (name, type) in values) w.WriteLine($"  {name.PadRight(width)}  {TypeText(type)}");
    }

    internal static string Human(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.0} KiB",
        < 1024L * 1024 * 1024 => $"{bytes / (1024.0 * 1024):0.0} MiB",
        _ => $"{bytes / (1024.0 * 1024 * 1024):0.00} GiB",
    };

    public void WriteJson(TextWriter w)
    {
        using var ms = new MemoryStream();
        using (var j = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            j.WriteStartObject();
            j.WriteString("path", Path);
            j.WriteNumber("file_bytes", FileBytes);
            j.WriteNumber("ir_version", IrVersion);
            j.WriteStartObject("opsets");
            foreach (var o in Opsets) j.WriteNumber(Domain(o.Domain), o.Version);
            j.WriteEndObject();
            j.WriteString("producer_name", Producer);
            j.WriteString("producer_version", ProducerVersion);
            j.WriteString("graph_name", GraphName);
            j.WriteStartObject("metadata");
            foreach (var (k, v) in Metadata) j.WriteString(k, v);
            j.WriteEndObject();
            WriteValuesJson(j, "inputs", Inputs);
            WriteValuesJson(j, "outputs", Outputs);
            j.WriteNumber("nodes", NodeCount);
            j.WriteStartObject("ops");
            foreach (var (op, n) in OpHistogram) j.WriteNumber(op, n);
            j.WriteEndObject();
            j.WriteStartArray("unsupported_ops");
            foreach (var u in UnsupportedOps) j.WriteStringValue(u);
            j.WriteEndArray();
            j.WriteNumber("initializers", InitializerCount);
            j.WriteNumber("parameters", TotalParameters);
            j.WriteNumber("parameter_bytes", TotalBytes);
            j.WriteStartObject("parameters_by_dtype");
            foreach (var p in Parameters)
            {
                j.WriteStartObject(DataTypes.Name(p.Type));
                j.WriteNumber("tensors", p.Tensors);
                j.WriteNumber("elements", p.Elements);
                j.WriteNumber("bytes", p.Bytes);
                j.WriteEndObject();
            }
            j.WriteEndObject();
            j.WriteEndObject();
        }
        w.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
    }

    private static void WriteValuesJson(Utf8JsonWriter j, string title, IReadOnlyList<(string Name, TensorTypeInfo? Type)> values)
    {
        j.WriteStartArray(title);
        foreach (var (name, type) in values)
        {
            j.WriteStartObject();
            j.WriteString("name", name);
            j.WriteString("dtype", type is null ? null : DataTypes.Name(type.ElementType));
            if (type?.Shape is null) j.WriteNull("shape");
            else
            {
                j.WriteStartArray("shape");
                foreach (var d in type.Shape)
                {
                    if (d.Value is long v) j.WriteNumberValue(v);
                    else if (d.Symbol is not null) j.WriteStringValue(d.Symbol);
                    else j.WriteNullValue();
                }
                j.WriteEndArray();
            }
            j.WriteEndObject();
        }
        j.WriteEndArray();
    }
}
