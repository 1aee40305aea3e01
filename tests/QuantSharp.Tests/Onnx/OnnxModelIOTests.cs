using Google.Protobuf;
using QuantSharp.Graph;
using QuantSharp.Onnx;
using QuantSharp.Onnx.Proto;
using QuantSharp.Tensors;
using QuantSharp.Tests.TestData;

namespace QuantSharp.Tests.Onnx;

public class OnnxModelIOTests
{
    private static IEnumerable<(string Label, string Path)> AllModels()
    {
        foreach (var f in Directory.GetFiles(TestPaths.SharedFile("models", "onnx"), "*.onnx").OrderBy(f => f, StringComparer.Ordinal))
            yield return (Path.GetFileName(f), f);
        foreach (var c in ConformanceData.Cases())
            yield return (c.ToString(), c.ModelPath);
    }

    /// <summary>First difference between two protos, for failure messages (their JSON forms, around the mismatch).</summary>
    private static string FirstDifference(IMessage a, IMessage b)
    {
        var ja = JsonFormatter.Default.Format(a);
        var jb = JsonFormatter.Default.Format(b);
        int i = 0;
        while (i < ja.Length && i < jb.Length && ja[i] == jb[i]) i++;
        int from = Math.Max(0, i - 80);
        return $"expected …{ja.Substring(from, Math.Min(160, ja.Length - from))}… got …{jb.Substring(from, Math.Min(160, jb.Length - from))}…";
    }

