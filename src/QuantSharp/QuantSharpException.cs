namespace QuantSharp;

/// <summary>
/// An error caused by the user's input (a model, a tensor, a data file, an option) rather than by a bug.
/// The message is one line that names the file, node, tensor or op at fault; the CLI prints it without a stack trace.
/// </summary>
public class QuantSharpException : Exception
{
    public QuantSharpException(string message) : base(message) { }
    public QuantSharpException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A model file that cannot be read: truncated, corrupt, absurd sizes, bad external data.</summary>
public sealed class ModelFormatException : QuantSharpException
{
    public ModelFormatException(string message) : base(message) { }
    public ModelFormatException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>The model uses operators the runtime has no kernel for; every one of them is listed.</summary>
public sealed class UnsupportedOperatorException : QuantSharpException
{
    public UnsupportedOperatorException(string message, IReadOnlyList<string> nodes) : base(message) => Nodes = nodes;
    /// <summary>One entry per offending node: "name (domain:OpType, opset N)".</summary>
    public IReadOnlyList<string> Nodes { get; }
}

/// <summary>An input given to a session does not match the model: unknown name, wrong dtype, wrong shape.</summary>
public sealed class InvalidInputException : QuantSharpException
{
    public InvalidInputException(string message) : base(message) { }
}
