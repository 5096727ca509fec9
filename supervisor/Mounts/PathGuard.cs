using S3Supervisor.Common;
using S3Supervisor.Supervisor.Interop;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// Confines every staging and target path to the allowed roots. A path must be absolute and
/// normalised (no '.', '..' or empty segments); its parent directory is resolved with realpath, so a
/// symlink anywhere on the way cannot lead out of the roots, and the last component must not be a
/// symlink itself. The last component is not resolved: it may be a dead FUSE mount that answers
/// ENOTCONN, which must still be unmountable.
/// </summary>
public sealed class PathGuard
{
    private readonly IReadOnlyList<string> _roots;

    public PathGuard(IEnumerable<string> allowedRoots)
    {
        // Roots themselves may sit behind symlinks (e.g. /var/lib/kubelet on another disk).
        _roots = allowedRoots.Select(r => Directory.Exists(r) ? Libc.RealPath(r) : r.TrimEnd('/')).ToArray();
    }

    public IReadOnlyList<string> Roots => _roots;

    /// <summary>Checks a path and returns it in canonical form (parent resolved). Throws InvalidArgument or PermissionDenied naming the field.</summary>
    public string Check(string? path, string field)
    {
        if (!PathRules.IsAbsolute(path, out var problem))
        {
            throw VolumeException.Invalid(field, problem);
        }
        var trimmed = path.Length > 1 ? path.TrimEnd('/') : path;
        var segments = trimmed.Split('/')[1..];
        if (segments.Any(s => s.Length == 0 || s == "." || s == ".."))
        {
            throw VolumeException.Invalid(field, "must be normalised: no empty, '.' or '..' segments");
        }
        if (segments.Length == 0)
        {
            throw Denied(field);
        }
        var parent = "/" + string.Join('/', segments[..^1]);
        string resolvedParent;
        try
        {
            resolvedParent = Libc.RealPath(parent);
        }
        catch (InteropException e) when (e.Errno is Errno.ENOENT or Errno.ENOTDIR)
        {
            // The parent does not exist yet: judge the lexical path, nothing can be resolved below it.
            // Creation later goes through CreateDirectory on this same checked path.
            resolvedParent = ResolveExistingPrefix(parent, field);
        }
        catch (InteropException e)
        {
            throw Unresolvable(field, e.Errno);
        }
        var canonical = resolvedParent == "/" ? "/" + segments[^1] : resolvedParent + "/" + segments[^1];
        if (!_roots.Any(root => canonical.StartsWith(root + "/", StringComparison.Ordinal)))
        {
            throw Denied(field);
        }
        if (IsSymlink(canonical))
        {
            throw new VolumeException(VolumeErrorKind.PermissionDenied, field, $"must not be a symbolic link");
        }
        return canonical;
    }

    /// <summary>ELOOP (a symlink loop), EACCES (a directory on the way we may not search) and the like: never mounted on.</summary>
    private static VolumeException Unresolvable(string field, int errno) => errno switch
    {
        Errno.ENAMETOOLONG => VolumeException.Invalid(field, "is too long for the file system"),
        Errno.ELOOP => new VolumeException(VolumeErrorKind.PermissionDenied, field, $"passes through a symbolic link loop"),
        _ => new VolumeException(VolumeErrorKind.PermissionDenied, field, $"cannot be resolved ({Errno.Name(errno)})"),
    };

    private VolumeException Denied(string field) =>
        new(VolumeErrorKind.PermissionDenied, field, $"is outside the allowed roots ({string.Join(", ", _roots)})");

    /// <summary>Resolves the longest existing ancestor and appends the rest lexically.</summary>
    private static string ResolveExistingPrefix(string path, string field)
    {
        var current = path;
        var rest = new Stack<string>();
        while (current != "/")
        {
            try
            {
                var resolved = Libc.RealPath(current);
                return rest.Count == 0 ? resolved : (resolved.TrimEnd('/') + "/" + string.Join('/', rest));
            }
            catch (InteropException e) when (e.Errno is Errno.ENOENT or Errno.ENOTDIR)
            {
                if (IsSymlink(current))
                {
                    // A dangling symlink: where it would lead is not ours to create.
                    throw new VolumeException(VolumeErrorKind.PermissionDenied, field, $"passes through a dangling symbolic link");
                }
                rest.Push(Path.GetFileName(current));
                current = Path.GetDirectoryName(current) ?? "/";
            }
            catch (InteropException e)
            {
                throw Unresolvable(field, e.Errno);
            }
        }
        return "/" + string.Join('/', rest);
    }

    private static bool IsSymlink(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget is not null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A dead FUSE mountpoint answers ENOTCONN: it is a mountpoint, not a link. lstat needs
            // no permission on the entry itself; a parent we may not search fails later, by its own rule.
            return false;
        }
    }
}
