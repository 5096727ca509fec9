using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace S3Supervisor.IntegrationTests.Recovery;

/// <summary>Writes log lines to the test's output, so that a run shows what the repair did and how long it took.</summary>
internal sealed class TestOutputLogger<T>(ITestOutputHelper output) : ILogger<T>
{
    public List<string> Lines { get; } = [];

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        var line = $"{logLevel} [{eventId.Id}] {formatter(state, exception)}";
        lock (Lines)
        {
            Lines.Add(line);
        }
        try
        {
            output.WriteLine(line);
        }
        catch (InvalidOperationException)
        {
            // the test already finished
        }
    }
}
