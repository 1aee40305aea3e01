namespace QuantSharp.Onnx;

/// <summary>Options for reading an ONNX model.</summary>
public sealed record OnnxLoadOptions
{
    /// <summary>Folder that external data locations are relative to; default: the model file's folder.</summary>
    public string? ExternalDataDirectory { get; init; }
}

/// <summary>Options for writing an ONNX model.</summary>
public sealed record OnnxSaveOptions
{
    /// <summary>Write initializers of at least <see cref="ExternalDataThreshold"/> bytes to a data file next to the model.</summary>
    public bool ExternalData { get; init; }

    /// <summary>Smallest initializer (in stored bytes) moved to the external data file.</summary>
    public long ExternalDataThreshold { get; init; } = 1024;

    /// <summary>Name of the external data file in the model's folder; default "&lt;model file name&gt;.data".</summary>
    public string? ExternalDataFileName { get; init; }
}
