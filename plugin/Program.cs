// s3csi-plugin: the CSI Identity, Node and Controller services on one unix socket.
//
// Stateless and unprivileged by design: the plugin never mounts anything. Node calls become calls to
// the supervisor (which owns every s3fs and every mount on the node); Controller calls go to S3.
// Killing or upgrading this process touches no volume, and a new instance needs nothing from the old
// one: it asks the supervisor, or S3, whenever it needs to know something.
using Microsoft.Extensions.Options;
using S3Supervisor.Plugin.Hosting;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.Logging.AddJsonConsole(o =>
{
    o.IncludeScopes = false;
    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
    o.UseUtcTimestamp = true;
});
builder.Services.AddCsiPlugin(builder.Configuration);

try
{
    var app = builder.Build();
    app.MapCsiPlugin();
    S3Supervisor.Common.StartupMemory.ReleaseWhenStarted(app.Lifetime);
    await app.RunAsync().ConfigureAwait(false);
    return 0;
}
catch (OptionsValidationException e)
{
    await Console.Error.WriteLineAsync($"s3csi-plugin: invalid configuration:{Environment.NewLine}  {string.Join($"{Environment.NewLine}  ", e.Failures)}").ConfigureAwait(false);
    return 2;
}
