namespace S3Supervisor.Supervisor.Mounts;

/// <summary>Moves a file or directory tree, by rename where it can and by copy-then-delete across file systems.</summary>
internal static class StrayFiles
{
    public static void Move(string source, string destination)
    {
        var info = new FileInfo(source);
        if (info.LinkTarget is not null || !info.Attributes.HasFlag(FileAttributes.Directory))
        {
            // A file or a symlink (moved as the link itself, never followed).
            File.Move(source, destination);
            return;
        }
        try
        {
            Directory.Move(source, destination);
        }
        catch (IOException) when (!Directory.Exists(destination))
        {
            // EXDEV: the state directory is on another file system than kubelet's.
            Directory.CreateDirectory(destination);
            foreach (var entry in Directory.EnumerateFileSystemEntries(source))
            {
                Move(entry, Path.Combine(destination, Path.GetFileName(entry)));
            }
            Directory.Delete(source);
        }
    }
}
