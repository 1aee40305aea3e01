using QuantSharp.Onnx;

namespace QuantSharp.Runtime;

public sealed partial class InferenceSession
{
    /// <summary>Reads an ONNX model file (see <see cref="OnnxModelIO.Load(string, OnnxLoadOptions?)"/>) and prepares it to run.</summary>
    public static InferenceSession Load(string path, SessionOptions? options = null) =>
        new(OnnxModelIO.Load(path), options);
}
