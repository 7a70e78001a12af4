import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TidingsServer
import TidingsStore

/// Single-event appends through `POST /v1/events` from `clients` concurrent keep-alive
/// connections, against a server in its own process.
public struct HTTPLoad: Sendable {
    public var events: Int
    public var clients: Int
    public var binary: String
    public var directory: String

    public init(events: Int, clients: Int, binary: String, directory: String) {
        self.events = events
        self.clients = clients
        self.binary = binary
        self.directory = directory
    }

    public func run(sync: String = "full") async throws -> [BenchmarkFigure] {
        let server = try ServerProcess(binary: binary, directory: directory, arguments: ["--sync", sync])
        defer { server.stop() }
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = clients
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let token = server.token(role: .publisher, subject: "bench")
        var generator = CorpusGenerator()
        let bodies = (0..<events).map { _ in generator.next().json }
        let url = "http://127.0.0.1:\(server.port)/v1/events"
        let clients = self.clients
        let started = ContinuousClock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for worker in 0..<clients {
                group.addTask {
                    var samples: [Double] = []
                    var index = worker
                    while index < bodies.count {
                        var request = HTTPClientRequest(url: url)
                        request.method = .POST
                        request.headers.add(name: "Authorization", value: "Bearer \(token)")
                        request.headers.add(name: "Content-Type", value: "application/json")
                        request.body = .bytes(ByteBuffer(bytes: bodies[index]))
                        let sent = ContinuousClock.now
                        let response = try await client.execute(request, timeout: .seconds(60))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        guard response.status == .created || response.status == .ok else {
                            throw BenchError("append failed with \(response.status)")
                        }
                        samples.append((ContinuousClock.now - sent).seconds * 1_000_000)
                        index += clients
                    }
                    return samples
                }
            }
            var all: [Double] = []
            for try await samples in group { all += samples }
            return all
        }
        let seconds = (ContinuousClock.now - started).seconds
        try await client.shutdown()
        let percentiles = Percentiles(latencies)
        let label = "batch 1, \(clients) keep-alive clients, \(sync.uppercased())"
        return [
            BenchmarkFigure(workload: "http append", metric: label, unit: "ev/s", tidings: Double(events) / seconds),
            BenchmarkFigure(
                workload: "http append", metric: "\(label), p50", unit: "us", tidings: percentiles.at(0.5),
                lowerIsBetter: true),
            BenchmarkFigure(
                workload: "http append", metric: "\(label), p99", unit: "us", tidings: percentiles.at(0.99),
                lowerIsBetter: true),
        ]
    }
}
