import Foundation
import TidingsTestSupport

/// P6 and P7: Tidings nodes on one PostgreSQL, each in a process of its own, under live fan-out.
/// P7 spreads the WebSocket clients over three nodes and compares the events delivered per
/// second with the same clients on one node, in the same run (runs alternate which goes first).
/// P6 appends on one node while the clients are on the two others, first as fast as the nodes
/// take it, then at half that rate, where the 99th percentile from append to receipt counts.
/// Every load gets a fresh database.
public struct NodesBenchmark: Sendable {
    public var clients: Int
    public var events: Int
    public var runs: Int
    /// The cluster's admin URL; each load makes its database there.
    public var adminURL: String
    public var binary: String
    public var progress: @Sendable (String) -> Void

    public init(
        clients: Int, events: Int, runs: Int, adminURL: String, binary: String,
        progress: @escaping @Sendable (String) -> Void
    ) {
        self.clients = clients
        self.events = events
        self.runs = runs
        self.adminURL = adminURL
        self.binary = binary
        self.progress = progress
    }

    public func run() async throws -> [BenchmarkFigure] {
        var three: [Double] = []
        var one: [Double] = []
        var sustained: [Double] = []
        var p99: [Double] = []
        for run in 0..<runs {
            for nodes in run % 2 == 0 ? [3, 1] : [1, 3] {
                let figures = try await load(nodes: nodes, clientsOnPublisher: true)
                let delivered = figures[0].tidings
                progress(
                    "run \(run + 1): P7: \(clients) clients on \(nodes) node(s): \(Int(delivered)) ev/s delivered, append to receipt p50 \(Int(figures[1].tidings / 1_000)) ms, p99 \(Int(figures[2].tidings / 1_000)) ms"
                )
                if nodes == 3 { three.append(delivered) } else { one.append(delivered) }
            }
            let full = try await load(nodes: 3, clientsOnPublisher: false)[0].tidings
            let half = try await load(nodes: 3, clientsOnPublisher: false, rate: full / 2)
            sustained.append(full)
            p99.append(half[2].tidings / 1_000)
            // The same rate with the clients on the node that appends, for comparison.
            let local = try await load(nodes: 1, clientsOnPublisher: true, rate: full / 2)
            progress(
                "run \(run + 1): P6: \(Int(full)) ev/s sustained; at \(Int(full / 2)) ev/s, append to receipt p50 \(Int(half[1].tidings / 1_000)) ms, p99 \(Int(half[2].tidings / 1_000)) ms (on the appending node itself: p50 \(Int(local[1].tidings / 1_000)) ms, p99 \(Int(local[2].tidings / 1_000)) ms)"
            )
        }
        var p7 = BenchmarkFigure(
            workload: "P7 fan-out", metric: "\(clients) clients over 3 nodes, delivered (vs the same on 1 node)",
            unit: "ev/s", tidings: PeerBenchmark.median(three), peer: PeerBenchmark.median(one), peerName: "1 node",
            lowerIsBetter: false)
        p7.floor = .ratioAtLeast(0.8)
        var p6 = BenchmarkFigure(
            workload: "P6 latency",
            metric:
                "appends on 1 node, \(clients) clients on 2 others, p99 at half of \(Int(PeerBenchmark.median(sustained))) ev/s",
            unit: "ms", tidings: PeerBenchmark.median(p99), lowerIsBetter: true)
        p6.floor = .atMost(50)
        return [p6, p7]
    }

    /// One fan-out load on `nodes` fresh nodes of a fresh database.
    private func load(nodes: Int, clientsOnPublisher: Bool, rate: Double? = nil) async throws -> [BenchmarkFigure] {
        let cluster = PostgresCluster(adminURL: adminURL)
        let url = try cluster.makeDatabase(prefix: "tidings_bench_nodes")
        defer { cluster.dropDatabase(url) }
        let events = rate.map { max(self.events / 2, Int($0 * 5)) } ?? self.events
        let load = FanoutLoad(
            clients: clients, events: events, rate: rate, binary: binary,
            directory: NSTemporaryDirectory() + "tidings-bench-nodes",
            topology: .postgres(url: url, nodes: nodes, clientsOnPublisher: clientsOnPublisher)
        ) { _ in }
        return try await load.run()
    }
}
