using System.Threading.Channels;
using S3Supervisor.Api.V1;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>Fans every volume state change out to watch streams. A slow watcher loses its oldest events, never blocks a mount.</summary>
public sealed class VolumeEventHub
{
    private readonly Lock _lock = new();
    private readonly List<Channel<VolumeEvent>> _subscribers = [];

    public ChannelReader<VolumeEvent> Subscribe(out IDisposable subscription)
    {
        var channel = Channel.CreateBounded<VolumeEvent>(new BoundedChannelOptions(1024) { FullMode = BoundedChannelFullMode.DropOldest });
        lock (_lock)
        {
            _subscribers.Add(channel);
        }
        subscription = new Subscription(this, channel);
        return channel.Reader;
    }

    public void Publish(VolumeEvent volumeEvent)
    {
        lock (_lock)
        {
            foreach (var subscriber in _subscribers)
            {
                subscriber.Writer.TryWrite(volumeEvent);
            }
        }
    }

    private sealed class Subscription(VolumeEventHub hub, Channel<VolumeEvent> channel) : IDisposable
    {
        public void Dispose()
        {
            lock (hub._lock)
            {
                hub._subscribers.Remove(channel);
            }
            channel.Writer.TryComplete();
        }
    }
}
