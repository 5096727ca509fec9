using System.Diagnostics;

namespace S3Supervisor.TestKit.Supervisor;

/// <summary>How a product executable runs: the NativeAOT binary that ships, or `dotnet x.dll` under the JIT.</summary>
public enum BinaryKind
{
    Aot,
    Jit,
}

/// <summary>
/// One of the two product executables (s3supervisor, s3csi-plugin) as the tests, the benchmark and the
/// local node start it. The NativeAOT binary that ships is used when it is there: the path in
/// <c>S3SUPERVISOR_AOT_DIR</c>, else the repository's <c>.work/publish</c> (written by scripts/publish.sh),
/// in <c>supervisor/</c> and <c>plugin/</c>. Otherwise, and when it is older than the built assembly
/// beside the test (a build after the last publish: it would run old code), it is `dotnet x.dll` from
/// the test's output directory, with a note on stderr saying so once.
/// <c>S3SUPERVISOR_BINARIES=jit</c> forces the JIT, <c>=aot</c> makes a missing or stale AOT binary an
/// error; so does asking for <see cref="BinaryKind.Aot"/> explicitly (the benchmark measures both).
/// </summary>
public sealed class ProductBinary
{
    private static readonly Lock NoteGate = new();
    private static readonly HashSet<string> Noted = [];

    private ProductBinary(string name, BinaryKind kind, string path)
    {
        Name = name;
        Kind = kind;
        Path = path;
    }

    /// <summary>s3supervisor (supervisor/): of <paramref name="kind"/>, or as S3SUPERVISOR_BINARIES says, or AOT when it is usable.</summary>
    public static ProductBinary ForSupervisor(BinaryKind? kind = null) => Resolve("s3supervisor", "supervisor", kind ?? Preference);

    /// <summary>s3csi-plugin (plugin/), chosen like <see cref="ForSupervisor"/>.</summary>
    public static ProductBinary ForPlugin(BinaryKind? kind = null) => Resolve("s3csi-plugin", "plugin", kind ?? Preference);

    /// <summary>The executable's name, e.g. s3supervisor.</summary>
    public string Name { get; }

    public BinaryKind Kind { get; }

    /// <summary>The native binary (AOT) or the assembly that `dotnet` runs (JIT).</summary>
    public string Path { get; }

    /// <summary>What the benchmark prints: the kind and the path.</summary>
    public string Describe() => Kind == BinaryKind.Aot ? $"{Path} (NativeAOT)" : $"dotnet {Path} (JIT)";

    /// <summary>The start info for running it with <paramref name="arguments"/>; output redirected.</summary>
    public ProcessStartInfo StartInfo(params IEnumerable<string> arguments)
    {
        var info = Kind == BinaryKind.Aot ? new ProcessStartInfo(Path) : new ProcessStartInfo("dotnet");
        if (Kind == BinaryKind.Jit)
        {
            info.ArgumentList.Add(Path);
        }
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        return info;
    }

    /// <summary>Whether an up-to-date AOT binary is there for both executables (the benchmark measures AOT only then).</summary>
    public static bool AotAvailable(out string? reason)
    {
        reason = AotProblem("s3supervisor", "supervisor") ?? AotProblem("s3csi-plugin", "plugin");
        return reason is null;
    }

    /// <summary>Where scripts/publish.sh puts the AOT binaries, or null when the repository is not found above the test.</summary>
    public static string? PublishDirectory
    {
        get
        {
            var configured = Environment.GetEnvironmentVariable("S3SUPERVISOR_AOT_DIR");
            if (!string.IsNullOrEmpty(configured))
            {
                return configured;
            }
            return RepositoryRoot is { } root ? System.IO.Path.Combine(root, ".work", "publish") : null;
        }
    }

    /// <summary>The repository (the directory holding S3Supervisor.sln) above the running test, or null.</summary>
    public static string? RepositoryRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(System.IO.Path.Combine(dir.FullName, "S3Supervisor.sln")))
                {
                    return dir.FullName;
                }
            }
            return null;
        }
    }

    private static BinaryKind? Preference => Environment.GetEnvironmentVariable("S3SUPERVISOR_BINARIES")?.ToLowerInvariant() switch
    {
        "jit" => BinaryKind.Jit,
        "aot" => BinaryKind.Aot,
        _ => null,
    };

    private static string JitPath(string name) => System.IO.Path.Combine(AppContext.BaseDirectory, name + ".dll");

    private static string? AotPath(string name, string folder) =>
        PublishDirectory is { } root ? System.IO.Path.Combine(root, folder, name) : null;

    /// <summary>Why the AOT binary cannot be used (missing, or older than the assembly built beside the test), or null.</summary>
    private static string? AotProblem(string name, string folder)
    {
        var aot = AotPath(name, folder);
        if (aot is null || !File.Exists(aot))
        {
            return $"no NativeAOT {name} at {aot ?? "(no repository above the test, set S3SUPERVISOR_AOT_DIR)"} (run scripts/publish.sh)";
        }
        var jit = JitPath(name);
        if (File.Exists(jit) && File.GetLastWriteTimeUtc(jit) > File.GetLastWriteTimeUtc(aot))
        {
            return $"the NativeAOT {aot} is older than the build {jit} (run scripts/publish.sh again)";
        }
        return null;
    }

    /// <param name="kind">Null: AOT when it is usable, else the JIT with a note.</param>
    private static ProductBinary Resolve(string name, string folder, BinaryKind? kind)
    {
        if (kind == BinaryKind.Jit)
        {
            return new ProductBinary(name, BinaryKind.Jit, JitPath(name));
        }
        var problem = AotProblem(name, folder);
        if (problem is null)
        {
            return new ProductBinary(name, BinaryKind.Aot, AotPath(name, folder)!);
        }
        if (kind == BinaryKind.Aot)
        {
            throw new InvalidOperationException($"S3SUPERVISOR_BINARIES=aot, but {problem}");
        }
        var note = $"{problem}: running `dotnet {name}.dll` (JIT) instead";
        lock (NoteGate)
        {
            if (Noted.Add(name))
            {
                Console.Error.WriteLine($"S3Supervisor.TestKit: NOTE: {note}");
            }
        }
        return new ProductBinary(name, BinaryKind.Jit, JitPath(name));
    }
}
