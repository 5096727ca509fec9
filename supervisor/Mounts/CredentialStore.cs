using S3Supervisor.Api.V1;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// Per-volume credential files in a private directory (0700) on tmpfs. Files are created 0600 with
/// O_EXCL under a temporary name and renamed into place, so a reader never sees a partial file and no
/// other user ever can. Secrets live only in these files: never on argv, in the environment or a log.
/// </summary>
public sealed class CredentialStore
{
    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode PrivateFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public CredentialStore(string directory)
    {
        Directory = directory;
    }

    public string Directory { get; }

    public void EnsureDirectory()
    {
        System.IO.Directory.CreateDirectory(Directory, DirectoryMode);
        File.SetUnixFileMode(Directory, DirectoryMode);
    }

    /// <summary>The private directory of one volume (its passwd file).</summary>
    public string VolumeDirectory(string volumeId) => Path.Combine(Directory, FileName(volumeId));

    public string PasswdFile(string volumeId) => Path.Combine(VolumeDirectory(volumeId), "passwd");

    /// <summary>Whether the volume's passwd file is here (it may have outlived the supervisor that wrote it).</summary>
    public bool Has(string volumeId) => File.Exists(PasswdFile(volumeId));

    /// <summary>
    /// Writes the credentials of a volume and returns the passwd file path; refuses what a passwd file
    /// line cannot hold, session tokens included (<see cref="CredentialChecks.CheckStorable"/>).
    /// </summary>
    public string Write(string volumeId, Credentials credentials)
    {
        CredentialChecks.CheckStorable(credentials);
        EnsureDirectory();
        var dir = VolumeDirectory(volumeId);
        System.IO.Directory.CreateDirectory(dir, DirectoryMode);
        File.SetUnixFileMode(dir, DirectoryMode);
        var passwd = PasswdFile(volumeId);
        WriteAtomically(passwd, $"{credentials.AccessKeyId}:{credentials.SecretAccessKey}\n");
        return passwd;
    }

    /// <summary>True when stored credentials equal these (a repeated stage with rotated keys rewrites them).</summary>
    public bool Matches(string volumeId, Credentials credentials)
    {
        try
        {
            return File.ReadAllText(PasswdFile(volumeId)) == $"{credentials.AccessKeyId}:{credentials.SecretAccessKey}\n";
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Removes every volume's passwd file but those of <paramref name="keep"/> (volume ids).</summary>
    public void RemoveAllExcept(IReadOnlySet<string> keep)
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            return;
        }
        var kept = keep.Select(FileName).ToHashSet(StringComparer.Ordinal);
        foreach (var entry in System.IO.Directory.EnumerateDirectories(Directory).Where(e => !kept.Contains(Path.GetFileName(e))))
        {
            System.IO.Directory.Delete(entry, recursive: true);
        }
    }

    public void Remove(string volumeId)
    {
        var dir = VolumeDirectory(volumeId);
        if (System.IO.Directory.Exists(dir))
        {
            System.IO.Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A directory name for a volume id: the id itself when it is plainly safe, else a hash of it.</summary>
    public static string FileName(string volumeId) =>
        volumeId.Length <= 64 && volumeId is not "." and not ".." && !volumeId.StartsWith("h-", StringComparison.Ordinal)
            && volumeId.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_')
            ? volumeId
            : "h-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(volumeId)));

    private static void WriteAtomically(string path, string content)
    {
        var temp = path + ".tmp";
        File.Delete(temp);
        using (var stream = new FileStream(temp, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = PrivateFileMode,
            Options = FileOptions.WriteThrough,
        }))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(content);
        }
        File.Move(temp, path, overwrite: true);
    }
}
