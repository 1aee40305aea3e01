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
}
