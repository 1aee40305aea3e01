using QuantSharp.Graph;
using QuantSharp.Onnx;

namespace QuantSharp.Cli;

/// <summary>Loading models and writing result files for the commands.</summary>
internal static class ModelFiles
{
    /// <summary>Loads an ONNX model, with a clear message when the path does not name a file.</summary>
    public static Model Load(string path)
    {
        if (Directory.Exists(path)) throw new QuantSharpException($"model '{path}' is a directory, not an .onnx file");
        if (!File.Exists(path)) throw new QuantSharpException($"model file '{path}' does not exist");
        return OnnxModelIO.Load(path);
    }
}
