import Foundation
import TidingsServer
import TidingsStore
import TidingsTestSupport

/// Single-event appends through `POST /v1/events` from `clients` concurrent keep-alive
/// connections, against a server in its own process. The connections are raw sockets driven by
/// one poll(2) thread, each with one request in flight, as cheap as the Redis peer's clients.
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
        let token = server.token(role: .publisher, subject: "bench")
        var generator = CorpusGenerator()
        let requests = (0..<events).map { _ in
            let body = generator.next().json
            let head =
                "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
            return Array(head.utf8) + body
        }
        let (port, clients) = (server.port, self.clients)
        let (seconds, latencies) = try await Blocking.run {
            try KeepAliveClients.run(port: port, clients: clients, requests: requests)
        }
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

/// Keep-alive HTTP/1.1 connections, each sending its next request when the previous response
/// has arrived, all served by the calling thread with poll(2).
enum KeepAliveClients {
    private struct Connection {
        var descriptor: Int32
        var next: Int
        var sentAt = ContinuousClock.now
        var buffer: [UInt8] = []
    }

    /// Sends `requests` (complete request bytes) spread over `clients` connections; returns the
    /// elapsed seconds and each request's latency in microseconds. Throws on any status but 2xx.
    static func run(port: Int, clients: Int, requests: [[UInt8]]) throws -> (Double, [Double]) {
        var connections: [Connection] = []
        var polled: [pollfd] = []
        for index in 0..<min(clients, requests.count) {
            let descriptor = try LoopbackSocket.connect(port: port)
            connections.append(Connection(descriptor: descriptor, next: index))
            polled.append(pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0))
        }
        defer { for connection in connections { close(connection.descriptor) } }
        var latencies: [Double] = []
        latencies.reserveCapacity(requests.count)
        let started = ContinuousClock.now
        for index in connections.indices {
            connections[index].sentAt = .now
            try LoopbackSocket.writeAll(connections[index].descriptor, requests[connections[index].next])
        }
        var open = connections.count
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while open > 0 {
            guard poll(&polled, nfds_t(polled.count), 1_000) > 0 else { continue }
            for index in polled.indices where polled[index].revents != 0 {
                polled[index].revents = 0
                let count = chunk.withUnsafeMutableBytes {
                    read(connections[index].descriptor, $0.baseAddress, $0.count)
                }
                guard count > 0 else {
                    if count < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                    throw HarnessError("the server closed a keep-alive connection")
                }
                connections[index].buffer += chunk[0..<count]
                guard let status = try completeResponse(&connections[index].buffer) else { continue }
                guard (200..<300).contains(status) else { throw HarnessError("append failed with status \(status)") }
                latencies.append((ContinuousClock.now - connections[index].sentAt).seconds * 1_000_000)
                connections[index].next += connections.count
                if connections[index].next < requests.count {
                    connections[index].sentAt = .now
                    try LoopbackSocket.writeAll(connections[index].descriptor, requests[connections[index].next])
                } else {
                    polled[index].fd = -1
                    open -= 1
                }
            }
        }
        return ((ContinuousClock.now - started).seconds, latencies)
    }

    /// The status of the response at the start of `buffer` once all of it has arrived (and
    /// removes it); nil while it is incomplete.
    private static func completeResponse(_ buffer: inout [UInt8]) throws -> Int? {
        guard
            let headerEnd = buffer.indices.dropFirst(3).first(where: {
                buffer[$0] == 10 && buffer[$0 - 1] == 13 && buffer[$0 - 2] == 10 && buffer[$0 - 3] == 13
            })
        else { return nil }
        let head = String(decoding: buffer[0...headerEnd], as: UTF8.self)
        let lines = head.split(separator: "\r\n")
        guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ")[1]) else {
            throw HarnessError("not an HTTP response")
        }
        let length = lines.dropFirst().compactMap { line -> Int? in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
            return Int(parts[1].trimmingCharacters(in: .whitespaces))
        }.first
        guard let length else { throw HarnessError("a response without Content-Length") }
        guard buffer.count >= headerEnd + 1 + length else { return nil }
        buffer.removeFirst(headerEnd + 1 + length)
        return status
    }
}
