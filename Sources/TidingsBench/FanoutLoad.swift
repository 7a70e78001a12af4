import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import TidingsServer
import TidingsStore
import TidingsTestSupport

/// Live fan-out: `clients` WebSocket connections (one user each) on servers in processes of
/// their own; a publisher appends batches addressed round-robin to those users, and every client
/// counts what it receives. Reports events delivered per second, append-to-receipt latency,
/// and the servers' resident memory per idle connection.
public struct FanoutLoad: Sendable {
    public var clients: Int
    public var events: Int
    /// Events per second the publisher offers; nil for as fast as the servers take them.
    public var rate: Double?
    public var binary: String
    public var directory: String
    public var topology: Topology
    public var progress: @Sendable (String) -> Void

    /// Where the servers are, where the publisher appends, and where the clients connect.
    public enum Topology: Sendable {
        /// 1: clients and appends on one server. 2: appends on process A, clients on process B,
        /// the two sharing the SQLite store and a Redis the tool starts.
        case sqlite(processes: Int)
        /// `nodes` nodes on the PostgreSQL database at `url`; appends go to the first. The
        /// clients spread over every node, or over the others only (`clientsOnPublisher` false).
        case postgres(url: String, nodes: Int, clientsOnPublisher: Bool)
    }

    public init(
        clients: Int, events: Int, rate: Double? = nil, binary: String, directory: String,
        topology: Topology = .sqlite(processes: 1), progress: @escaping @Sendable (String) -> Void
    ) {
        self.topology = topology
        self.clients = clients
        self.events = events
        self.rate = rate
        self.binary = binary
        self.directory = directory
        self.progress = progress
    }

    static let batchSize = 100

    /// Receipts shared by all clients: how many arrived, and a sample of latencies.
    final class Tally: Sendable {
        let received = Atomic<Int>(0)
        let caughtUp = Atomic<Int>(0)
        let latencies = Mutex<[Double]>([])
        let sentAt = Mutex<[ContinuousClock.Instant]>([])
        let lastReceipt = Mutex<ContinuousClock.Instant?>(nil)
        let nextBatch = Atomic<Int>(0)

        func receivedEvent(batch: Int?) {
            received.add(1, ordering: .relaxed)
            let now = ContinuousClock.now
            lastReceipt.withLock { $0 = now }
            guard let batch, let sent = sentAt.withLock({ batch < $0.count ? $0[batch] : nil }) else { return }
            latencies.withLock { $0.append((now - sent).seconds * 1_000_000) }
        }
    }