    [Fact]
    public void EveryModelRoundTripsThroughTheIrUnchanged()
    {
        var failures = new List<string>();
        int count = 0;
        var dir = TestPaths.NewTempDir();
        try
        {
            foreach (var (label, path) in AllModels())
            {
                count++;
                try
                {
                    var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
                    var model = OnnxModelIO.Load(path);
                    var back = OnnxModelIO.ToProto(model);
                    if (!original.Equals(back))
                    {
                        failures.Add($"{label}: ToProto differs: {FirstDifference(original, back)}");
                        continue;
                    }
                    // Export twice: the IR and its Extras must not be changed by exporting.
                    if (!original.Equals(OnnxModelIO.ToProto(model))) failures.Add($"{label}: second ToProto differs");

                    var bytes = OnnxModelIO.ToBytes(model);
                    if (!original.Equals(ModelProto.Parser.ParseFrom(bytes))) failures.Add($"{label}: ToBytes differs");
                    var fromBytes = OnnxModelIO.ToProto(OnnxModelIO.Load(bytes, Path.GetDirectoryName(path)));
                    if (!original.Equals(fromBytes)) failures.Add($"{label}: ToBytes → Load differs");

                    // Save syncs to disk, which is slow on a shared machine: save every shared model and a sample of the rest.
                    if (count % 25 != 1 && !path.StartsWith(TestPaths.Shared + "/models", StringComparison.Ordinal)) continue;
                    var saved = Path.Combine(dir, "m.onnx");
                    OnnxModelIO.Save(model, saved);
                    var reread = ModelProto.Parser.ParseFrom(File.ReadAllBytes(saved));
                    if (!original.Equals(reread)) failures.Add($"{label}: saved file differs: {FirstDifference(original, reread)}");
                    var reloaded = OnnxModelIO.ToProto(OnnxModelIO.Load(saved));
                    if (!original.Equals(reloaded)) failures.Add($"{label}: Save → Load differs");
                }
                catch (Exception e)
                {
                    failures.Add($"{label}: {e.GetType().Name}: {e.Message}");
                }
            }
            Assert.Equal(["m.onnx"], Directory.GetFiles(dir).Select(Path.GetFileName));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {count} models failed:\n" + string.Join("\n", failures));
        Assert.True(count > 900, $"only {count} models found");
    }

    private static string MnistPath => TestPaths.SharedFile("models", "onnx", "mnist_cntk_opset7.onnx");

    /// <summary>A one-node model (Add of input x and initializer w) with a configurable initializer.</summary>
    private static ModelProto TinyModel(TensorProto w)
    {
        var f = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)DataType.Float } };
        var g = new GraphProto { Name = "tiny" };
        g.Input.Add(new ValueInfoProto { Name = "x", Type = f });
        g.Output.Add(new ValueInfoProto { Name = "y", Type = f });
        g.Initializer.Add(w);
        g.Node.Add(new NodeProto { Name = "add", OpType = "Add", Input = { "x", "w" }, Output = { "y" } });
        return new ModelProto { IrVersion = 8, Graph = g, OpsetImport = { new OperatorSetIdProto { Domain = "", Version = 17 } } };
    }

    private static TensorProto FloatInit(string name, params float[] v) =>
        TensorProtoIO.FromTensor(new Tensor<float>(v, [v.Length]), name);

    [Fact]
    public void ImportLinksValuesByIdentityAndKeepsOldStyleInitializerInputs()
    {
        var m = OnnxModelIO.Load(MnistPath);
        Assert.Equal(3, m.IrVersion);
        Assert.Equal(Path.GetFullPath(MnistPath), m.SourcePath);
        var g = m.Graph;
        Assert.Empty(GraphValidation.Validate(g));
        // IR 3: every initializer is also declared as a graph input; only Input3 must be fed.
        Assert.All(g.Initializers, v => Assert.Contains(v, g.Inputs));
        Assert.Equal(["Input3"], g.RuntimeInputs.Select(v => v.Name));
        foreach (var n in g.Nodes)
            foreach (var (v, i) in n.Inputs.Select((v, i) => (v, i)))
                if (v is not null) Assert.Contains(new Use(n, i), v.Uses);
        foreach (var v in g.Initializers) Assert.Same(v.Initializer, v.ImportedInitializer);
        var conv = g.Nodes.First(n => n.OpType == "Conv");
        Assert.Equal("SAME_UPPER", conv.GetString("auto_pad", ""));
        Assert.Equal(DataType.Float, g.RuntimeInputs.Single().Type!.ElementType);
    }

    [Fact]
    public void FromProtoLeavesTheCallersProtoUntouched()
    {
        foreach (var f in Directory.GetFiles(TestPaths.SharedFile("models", "onnx"), "*.onnx"))
        {
            var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(f));
            var mine = original.Clone();
            var m = OnnxModelIO.FromProto(mine, Path.GetDirectoryName(f));
            Assert.Equal(original, mine);
            m.Graph.Edit().SetInitializer(m.Graph.Initializers[0], new Tensor<float>([1f], [1]));
            m.ProducerName = "changed";
            OnnxModelIO.ToProto(m);
            Assert.Equal(original, mine);
        }
    }

    [Fact]
    public void EditedModelsExportTheEditsAndKeepTheRest()
    {
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(MnistPath));
        var m = OnnxModelIO.Load(MnistPath);
        var g = m.Graph;
        var e = g.Edit();
        var w = g.Initializers[0];
        var scaled = new Tensor<float>(w.Initializer!.As<float>().Data.Select(x => x * 2).ToArray(), w.Initializer.Shape);
        e.SetInitializer(w, scaled);
        var relu = e.InsertAfter(g.Outputs[0], "Relu", [], name: "final_relu", domain: "ai.onnx");
        relu.Attributes["note"] = NodeAttribute.Of("note", "added");
        m.ProducerName = "quantsharp-test";
        m.Metadata.Add(new("k", "v"));

        var p = OnnxModelIO.ToProto(m);
        Assert.Equal("quantsharp-test", p.ProducerName);
        Assert.Equal(original.Graph.Node.Count + 1, p.Graph.Node.Count);
        var added = p.Graph.Node.Last();
        Assert.Equal("Relu", added.OpType);
        Assert.Equal("", added.Domain);
        Assert.Equal("added", added.Attribute.Single().S.ToStringUtf8());
        Assert.Equal(p.Graph.Output[0].Name, added.Output[0]);
        Assert.Equal(original.Graph.Output[0].Type, p.Graph.Output[0].Type);
        var wp = p.Graph.Initializer.Single(t => t.Name == w.Name);
        Assert.Equal(scaled.Data, TensorProtoIO.ToTensor(wp, null).As<float>().Data);
        // Untouched initializers are written exactly as read.
        for (int i = 1; i < original.Graph.Initializer.Count; i++)
            Assert.Equal(original.Graph.Initializer[i], p.Graph.Initializer[i]);

        var again = OnnxModelIO.Load(p.ToByteArray(), null);
        Assert.Empty(GraphValidation.Validate(again.Graph));
        Assert.Equal("k", again.Metadata[^1].Key);
        Assert.Same(again.Graph.Outputs[0].Producer, again.Graph.FindNode("final_relu"));
    }

    [Fact]
    public void BuiltModelsExportAndReload()
    {
        var g = new QuantSharp.Graph.Graph { Name = "built" };
        var e = g.Edit();
        var x = e.AddInput("x", new TensorTypeInfo(DataType.Float, [new Dimension(null, "batch"), 4]));
        var w = e.AddInitializer("w", new Tensor<sbyte>([-8, 7, 1, 0, 3], [5], DataType.Int4));
        var n = e.AddNode("Mul", [x, w], name: "mul", attributes: [NodeAttribute.Of("axes", new long[] { 0, 1 }), NodeAttribute.Of("alpha", 0.5f)]);
        n.Outputs[0]!.Type = new TensorTypeInfo(DataType.Float, null);
        e.AddOutput(n.Outputs[0]!);
        var m = new Model(g) { IrVersion = 10 };
        m.SetOpset("", 21);

        var back = OnnxModelIO.Load(OnnxModelIO.ToBytes(m), null);
        Assert.Equal(10, back.IrVersion);
        Assert.Equal(21, back.Opset(""));
        var bx = back.Graph.Inputs.Single();
        Assert.Equal(x.Type, bx.Type);
        Assert.Equal(new sbyte[] { -8, 7, 1, 0, 3 }, back.Graph.Initializers.Single().Initializer!.As<sbyte>().Data);
        var bn = back.Graph.Nodes.Single();
        Assert.Equal(new long[] { 0, 1 }, bn.GetInts("axes"));
        Assert.Equal(0.5f, bn.GetFloat("alpha", 0));
        Assert.Same(bx, bn.Inputs[0]);
        Assert.Same(back.Graph.Outputs[0], bn.Outputs[0]);
        Assert.Null(back.Graph.Outputs[0].Type!.Shape);
    }

    [Fact]
    public void CorruptModelFilesGiveModelFormatErrors()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var bytes = File.ReadAllBytes(MnistPath);
            var path = Path.Combine(dir, "bad.onnx");
            foreach (int cut in new[] { 1, 10, bytes.Length / 3, bytes.Length / 2, bytes.Length - 1 })
            {
                File.WriteAllBytes(path, bytes[..cut]);
                var ex = Assert.Throws<ModelFormatException>(() => OnnxModelIO.Load(path));
                Assert.StartsWith(path + ": not a valid ONNX model", ex.Message);
            }
            var rng = new Random(7);
            for (int i = 0; i < 20; i++)
            {
                var junk = new byte[rng.Next(1, 5000)];
                rng.NextBytes(junk);
                File.WriteAllBytes(path, junk);
                Assert.Throws<ModelFormatException>(() => OnnxModelIO.Load(path));
            }
            File.WriteAllBytes(path, []);
            Assert.Throws<ModelFormatException>(() => OnnxModelIO.Load(path));
            var missing = Assert.Throws<QuantSharpException>(() => OnnxModelIO.Load(Path.Combine(dir, "nope.onnx")));
            Assert.Contains("nope.onnx", missing.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void BadInitializersAreReportedByName()
    {
        var huge = new TensorProto { Name = "w", DataType = (int)DataType.Float, Dims = { 1L << 40 }, RawData = ByteString.CopyFrom(new byte[4]) };
        var e = Assert.Throws<ModelFormatException>(() => OnnxModelIO.Load(TinyModel(huge).ToByteArray(), null));
        Assert.Contains("'w'", e.Message);

        var shortRaw = new TensorProto { Name = "w", DataType = (int)DataType.Float, Dims = { 4 }, RawData = ByteString.CopyFrom(new byte[12]) };
        e = Assert.Throws<ModelFormatException>(() => OnnxModelIO.Load(TinyModel(shortRaw).ToByteArray(), null));
        Assert.Contains("'w'", e.Message);
        Assert.Contains("12 bytes", e.Message);

        var noIr = TinyModel(FloatInit("w", 1));
        noIr.ClearIrVersion();
        Assert.Throws<ModelFormatException>(() => OnnxModelIO.Load(noIr.ToByteArray(), null));
        var future = TinyModel(FloatInit("w", 1));
        future.IrVersion = 99;
        Assert.Contains("IR version 99", Assert.Throws<ModelFormatException>(() => OnnxModelIO.Load(future.ToByteArray(), null)).Message);
    }

    [Fact]
    public void ExternalDataIsReadAndWrittenNextToTheModel()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var values = Enumerable.Range(0, 300).Select(i => i * 0.5f).ToArray();
            File.WriteAllBytes(Path.Combine(dir, "weights.bin"), values.SelectMany(BitConverter.GetBytes).ToArray());
            var w = new TensorProto { Name = "w", DataType = (int)DataType.Float, Dims = { 300 }, DataLocation = TensorProto.Types.DataLocation.External };
            w.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "weights.bin" });
            var proto = TinyModel(w);
            var path = Path.Combine(dir, "ext.onnx");
            File.WriteAllBytes(path, proto.ToByteArray());

            var m = OnnxModelIO.Load(path);
            Assert.Equal(values, m.Graph.Initializers[0].Initializer!.As<float>().Data);
            Assert.Equal(proto, OnnxModelIO.ToProto(m));

            // Saved elsewhere, the data moves along: inline by default, or into the new model's own data file.
            var inline = Path.Combine(dir, "out", "inline.onnx");
            Directory.CreateDirectory(Path.GetDirectoryName(inline)!);
            OnnxModelIO.Save(m, inline);
            Assert.Equal(values, OnnxModelIO.Load(inline).Graph.Initializers[0].Initializer!.As<float>().Data);

            var external = Path.Combine(dir, "out", "external.onnx");
            OnnxModelIO.Save(m, external, new OnnxSaveOptions { ExternalData = true, ExternalDataThreshold = 16 });
            Assert.True(File.Exists(external + ".data"));
            Assert.True(new FileInfo(external).Length < 1000);
            var re = OnnxModelIO.Load(external);
            Assert.Equal(values, re.Graph.Initializers[0].Initializer!.As<float>().Data);
            Assert.Equal("external.onnx.data", OnnxModelIO.ToProto(re).Graph.Initializer[0].ExternalData[0].Value);

            File.Delete(external + ".data");
            var missing = Assert.Throws<ModelFormatException>(() => OnnxModelIO.Load(external));
            Assert.Contains("'w'", missing.Message);
            Assert.Contains("external.onnx.data", missing.Message);

            foreach (var evil in new[] { "../weights.bin", Path.Combine(dir, "weights.bin") })
            {
                w.ExternalData[0].Value = evil;
                var evilPath = Path.Combine(dir, "out", "evil.onnx");
                File.WriteAllBytes(evilPath, TinyModel(w).ToByteArray());
                var ex = Assert.Throws<ModelFormatException>(() => OnnxModelIO.Load(evilPath));
                Assert.Contains("'w'", ex.Message);
                Assert.Contains(evil, ex.Message);
            }
            var noFolder = Assert.Throws<ModelFormatException>(() => OnnxModelIO.Load(proto.ToByteArray(), null));
            Assert.Contains("'w'", noFolder.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void FailedSavesLeaveNoPartialOrTemporaryFiles()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var m = OnnxModelIO.Load(MnistPath);
            // The target is a folder: refused before anything is written.
            var target = Path.Combine(dir, "model.onnx");
            Directory.CreateDirectory(target);
            Assert.Throws<QuantSharpException>(() => OnnxModelIO.Save(m, target));
            Assert.Throws<QuantSharpException>(() => OnnxModelIO.Save(m, target, new OnnxSaveOptions { ExternalData = true, ExternalDataThreshold = 1 }));
            Assert.Empty(Directory.GetFiles(dir));
            Assert.Empty(Directory.GetFileSystemEntries(target));

            // A missing folder.
            Assert.Throws<QuantSharpException>(() => OnnxModelIO.Save(m, Path.Combine(dir, "no", "such", "m.onnx")));

            // Encoding fails part way (an int4 value out of range): an existing file is left as it was.
            var good = Path.Combine(dir, "good.onnx");
            OnnxModelIO.Save(m, good);
            var before = File.ReadAllBytes(good);
            var e = m.Graph.Edit();
            e.AddInitializer("bad", new Tensor<sbyte>([9], [1], DataType.Int4));
            Assert.Throws<QuantSharpException>(() => OnnxModelIO.Save(m, good));
            Assert.Equal(before, File.ReadAllBytes(good));
            Assert.Equal(["good.onnx"], Directory.GetFiles(dir).Select(Path.GetFileName));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
