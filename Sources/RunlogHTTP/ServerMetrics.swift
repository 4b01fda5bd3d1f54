import EventLog
import Prometheus
import Synchronization

/// The server's Prometheus metrics: requests by route and status, a latency histogram per
/// route, and, read from the store when scraped, the log head and the writer's group commits.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    static let latencyBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
    ]

    static var requests: MetricNameDescriptor { MetricNameDescriptor(
        namespace: "runlog", subsystem: "http", metricName: "requests", unitName: "total",
        helpText: "HTTP requests answered, by method, route and status"
    ) }
    static var latency: MetricNameDescriptor { MetricNameDescriptor(
        namespace: "runlog", subsystem: "http", metricName: "request_duration", unitName: "seconds",
        helpText: "Time from request head to response, by route"
    ) }

    private struct Series: Hashable {
        var method: String
        var route: String
        var status: Int
    }
    /// The counter and histogram of each method, route and status seen, so a request looks its
    /// pair up in one dictionary instead of asking the registry (which builds and compares the
    /// label lists) twice.
    private let series = Mutex([Series: (Counter, DurationHistogram)]())

    func record(method: String, route: String, status: Int, duration: Duration) {
        let key = Series(method: method, route: route, status: status)
        let (counter, histogram) = series.withLock { series in
            if let known = series[key] { return known }
            let made = (
                registry.makeCounter(descriptor: Self.requests,
                                     labels: [("method", method), ("route", route), ("status", String(status))]),
                registry.makeDurationHistogram(descriptor: Self.latency, labels: [("route", route)],
                                               buckets: Self.latencyBuckets)
            )
            series[key] = made
            return made
        }
        counter.increment()
        histogram.record(duration)
    }

    /// The exposition text: the registry's metrics, then the store's.
    func render(store: any EventStore) -> String {
        var text = registry.emitToString()
        let head = (try? store.head().position) ?? 0
        text += "# TYPE runlog_log_head_position gauge\nrunlog_log_head_position \(head)\n"
        let stats = store.writerStatistics
        text += "# TYPE runlog_append_commits_total counter\nrunlog_append_commits_total \(stats.commits)\n"
        text += "# TYPE runlog_append_events_total counter\nrunlog_append_events_total \(stats.events)\n"
        text += "# TYPE runlog_append_batch_requests histogram\n"
        var cumulative: UInt64 = 0
        for (bound, count) in zip(WriterStatistics.batchSizeBounds, stats.batchSizes) {
            cumulative += count
            let le = bound == Int.max ? "+Inf" : String(bound)
            text += "runlog_append_batch_requests_bucket{le=\"\(le)\"} \(cumulative)\n"
        }
        text += "runlog_append_batch_requests_sum \(stats.requests)\n"
        text += "runlog_append_batch_requests_count \(stats.commits)\n"
        return text
    }
}
