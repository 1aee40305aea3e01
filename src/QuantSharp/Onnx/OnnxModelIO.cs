using Google.Protobuf;
using QuantSharp.Graph;
using QuantSharp.Onnx.Proto;
using QuantSharp.Tensors;

namespace QuantSharp.Onnx;

/// <summary>
/// Reads and writes ONNX model files. Reading builds the graph IR (values linked by identity, initializers
/// decoded); everything the IR does not model is kept, so an unmodified model is written back equal to the file
/// it came from (read → IR → write → read gives an equal ModelProto).
/// </summary>
public static class OnnxModelIO
{
    /// <summary>Reads a model file; external data is read relative to its folder (or the option's folder).</summary>
    public static Model Load(string path, OnnxLoadOptions? options = null)
    {
        var full = Path.GetFullPath(path);
        ModelProto proto;
        try
        {
            // Parsed from the stream so that the file's bytes are not held in memory next to the parsed model.
            using var fs = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            proto = Parse(() => ModelProto.Parser.ParseFrom(fs), path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new QuantSharpException($"{path}: model file not found", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QuantSharpException($"{path}: cannot read model file: {e.Message}", e);
        }
        var baseDir = options?.ExternalDataDirectory is { } d ? Path.GetFullPath(d) : Path.GetDirectoryName(full);
        var m = FromProto(proto, baseDir, path, owned: true);
        m.SourcePath = full;
        return m;
    }

    /// <summary>Reads a model from bytes; <paramref name="baseDir"/> is the folder for external data (null: none allowed).</summary>
    public static Model Load(byte[] bytes, string? baseDir) => Load(bytes, baseDir, "<in-memory model>");

    private static Model Load(byte[] bytes, string? baseDir, string label) =>
        FromProto(ParseProto(bytes, label), baseDir, label, owned: true);

    /// <summary>Parses model bytes without building the IR; corrupt bytes give a <see cref="ModelFormatException"/>.</summary>
    public static ModelProto ParseProto(byte[] bytes, string label = "<in-memory model>") =>
        Parse(() => ModelProto.Parser.ParseFrom(bytes), label);

    private static ModelProto Parse(Func<ModelProto> parse, string label)
    {
        try
        {
            return parse();
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new ModelFormatException($"{label}: not a valid ONNX model: {e.Message}", e);
        }
        catch (Exception e) when (e is not (OutOfMemoryException or IOException or UnauthorizedAccessException))
        {
            // Parsing untrusted bytes is pure: any failure means the bytes are not a model.
            throw new ModelFormatException($"{label}: not a valid ONNX model: {e.Message}", e);
        }
    }

    /// <summary>Builds the IR from a parsed model (the proto is not modified).</summary>
    public static Model FromProto(ModelProto proto, string? baseDir) => FromProto(proto, baseDir, "<model>", owned: false);

    private static Model FromProto(ModelProto proto, string? baseDir, string label, bool owned)
    {
        try
        {
            return OnnxImporter.Import(proto, baseDir, owned);
        }
        catch (ModelFormatException e)
        {
            throw new ModelFormatException($"{label}: not a valid ONNX model: {e.Message}", e);
        }
        catch (QuantSharpException e)
        {
            throw new QuantSharpException($"{label}: {e.Message}", e);
        }
    }

    /// <summary>The ModelProto for the IR: unchanged parts as read, changed parts encoded fresh.</summary>
    public static ModelProto ToProto(Model model) => OnnxExporter.Export(model);

    /// <summary>The model file's bytes (all initializers inline).</summary>
    public static byte[] ToBytes(Model model)
    {
        var p = ToProto(model);
        InlineExternalData(p, model);
        CheckSize(p, model);
        return p.ToByteArray();
    }

    /// <summary>
    /// Writes the model. Data goes to temporary files in the target folder that then replace the targets, so a
    /// failure never leaves a half-written model. Initializers that referenced external data of the source model
    /// are written inline, or to this model's own data file with <see cref="OnnxSaveOptions.ExternalData"/>.
    /// </summary>
    public static void Save(Model model, string path, OnnxSaveOptions? options = null)
    {
        options ??= new OnnxSaveOptions();
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? ".";
        var p = ToProto(model);
        InlineExternalData(p, model);

        if (!options.ExternalData)
        {
            CheckSize(p, model);
            AtomicFile.Write(full, s => p.WriteTo(s));
            return;
        }

        var dataName = options.ExternalDataFileName ?? Path.GetFileName(full) + ".data";
        if (dataName.Length == 0 || dataName != Path.GetFileName(dataName) || dataName is "." or "..")
            throw new QuantSharpException($"external data file name '{dataName}' must be a plain file name (it is written next to the model)");
        var dataPath = Path.Combine(dir, dataName);
        if (string.Equals(dataPath, full, StringComparison.Ordinal))
            throw new QuantSharpException($"{path}: external data file must differ from the model file");

        // Both files are written under temporary names first. Then the old data file (if any) is set aside, the
        // new files are renamed into place, and on failure the old data file is put back, so the pair on disk is
        // always either the old or the new one.
        string? dataTmp = null, modelTmp = null, backup = null;
        bool dataPlaced = false;
        try
        {
            bool any = false;
            dataTmp = AtomicFile.WriteTemporary(dataPath, fs => any = MoveToExternal(p, model, fs, dataName, options.ExternalDataThreshold));
            CheckSize(p, model);
            modelTmp = AtomicFile.WriteTemporary(full, s => p.WriteTo(s));
            try
            {
                if (any)
                {
                    if (File.Exists(dataPath))
                    {
                        backup = AtomicFile.TemporaryNameFor(dataPath);
                        File.Move(dataPath, backup);
                    }
                    File.Move(dataTmp, dataPath);
                    dataPlaced = true;
                }
                File.Move(modelTmp, full, overwrite: true);
                modelTmp = null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                if (dataPlaced) AtomicFile.TryDelete(dataPath);
                if (backup is not null && !File.Exists(dataPath)) File.Move(backup, dataPath);
                backup = null;
                throw new QuantSharpException($"{path}: cannot write model: {e.Message}", e);
            }
        }
        finally
        {
            if (dataTmp is not null && !dataPlaced) AtomicFile.TryDelete(dataTmp);
            if (modelTmp is not null) AtomicFile.TryDelete(modelTmp);
            if (backup is not null) AtomicFile.TryDelete(backup);
        }
    }

    /// <summary>Bytes of inline data above which a single protobuf message cannot be written (2 GiB, less headroom for the graph).</summary>
    private const long InlineLimit = int.MaxValue - (64L << 20);

    private static void CheckSize(ModelProto p, Model model)
    {
        long inline = p.Graph.Initializer.Sum(t => (long)t.RawData.Length);
        if (inline > InlineLimit)
            throw new QuantSharpException(
                $"model '{model.Graph.Name}' has {inline} bytes of inline weights, more than a protobuf file can hold; save with external data (OnnxSaveOptions.ExternalData)");
    }

    /// <summary>Replaces references to the source model's external data by inline raw_data from the decoded tensors.</summary>
    private static void InlineExternalData(ModelProto p, Model model)
    {
        var inits = p.Graph.Initializer;
        var values = model.Graph.Initializers;
        for (int i = 0; i < inits.Count; i++)
        {
            var tp = inits[i];
            if (tp.DataLocation != TensorProto.Types.DataLocation.External) continue;
            tp.ExternalData.Clear();
            tp.ClearDataLocation();
            tp.RawData = TensorProtoIO.FromTensor(values[i].Initializer!, tp.Name).RawData;
        }
    }

    /// <summary>Alignment of each tensor in the external data file, so that the file can be memory-mapped per tensor.</summary>
    private const int ExternalAlignment = 64;

    /// <summary>Moves initializers of at least <paramref name="threshold"/> stored bytes into <paramref name="data"/>.</summary>
    private static bool MoveToExternal(ModelProto p, Model model, Stream data, string location, long threshold)
    {
        var inits = p.Graph.Initializer;
        var values = model.Graph.Initializers;
        bool any = false;
        for (int i = 0; i < inits.Count; i++)
        {
            var tp = inits[i];
            var t = values[i].Initializer!;
            if (t.DataType == DataType.String) continue;
            if (TensorProtoIO.ByteCount(t.DataType, t.Length) < threshold) continue;
            var bytes = tp.HasRawData ? tp.RawData : TensorProtoIO.FromTensor(t, tp.Name).RawData;
            long pad = (ExternalAlignment - data.Position % ExternalAlignment) % ExternalAlignment;
            for (long k = 0; k < pad; k++) data.WriteByte(0);
            long offset = data.Position;
            data.Write(bytes.Span);
            tp.ClearRawData();
            tp.FloatData.Clear();
            tp.Int32Data.Clear();
            tp.Int64Data.Clear();
            tp.DoubleData.Clear();
            tp.Uint64Data.Clear();
            tp.ExternalData.Clear();
            tp.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
            tp.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            tp.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            tp.DataLocation = TensorProto.Types.DataLocation.External;
            any = true;
        }
        return any;
    }
}
