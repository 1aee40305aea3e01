using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime;

/// <summary>
/// Runs a model. Created once (kernels are chosen and initialised, weights packed), then <see cref="Run"/> is
/// called per inference. Runs on one session are serialised; use one session per concurrent caller.
/// </summary>
public sealed partial class InferenceSession : IDisposable
{
    private readonly Model _model;
    private readonly SessionOptions _options;
    private readonly OpKernel[] _kernels;
    private readonly int[][] _nodeInputSlots;
    private readonly int[][] _nodeOutputSlots;
    private readonly int[][] _releaseAfterNode;
    private readonly Value[] _slotValues;
    private readonly Tensor?[] _constants;
    private readonly int[] _inputSlots;
    private readonly int[] _outputSlots;
    private readonly TensorPool _pool = new();
    private readonly object _runLock = new();
    private bool _disposed;

    public InferenceSession(Model model, SessionOptions? options = null)
    {
        _options = options ?? new SessionOptions();
        // Float16/bfloat16 models are computed in float, on a copy so the caller's model is unchanged. (Values seen
        // by a ValueObserver then belong to the copy; calibration runs FP32 models, which are never copied.)
        if (Float16Lowering.IsNeeded(model))
        {
            model = model.Clone();
            Float16Lowering.Apply(model);
        }
        if (_options.IntegerExecution.Enabled && Lowering.IntegerLowering.IsApplicable(model))
        {
            var lowered = model.Clone();
            if (Lowering.IntegerLowering.Apply(lowered, _options.IntegerExecution) > 0) model = lowered;
        }
        if (_options.FuseFloatOperators && _options.ValueObserver is null && Lowering.FloatFusion.IsApplicable(model) &&
            _options.Registry.IsSupported(Lowering.FloatFusion.Domain, "Conv", 1))
        {
            var fused = model.Clone();
            if (Lowering.FloatFusion.Apply(fused) > 0) model = fused;
        }
        _model = model;
        var g = model.Graph;
        _options.Registry.EnsureSupported(model);
        g.Edit().SortTopologically();
        GraphValidation.EnsureValid(g);

        var slots = new Dictionary<Value, int>();
        var slotValues = new List<Value>();
        int SlotOf(Value v)
        {
            if (!slots.TryGetValue(v, out int s))
            {
                s = slotValues.Count;
                slots[v] = s;
                slotValues.Add(v);
            }
            return s;
        }
        foreach (var v in g.Initializers) SlotOf(v);
        foreach (var v in g.Inputs) SlotOf(v);

        _kernels = new OpKernel[g.Nodes.Count];
        _nodeInputSlots = new int[g.Nodes.Count][];
        _nodeOutputSlots = new int[g.Nodes.Count][];
        for (int i = 0; i < g.Nodes.Count; i++)
        {
            var n = g.Nodes[i];
            _nodeInputSlots[i] = n.Inputs.Select(v => v is null ? -1 : SlotOf(v)).ToArray();
            _nodeOutputSlots[i] = n.Outputs.Select(v => v is null ? -1 : SlotOf(v)).ToArray();
        }
        foreach (var v in g.Outputs) SlotOf(v);
        _slotValues = slotValues.ToArray();
        _constants = _slotValues.Select(v => v.Initializer).ToArray();
        _inputSlots = g.RuntimeInputs.Select(v => slots[v]).ToArray();
        _outputSlots = g.Outputs.Select(v => slots[v]).ToArray();

        // Release each intermediate right after its last reader; graph outputs and constants are never recycled.
        var lastUse = new int[_slotValues.Length];
        Array.Fill(lastUse, -1);
        for (int i = 0; i < _nodeInputSlots.Length; i++)
            foreach (int s in _nodeInputSlots[i]) if (s >= 0) lastUse[s] = i;
        var keep = new HashSet<int>(_outputSlots);
        var release = Enumerable.Range(0, g.Nodes.Count).Select(_ => new List<int>()).ToArray();
        for (int s = 0; s < lastUse.Length; s++)
        {
            if (keep.Contains(s) || _constants[s] is not null || _inputSlots.Contains(s)) continue;
            int at = lastUse[s];
            if (at < 0)
            {
                // Produced but never read (an unused optional output): drop right after its producer.
                var p = _slotValues[s].Producer;
                at = p is null ? -1 : IndexOf(g, p);
            }
            if (at >= 0) release[at].Add(s);
        }
        _releaseAfterNode = release.Select(l => l.ToArray()).ToArray();

        for (int i = 0; i < g.Nodes.Count; i++)
        {
            var n = g.Nodes[i];
            var k = _options.Registry.TryCreate(model, n)!;
            try
            {
                k.Initialize(new KernelInitContext(n, _options));
            }
            catch (QuantSharpException e) when (!e.Message.Contains(n.Name, StringComparison.Ordinal) || n.Name.Length == 0)
            {
                throw new QuantSharpException($"node {n.Describe()}: {e.Message}", e);
            }
            _kernels[i] = k;
        }
    }

    private static int IndexOf(Graph.Graph g, Node n)
    {
        for (int i = 0; i < g.Nodes.Count; i++) if (g.Nodes[i] == n) return i;
        return -1;
    }

    public Model Model => _model;

