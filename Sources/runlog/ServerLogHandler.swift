import Logging

/// The server's log handler: swift-log's `StreamLogHandler` on standard error, with the logger's
/// metadata kept here instead of in it.
///
/// `StreamLogHandler` renders its whole metadata to text each time one value is set, and
/// Hummingbird sets a request id on the logger of every request: under load that rendering took
/// about 3% of the server's CPU per command, for lines that at `warning` are never written. Here
/// setting a value only stores it; the metadata reaches the stream handler with a line that is
/// written, so the lines read exactly as before.
struct ServerLogHandler: LogHandler {
    private var stream: StreamLogHandler
    var metadata: Logger.Metadata = [:]

    init(label: String, level: Logger.Level) {
        stream = StreamLogHandler.standardError(label: label)
        stream.logLevel = level
    }

    var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { stream.metadataProvider }
        set { stream.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        guard !metadata.isEmpty else { return stream.log(event: event) }
        var event = event
        // A value given with the line wins over the logger's, as in StreamLogHandler.
        event.metadata = metadata.merging(event.metadata ?? [:]) { _, given in given }
        stream.log(event: event)
    }
}
