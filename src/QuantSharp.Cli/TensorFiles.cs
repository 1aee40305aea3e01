using QuantSharp.Data;
using QuantSharp.Onnx;
using QuantSharp.Tensors;

namespace QuantSharp.Cli;

/// <summary>Tensor files the CLI reads and writes: NumPy .npy/.npz and ONNX TensorProto .pb.</summary>
internal static class TensorFiles
{
    /// <summary>Reads one tensor; the name is the one stored in a .pb file (null for .npy or an unnamed .pb).</summary>
    public static (string? Name, Tensor Tensor) Read(string path)
    {
        if (Directory.Exists(path)) throw new QuantSharpException($"input '{path}' is a directory, not a tensor file");
        if (!File.Exists(path)) throw new QuantSharpException($"input file '{path}' does not exist");
        switch (Path.GetExtension(path).ToLowerInvariant())
        {
            case ".npy":
                return (null, Npy.Read(path));
            case ".pb":
                var (name, tensor) = TensorProtoIO.ReadFile(path);
                return (string.IsNullOrEmpty(name) ? null : name, tensor);
            case ".npz":
                var arrays = Npz.Read(path);
                if (arrays.Count != 1) throw new QuantSharpException($"input file '{path}' holds {arrays.Count} arrays; give one .npy per input");
                return (null, arrays[0].Tensor);
            default:
                throw new QuantSharpException($"input file '{path}' must be .npy (NumPy) or .pb (ONNX TensorProto)");
        }
    }

    /// <summary>Writes outputs atomically: every output into an .npz, or the single output into an .npy.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> outputs)
    {
        string full = Path.GetFullPath(path);
        if (!Directory.Exists(Path.GetDirectoryName(full))) throw new QuantSharpException($"output folder of '{path}' does not exist");
        if (Directory.Exists(full)) throw new QuantSharpException($"output '{path}' is a directory");
        if (Path.GetExtension(path).Equals(".npy", StringComparison.OrdinalIgnoreCase)) Npy.Write(path, outputs.Values.Single());
        else Npz.Write(path, outputs.Select(kv => (kv.Key, kv.Value)));
    }
}