    /// <summary>Inputs the caller must feed, with their declared types.</summary>
    public IReadOnlyList<Value> Inputs => _inputSlots.Select(s => _slotValues[s]).ToArray();

    public IReadOnlyList<Value> Outputs => _outputSlots.Select(s => _slotValues[s]).ToArray();

    /// <summary>Runs the model on named inputs and returns every graph output by name, in graph order.</summary>
    public IReadOnlyDictionary<string, Tensor> Run(IReadOnlyDictionary<string, Tensor> inputs)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_runLock) return RunLocked(inputs);
    }

    /// <summary>Runs a single-input model.</summary>
    public IReadOnlyDictionary<string, Tensor> Run(Tensor input)
    {
        if (_inputSlots.Length != 1)
            throw new InvalidInputException($"model has {_inputSlots.Length} inputs ({string.Join(", ", Inputs.Select(v => v.Name))}); name them");
        return Run(new Dictionary<string, Tensor> { [_slotValues[_inputSlots[0]].Name] = input });
    }

    private IReadOnlyDictionary<string, Tensor> RunLocked(IReadOnlyDictionary<string, Tensor> inputs)
    {
        var values = new Tensor?[_slotValues.Length];
        Array.Copy(_constants, values, values.Length);
        foreach (var (name, t) in inputs)
        {
            int s = Array.FindIndex(_inputSlots, x => _slotValues[x].Name == name);
            if (s < 0)
                throw new InvalidInputException($"model has no input named '{name}'; its inputs are: {string.Join(", ", Inputs.Select(v => $"'{v.Name}' {v.Type}"))}");
            var v = _slotValues[_inputSlots[s]];
            if (_options.ValidateInputs) CheckInput(v, t);
            values[_inputSlots[s]] = t;
            _options.ValueObserver?.Invoke(v, t);
        }
        foreach (int s in _inputSlots)
            if (values[s] is null)
                throw new InvalidInputException($"input '{_slotValues[s].Name}' ({_slotValues[s].Type}) was not given");

        var ctx = new KernelContext(_pool, Math.Max(1, _options.IntraOpThreads));
        var g = _model.Graph;
        for (int i = 0; i < _kernels.Length; i++)
        {
            var node = g.Nodes[i];
            var inSlots = _nodeInputSlots[i];
            var outSlots = _nodeOutputSlots[i];
            ctx.Node = node;
            ctx.Inputs = new Tensor?[inSlots.Length];
            for (int j = 0; j < inSlots.Length; j++) ctx.Inputs[j] = inSlots[j] < 0 ? null : values[inSlots[j]];
            ctx.Outputs = new Tensor?[outSlots.Length];
            try
            {
                _kernels[i].Compute(ctx);
            }
            catch (QuantSharpException e)
            {
                throw new QuantSharpException($"node {node.Describe()}: {e.Message}", e);
            }
            catch (Exception e) when (e is IndexOutOfRangeException or ArgumentException or InvalidCastException or OverflowException or OutOfMemoryException)
            {
                throw new QuantSharpException($"node {node.Describe()} failed on inputs {string.Join(", ", ctx.Inputs.Select(t => t?.ToString() ?? "none"))}: {e.Message}", e);
            }
            for (int j = 0; j < outSlots.Length; j++)
            {
                if (outSlots[j] < 0) continue;
                var t = ctx.Outputs[j] ?? throw new QuantSharpException($"node {node.Describe()} did not produce output {j} ('{node.Outputs[j]!.Name}')");
                values[outSlots[j]] = t;
                _options.ValueObserver?.Invoke(_slotValues[outSlots[j]], t);
            }
            foreach (int s in _releaseAfterNode[i])
            {
                if (values[s] is Tensor dead)
                {
                    _pool.Return(dead);
                    values[s] = null;
                }
            }
        }

        var result = new Dictionary<string, Tensor>(_outputSlots.Length);
        foreach (int s in _outputSlots)
        {
            var t = values[s] ?? throw new QuantSharpException($"graph output '{_slotValues[s].Name}' was not computed");
            // Constants and inputs passed straight through are copied so the caller owns what it gets.
            if (_constants[s] is not null || _inputSlots.Contains(s)) t = t.Clone();
            result[_slotValues[s].Name] = t;
        }
        return result;
    }

    private static void CheckInput(Value v, Tensor t)
    {
        if (v.Type is not TensorTypeInfo type) return;
        if (type.ElementType != DataType.Undefined && type.ElementType != t.DataType)
            throw new InvalidInputException($"input '{v.Name}' must be {DataTypes.Name(type.ElementType)}, got {DataTypes.Name(t.DataType)}");
        if (type.Shape is null) return;
        if (type.Shape.Length != t.Rank)
            throw new InvalidInputException($"input '{v.Name}' must have shape {type}, got {ShapeUtil.Format(t.Shape)} (rank {t.Rank})");
        for (int d = 0; d < t.Rank; d++)
            if (type.Shape[d].Value is long want && want > 0 && want != t.Shape[d])
                throw new InvalidInputException($"input '{v.Name}' must have shape {type}, got {ShapeUtil.Format(t.Shape)} (dimension {d})");
    }

    public void Dispose() => _disposed = true;
}
