using System.Reflection;
using System.Reflection.Emit;

namespace S3Supervisor.TestKit.Architecture;

/// <summary>
/// Which namespace (folder) of an assembly uses which, read from the compiled code: base types and
/// interfaces, fields, properties, method signatures, attributes, and every type, method and field
/// token in the method bodies (IL), lambdas and async state machines counted with the type that wrote
/// them. Constants (inlined), <c>nameof</c> and doc comments leave no trace in IL and are not seen.
/// </summary>
public sealed class NamespaceGraph
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    private readonly string _root;
    private readonly Dictionary<string, HashSet<string>> _edges = new(StringComparer.Ordinal);

    private NamespaceGraph(string root) => _root = root;

    /// <summary>Namespace → the other namespaces under the same root it depends on.</summary>
    public IReadOnlyDictionary<string, HashSet<string>> Edges => _edges;

    /// <summary>The graph of the namespaces under <paramref name="root"/> (the root itself included) in <paramref name="assembly"/>.</summary>
    public static NamespaceGraph Of(Assembly assembly, string root)
    {
        var graph = new NamespaceGraph(root);
        foreach (var type in assembly.GetTypes())
        {
            if (graph.Folder(type) is not { } from)
            {
                continue;
            }
            graph._edges.TryAdd(from, new HashSet<string>(StringComparer.Ordinal));
            foreach (var used in UsedTypes(type))
            {
                if (graph.Folder(used) is { } to && to != from)
                {
                    graph._edges[from].Add(to);
                }
            }
        }
        return graph;
    }

    /// <summary>Every cycle's namespaces in order (the first repeated at the end); empty when the graph is acyclic.</summary>
    public IReadOnlyList<IReadOnlyList<string>> Cycles()
    {
        var cycles = new List<IReadOnlyList<string>>();
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1 on the stack, 2 done
        var stack = new List<string>();
        void Visit(string node)
        {
            state[node] = 1;
            stack.Add(node);
            foreach (var next in _edges.GetValueOrDefault(node) ?? [])
            {
                if (state.GetValueOrDefault(next) == 1)
                {
                    cycles.Add([.. stack[stack.IndexOf(next)..], next]);
                }
                else if (state.GetValueOrDefault(next) == 0)
                {
                    Visit(next);
                }
            }
            stack.RemoveAt(stack.Count - 1);
            state[node] = 2;
        }
        foreach (var node in _edges.Keys.Order(StringComparer.Ordinal))
        {
            if (state.GetValueOrDefault(node) == 0)
            {
                Visit(node);
            }
        }
        return cycles;
    }

    private string? Folder(Type type)
    {
        while (type.HasElementType)
        {
            type = type.GetElementType()!;
        }
        var ns = type.Namespace;
        return ns is not null && (ns == _root || ns.StartsWith(_root + ".", StringComparison.Ordinal)) ? ns : null;
    }

    private static HashSet<Type> UsedTypes(Type type)
    {
        var found = new HashSet<Type>();
        void Add(Type? t)
        {
            if (t is null || !found.Add(t))
            {
                return;
            }
            if (t.HasElementType)
            {
                Add(t.GetElementType());
            }
            if (t.IsGenericType && !t.IsGenericTypeDefinition)
            {
                Add(t.GetGenericTypeDefinition());
                foreach (var argument in t.GetGenericArguments())
                {
                    Add(argument);
                }
            }
        }
        void AddAttributes(IEnumerable<CustomAttributeData> attributes)
        {
            foreach (var attribute in attributes)
            {
                Add(attribute.AttributeType);
                foreach (var argument in attribute.ConstructorArguments.Concat(attribute.NamedArguments.Select(n => n.TypedValue)))
                {
                    Add(argument.ArgumentType);
                    if (argument.Value is Type typeArgument)
                    {
                        Add(typeArgument);
                    }
                }
            }
        }

        Add(type.BaseType);
        foreach (var contract in type.GetInterfaces())
        {
            Add(contract);
        }
        AddAttributes(type.GetCustomAttributesData());
        foreach (var field in type.GetFields(Declared))
        {
            Add(field.FieldType);
            AddAttributes(field.GetCustomAttributesData());
        }
        foreach (var property in type.GetProperties(Declared))
        {
            Add(property.PropertyType);
        }
        foreach (var method in type.GetMethods(Declared).Cast<MethodBase>().Concat(type.GetConstructors(Declared)))
        {
            if (method is MethodInfo info)
            {
                Add(info.ReturnType);
            }
            foreach (var parameter in method.GetParameters())
            {
                Add(parameter.ParameterType);
            }
            AddAttributes(method.GetCustomAttributesData());
            foreach (var used in BodyTypes(method))
            {
                Add(used);
            }
        }
        return found;
    }

    /// <summary>The types named by the tokens of a method body: types, the declaring types of methods and fields, and their signatures.</summary>
    private static IEnumerable<Type> BodyTypes(MethodBase method)
    {
        var body = method.GetMethodBody();
        if (body is null)
        {
            yield break;
        }
        foreach (var local in body.LocalVariables)
        {
            yield return local.LocalType;
        }
        var il = body.GetILAsByteArray() ?? [];
        var typeArguments = method.DeclaringType is { IsGenericType: true } declaring ? declaring.GetGenericArguments() : null;
        var methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (var at = 0; at < il.Length;)
        {
            var value = il[at] == 0xFE ? (short)(0xFE00 | il[at + 1]) : il[at];
            at += il[at] == 0xFE ? 2 : 1;
            var opCode = OpCodesByValue[value];
            switch (opCode.OperandType)
            {
                case OperandType.InlineField or OperandType.InlineMethod or OperandType.InlineTok or OperandType.InlineType:
                    var member = Resolve(method.Module, BitConverter.ToInt32(il, at), typeArguments, methodArguments);
                    at += 4;
                    switch (member)
                    {
                        case Type t:
                            yield return t;
                            break;
                        case FieldInfo f:
                            yield return f.DeclaringType!;
                            yield return f.FieldType;
                            break;
                        case MethodBase m:
                            yield return m.DeclaringType!;
                            if (m is MethodInfo mi)
                            {
                                yield return mi.ReturnType;
                                foreach (var argument in mi.IsGenericMethod ? mi.GetGenericArguments() : [])
                                {
                                    yield return argument;
                                }
                            }
                            foreach (var parameter in m.GetParameters())
                            {
                                yield return parameter.ParameterType;
                            }
                            break;
                    }
                    break;
                case OperandType.InlineSwitch:
                    at += 4 + (4 * BitConverter.ToInt32(il, at));
                    break;
                case OperandType.InlineNone:
                    break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar:
                    at += 1;
                    break;
                case OperandType.InlineVar:
                    at += 2;
                    break;
                case OperandType.InlineI8 or OperandType.InlineR:
                    at += 8;
                    break;
                default: // InlineBrTarget, InlineI, InlineSig, InlineString, ShortInlineR
                    at += 4;
                    break;
            }
        }
    }

    private static MemberInfo? Resolve(Module module, int token, Type[]? typeArguments, Type[]? methodArguments)
    {
        try
        {
            return module.ResolveMember(token, typeArguments, methodArguments);
        }
        catch (Exception e) when (e is ArgumentException or TypeLoadException or FileNotFoundException or BadImageFormatException)
        {
            return null;
        }
    }
}
