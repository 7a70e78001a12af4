import Metrics
import Prometheus
import TidingsFanout
import TidingsStore

typealias Counter = Metrics.Counter
typealias Gauge = Metrics.Gauge
typealias Timer = Metrics.Timer

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}

/// The server's metrics, in swift-metrics types backed by this server's own Prometheus registry
/// (so several servers in one process, as in tests, do not share counters). No label ever holds
/// a user or notification id.
public final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory

    private let appendedEvents: Counter
    private let appendRequests: Counter
    private let appendLatency: Timer
    private let eventsDelivered: Counter
    private let catchUps: Counter
    private let connectionsOpened: Counter
    private let connections: Gauge
    private let rebuildProcessed: Gauge
    private let rebuildTotal: Gauge
    private let snoozesEndedTotal: Counter

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            "tidings_append_duration_seconds": [
                .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
                .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                .milliseconds(250), .milliseconds(500), .seconds(1),
            ],
            // Whole requests, streamed exports included.
            "tidings_http_request_duration_seconds": [
                .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50),
                .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30), .seconds(120),
            ],
        ]
        self.factory = factory
        appendedEvents = Counter(label: "tidings_appended_events_total", factory: factory)
        appendRequests = Counter(label: "tidings_append_requests_total", factory: factory)
        appendLatency = Timer(label: "tidings_append_duration_seconds", factory: factory)
        eventsDelivered = Counter(label: "tidings_events_delivered_total", factory: factory)
        catchUps = Counter(label: "tidings_catch_ups_total", factory: factory)
        connectionsOpened = Counter(label: "tidings_connections_opened_total", factory: factory)
        connections = Gauge(label: "tidings_connections", factory: factory)
        rebuildProcessed = Gauge(label: "tidings_rebuild_processed_events", factory: factory)
        rebuildTotal = Gauge(label: "tidings_rebuild_total_events", factory: factory)
        snoozesEndedTotal = Counter(label: "tidings_snoozes_ended_total", factory: factory)
    }

    func appended(events: Int, duration: Duration) {
        appendRequests.increment()
        if events > 0 { appendedEvents.increment(by: events) }
        appendLatency.recordNanoseconds(duration.nanoseconds)
    }

    /// `notification.unsnoozed` events this process's sweeper appended.
    func snoozesEnded(_ count: Int) { if count > 0 { snoozesEndedTotal.increment(by: Int64(count)) } }

    func delivered(_ count: Int = 1) { eventsDelivered.increment(by: Int64(count)) }
    func caughtUp() { catchUps.increment() }
    func opened() { connectionsOpened.increment() }

    /// Gauges read at scrape time.
    func observe(connections count: Int, rebuildProcessed processed: Int64?, rebuildTotal total: Int64?) {
        connections.record(count)
        if let processed, let total {
            rebuildProcessed.record(processed)
            rebuildTotal.record(total)
        }
    }

    /// The Redis bridge's state, read at scrape time.
    func observe(redis status: RedisBridge.Status) {
        for (role, connected) in [("publisher", status.publisherConnected), ("subscriber", status.subscriberConnected)]
        {
            Gauge(label: "tidings_redis_connected", dimensions: [("role", role)], factory: factory).record(
                connected ? 1 : 0)
        }
        for (name, value) in [
            ("tidings_redis_published_messages", status.published), ("tidings_redis_received_events", status.received),
            ("tidings_redis_dropped_messages", status.dropped), ("tidings_redis_rejected_messages", status.rejected),
            ("tidings_redis_connections", status.reconnects),
        ] {
            Gauge(label: name, factory: factory).record(value)
        }
    }

    /// A request, by the route pattern the router matched (never the path itself, which may
    /// carry a user id), timed until its body was written.
    func request(route: String, method: String, status: Int, duration: Duration) {
        Counter(
            label: "tidings_http_requests_total",
            dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory
        ).increment()
        Timer(
            label: "tidings_http_request_duration_seconds", dimensions: [("route", route), ("method", method)],
            factory: factory
        ).recordNanoseconds(duration.nanoseconds)
    }

    /// A failure of the store's own I/O (`StoreFault`), by operation.
    func storeFault(_ operation: String) {
        Counter(label: "tidings_store_io_errors_total", dimensions: [("operation", operation)], factory: factory)
            .increment()
    }

    /// The log's history changed under this node (a failover lost commits it had delivered).
    func historyForked() {
        Counter(label: "tidings_history_forks_total", factory: factory).increment()
    }

    /// An HTTP connection closed because a phase outlasted its deadline (`HTTPDeadlines`).
    func deadlineClosed(phase: String) {
        Counter(label: "tidings_http_deadline_closes_total", dimensions: [("phase", phase)], factory: factory)
            .increment()
    }

    func closed(code: UInt16) {
        Counter(label: "tidings_connections_closed_total", dimensions: [("code", String(code))], factory: factory)
            .increment()
    }

    /// Prometheus text format: the registry, then the store's read lanes. The lanes keep their
    /// own cumulative histograms (the store knows nothing of metrics libraries), written here
    /// as the text format has them.
    func render(readLanes: [ReadLaneStatistics] = []) -> [UInt8] {
        var bytes = registry.emitToBuffer()
        guard !readLanes.isEmpty else { return bytes }
        var text =
            "# HELP tidings_store_read_wait_seconds Time a read waited for a connection of its lane and a thread.\n"
        text += "# TYPE tidings_store_read_wait_seconds histogram\n"
        for lane in readLanes {
            let waits = lane.waits
            for (bound, count) in zip(ReadWaitHistogram.bounds, waits.cumulativeCounts) {
                text +=
                    "tidings_store_read_wait_seconds_bucket{lane=\"\(lane.lane)\",le=\"\(bound.seconds)\"} \(count)\n"
            }
            text += "tidings_store_read_wait_seconds_bucket{lane=\"\(lane.lane)\",le=\"+Inf\"} \(waits.count)\n"
            text += "tidings_store_read_wait_seconds_sum{lane=\"\(lane.lane)\"} \(waits.total.seconds)\n"
            text += "tidings_store_read_wait_seconds_count{lane=\"\(lane.lane)\"} \(waits.count)\n"
        }
        for (name, help, value) in [
            ("tidings_store_reads_running", "Reads running now, by lane.", \ReadLaneStatistics.running),
            ("tidings_store_reads_waiting", "Reads waiting for a connection now, by lane.", \.waiting),
            ("tidings_store_read_connections_max", "Connections of each read lane.", \.connectionsMax),
        ] {
            text += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
            for lane in readLanes { text += "\(name){lane=\"\(lane.lane)\"} \(lane[keyPath: value])\n" }
        }
        bytes.append(contentsOf: text.utf8)
        return bytes
    }
}