    public func run() async throws -> [BenchmarkFigure] {
        let limit = FileDescriptorLimit.raise()
        guard limit > clients + 1_000 else {
            throw HarnessError("the open-file limit is \(limit); \(clients) clients need more (raise the hard limit)")
        }
        let (publisherServer, servers, redis) = try startServers()
        defer {
            for server in servers where server !== publisherServer { server.stop(keepStore: true) }
            publisherServer.stop()
            redis?.kill()
        }
        let tally = Tally()
        let baseline = servers.reduce(0) { $0 + $1.residentBytes }
        let swarm = try WebSocketSwarm(port: servers[0].port) { _, text in
            if text.hasPrefix(#"{"type":"event""#) {
                tally.receivedEvent(batch: text.number(after: #""notification_id":"b"#))
            } else if text.hasPrefix(#"{"type":"caught_up""#) {
                tally.caughtUp.add(1, ordering: .relaxed)
            }
        }
        defer { swarm.stop() }
        let wave = 250
        for start in stride(from: 0, to: clients, by: wave) {
            // Client i on server i mod the servers' count.
            for (offset, server) in servers.enumerated() {
                let hellos = (start..<min(start + wave, clients)).filter { $0 % servers.count == offset }.map {
                    #"{"type":"hello","token":"\#(server.token(role: .user, subject: "f" + String($0)))"}"#
                }
                swarm.connect(hellos: hellos, port: server.port)
            }
            while tally.caughtUp.load(ordering: .relaxed) + swarm.closed.load(ordering: .relaxed)
                < min(start + wave, clients)
            {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        guard swarm.closed.load(ordering: .relaxed) == 0 else {
            throw HarnessError("\(swarm.closed.load(ordering: .relaxed)) clients could not connect")
        }
        try await Task.sleep(for: .seconds(1))
        let idle = servers.reduce(0) { $0 + $1.residentBytes }
        let perConnection = Double(idle - baseline) / Double(clients)
        progress(
            "\(clients) clients connected to \(servers.count) servers; their resident memory \(idle >> 20) MiB, \(Int(perConnection)) B per idle connection"
        )

        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let token = publisherServer.token(role: .publisher, subject: "bench")
        let batches = (events + Self.batchSize - 1) / Self.batchSize
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            let concurrency = rate == nil ? 4 : 1
            let (rate, clients, port) = (self.rate, self.clients, publisherServer.port)
            for _ in 0..<concurrency {
                group.addTask {
                    while true {
                        let batch = tally.nextBatch.add(1, ordering: .relaxed).oldValue
                        guard batch < batches else { return }
                        if let rate {
                            let due = started + .seconds(Double(batch * Self.batchSize) / rate)
                            if due > .now { try await Task.sleep(until: due, clock: .continuous) }
                        }
                        let events = (0..<Self.batchSize).map { item in
                            let index = batch * Self.batchSize + item
                            return
                                #"{"type":"notification.created","user_id":"f\#(index % clients)","data":{"notification_id":"b\#(batch)-\#(item)","title":"Fan-out \#(index)"}}"#
                        }
                        let sent = ContinuousClock.now
                        tally.sentAt.withLock { times in
                            while times.count <= batch { times.append(sent) }
                            times[batch] = sent
                        }
                        try await http.appendBatch(events, port: port, token: token)
                    }
                }
            }
            try await group.waitForAll()
        }
        let total = batches * Self.batchSize
        let deadline = ContinuousClock.now + .seconds(120)
        while tally.received.load(ordering: .relaxed) < total && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let received = tally.received.load(ordering: .relaxed)
        let end = tally.lastReceipt.withLock { $0 } ?? .now
        try await http.shutdown()
        guard received == total else { throw HarnessError("only \(received) of \(total) events arrived") }
        let latencies = Percentiles(tally.latencies.withLock { $0 })
        let setting: String
        switch topology {
        case .sqlite(let processes): setting = processes > 1 ? ", appended on another process" : ""
        case .postgres(_, let nodes, let clientsOnPublisher):
            setting =
                ", \(nodes) node\(nodes == 1 ? "" : "s") on PostgreSQL"
                + (clientsOnPublisher ? "" : ", appended on a node without clients")
        }
        let label = "\(clients) clients" + setting + (rate.map { ", offered \(Int($0)) ev/s" } ?? "")
        return [
            BenchmarkFigure(
                workload: "fan-out", metric: "\(label), delivered", unit: "ev/s",
                tidings: Double(received) / (end - started).seconds),
            BenchmarkFigure(
                workload: "fan-out", metric: "\(label), append to receipt p50", unit: "us", tidings: latencies.at(0.5),
                lowerIsBetter: true),
            BenchmarkFigure(
                workload: "fan-out", metric: "\(label), append to receipt p99", unit: "us", tidings: latencies.at(0.99),
                lowerIsBetter: true),
            BenchmarkFigure(
                workload: "fan-out", metric: "\(clients) clients, server memory per idle connection", unit: "B",
                tidings: perConnection, lowerIsBetter: true),
        ]
    }

    /// The server the publisher appends to, the servers the clients connect to, and the Redis
    /// the SQLite processes share.
    private func startServers() throws -> (ServerProcess, [ServerProcess], RedisProcess?) {
        switch topology {
        case .sqlite(let processes):
            let redis = processes > 1 ? try RedisProcess() : nil
            let redisArguments = redis.map { ["--redis", $0.url] } ?? []
            let publisher = try ServerProcess(
                binary: binary, directory: directory, arguments: ["--sync", "normal"] + redisArguments)
            guard processes > 1 else { return (publisher, [publisher], nil) }
            let server = try ServerProcess(
                binary: binary, directory: directory, arguments: ["--sync", "normal"] + redisArguments, fresh: false)
            return (publisher, [server], redis)
        case .postgres(let url, let nodes, let clientsOnPublisher):
            precondition(nodes >= 1 && (clientsOnPublisher || nodes >= 2), "clients need a node")
            let started = try (0..<nodes).map { _ in try ServerProcess(binary: binary, postgres: url) }
            return (started[0], clientsOnPublisher ? started : Array(started.dropFirst()), nil)
        }
    }
}
