/// How long reads of one lane waited before they ran: for a connection of the lane, and then
/// for a dispatch thread. Cumulative since the store opened, in the buckets a Prometheus
/// histogram has, so an operator sees queueing apart from the reads' own work.
public struct ReadWaitHistogram: Sendable {
    package init() {}

    /// Upper bounds of the buckets; a wait past the last one is counted only in `count`.
    public static let bounds: [Duration] = [
        .microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(500),
        .seconds(1), .seconds(5),
    ]

    /// Reads that waited at most `bounds[i]`, for each i (cumulative, as Prometheus has them).
    public private(set) var cumulativeCounts = [Int](repeating: 0, count: bounds.count)
    public private(set) var count = 0
    public private(set) var total = Duration.zero
    /// The longest wait so far.
    public private(set) var longest = Duration.zero

    package mutating func record(_ wait: Duration) {
        count += 1
        total += wait
        longest = max(longest, wait)
        // Every bucket from the smallest bound at or above the wait up to the last.
        var index = Self.bounds.count - 1
        while index >= 0 && wait <= Self.bounds[index] {
            cumulativeCounts[index] += 1
            index -= 1
        }
    }
}

/// One read lane as it stands: `Store.readLaneStatistics`.
public struct ReadLaneStatistics: Sendable {
    /// "short" (unread, pages, stream starts and replays, the log watcher, stats) or "scan"
    /// (exports, verification, rebuild).
    public let lane: String
    public let connectionsMax: Int
    /// Reads running now.
    public let running: Int
    /// Reads waiting for a connection now.
    public let waiting: Int
    public let waits: ReadWaitHistogram
    package init(lane: String, connectionsMax: Int, running: Int, waiting: Int, waits: ReadWaitHistogram) {
        self.lane = lane
        self.connectionsMax = connectionsMax
        self.running = running
        self.waiting = waiting
        self.waits = waits
    }
}
