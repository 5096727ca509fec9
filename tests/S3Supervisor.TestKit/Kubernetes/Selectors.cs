using k8s;
using k8s.Models;

namespace S3Supervisor.TestKit.Kubernetes;

/// <summary>A parse error in a selector; the server turns it into a 400 BadRequest, as the real one does.</summary>
internal sealed class SelectorException(string message) : Exception(message);

/// <summary>
/// Field selectors as the API server reads them: comma-separated <c>field=value</c>, <c>field==value</c>
/// or <c>field!=value</c>, only on the fields the resource supports.
/// </summary>
internal static class FieldSelector
{
    public static Func<IKubernetesObject<V1ObjectMeta>, bool> Parse(string? text, ApiResource resource)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return _ => true;
        }
        var terms = new List<(string Field, string Value, bool Equal)>();
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            string field;
            string value;
            bool equal;
            var ne = raw.IndexOf("!=", StringComparison.Ordinal);
            if (ne >= 0)
            {
                (field, value, equal) = (raw[..ne], raw[(ne + 2)..], false);
            }
            else
            {
                var eq = raw.IndexOf('=', StringComparison.Ordinal);
                if (eq < 0)
                {
                    throw new SelectorException($"invalid selector: '{text}'; can't understand '{raw}'");
                }
                var skip = eq + 1 < raw.Length && raw[eq + 1] == '=' ? 2 : 1;
                (field, value, equal) = (raw[..eq], raw[(eq + skip)..], true);
            }
            field = field.Trim();
            if (!resource.SupportsField(field))
            {
                throw new SelectorException($"field label not supported: {field}");
            }
            terms.Add((field, value.Trim(), equal));
        }
        return item =>
        {
            foreach (var (field, value, equal) in terms)
            {
                var actual = resource.FieldValue(item, field) ?? string.Empty;
                if (string.Equals(actual, value, StringComparison.Ordinal) != equal)
                {
                    return false;
                }
            }
            return true;
        };
    }
}

/// <summary>
/// Label selectors: equality (<c>a=b</c>, <c>a==b</c>, <c>a!=b</c>), existence (<c>a</c>, <c>!a</c>) and
/// sets (<c>a in (x,y)</c>, <c>a notin (x,y)</c>), all terms ANDed.
/// </summary>
internal static class LabelSelector
{
    public static Func<IDictionary<string, string>?, bool> Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return _ => true;
        }
        var predicates = SplitTerms(text).Select(ParseTerm).ToList();
        return labels => predicates.All(p => p(labels ?? new Dictionary<string, string>()));
    }

    private static IEnumerable<string> SplitTerms(string text)
    {
        var depth = 0;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '(': depth++; break;
                case ')': depth--; break;
                case ',' when depth == 0:
                    yield return text[start..i].Trim();
                    start = i + 1;
                    break;
            }
        }
        yield return text[start..].Trim();
    }

    private static Func<IDictionary<string, string>, bool> ParseTerm(string term)
    {
        if (term.Length == 0)
        {
            throw new SelectorException("invalid label selector: empty term");
        }
        var words = term.Split(' ', 2, StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (words.Length == 2 && (words[1].StartsWith("in ", StringComparison.Ordinal) || words[1].StartsWith("in(", StringComparison.Ordinal)
            || words[1].StartsWith("notin ", StringComparison.Ordinal) || words[1].StartsWith("notin(", StringComparison.Ordinal)))
        {
            var key = words[0];
            var notIn = words[1].StartsWith("notin", StringComparison.Ordinal);
            var set = words[1][(notIn ? 5 : 2)..].Trim();
            if (!set.StartsWith('(') || !set.EndsWith(')'))
            {
                throw new SelectorException($"invalid label selector: '{term}'");
            }
            var values = set[1..^1].Split(',', StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
            return notIn
                ? labels => !labels.TryGetValue(key, out var v) || !values.Contains(v)
                : labels => labels.TryGetValue(key, out var v) && values.Contains(v);
        }
        var ne = term.IndexOf("!=", StringComparison.Ordinal);
        if (ne >= 0)
        {
            var key = term[..ne].Trim();
            var value = term[(ne + 2)..].Trim();
            return labels => !labels.TryGetValue(key, out var v) || v != value;
        }
        var eq = term.IndexOf('=', StringComparison.Ordinal);
        if (eq >= 0)
        {
            var key = term[..eq].Trim();
            var value = term[(eq + (eq + 1 < term.Length && term[eq + 1] == '=' ? 2 : 1))..].Trim();
            return labels => labels.TryGetValue(key, out var v) && v == value;
        }
        if (term.StartsWith('!'))
        {
            var key = term[1..].Trim();
            return labels => !labels.ContainsKey(key);
        }
        return labels => labels.ContainsKey(term);
    }
}
