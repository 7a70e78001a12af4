import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import TidingsServer
import TidingsTestSupport

/// W10: `clients` WebSocket clients on one server, one user each, connected from several
/// loopback source addresses (one address has about 28,000 ephemeral ports). Measures the
/// server's resident memory with all of them connected and idle, then appends one event for
/// each user and times until every client has its event, checking that none is missing or
/// doubled.
struct ManyClients {
    struct Figures {
        var residentBytes: Int
        var bytesPerClient: Double
        var connectSeconds: Double
        var deliverySeconds: Double
    }

    let clients: Int
    let binary: String
    let directory: String
    let progress: @Sendable (String) -> Void
    /// Source addresses 127.0.0.2, 127.0.0.3, ...: fewer than 20,000 clients each, the
    /// server's default bound per address.
    var sourceAddresses: Int { max(1, (clients + 14_999) / 15_000) }

    /// What each client received, touched only on the swarm's reader thread.
    private final class Receipts: @unchecked Sendable {
        var events: [UInt8]
        let caughtUp = Atomic<Int>(0)
        let received = Atomic<Int>(0)
        let lastReceipt = Mutex<ContinuousClock.Instant?>(nil)
        /// The publisher's next batch.
        let nextBatch = Atomic<Int>(0)

        init(clients: Int) { events = [UInt8](repeating: 0, count: clients) }
    }

    /// The most clients this machine allows: the server and this process each hold one
    /// descriptor per client, and the open-file limit is per process (raised to what W10 needs
    /// when the process may raise its hard limit: root with CAP_SYS_RESOURCE).
    static func clientsAllowed(wanted: Int) -> Int {
        let limit = FileDescriptorLimit.raise(atLeast: wanted + 2_000)
        return min(wanted, limit - 2_000)
    }

    func run() async throws -> Figures {
        let limit = FileDescriptorLimit.raise(atLeast: clients + 2_000)
        guard limit >= clients + 2_000 else {
            throw HarnessError("the open-file limit is \(limit); \(clients) clients need \(clients + 2_000)")
        }
        let server = try ServerProcess(binary: binary, directory: directory, arguments: ["--sync", "normal"])
        defer { server.stop() }
        let baseline = server.residentBytes
        let receipts = Receipts(clients: clients)
        let swarm = try WebSocketSwarm(port: server.port) { client, text in
            if text.hasPrefix(#"{"type":"event""#) {
                receipts.events[client] &+= 1
                receipts.received.add(1, ordering: .relaxed)
                receipts.lastReceipt.withLock { $0 = .now }
            } else if text.hasPrefix(#"{"type":"caught_up""#) {
                receipts.caughtUp.add(1, ordering: .relaxed)
            }
        }
        defer { swarm.stop() }

        let connectStarted = ContinuousClock.now
        let wave = 1_000
        for start in stride(from: 0, to: clients, by: wave) {
            let range = start..<min(start + wave, clients)
            for source in 0..<sourceAddresses {
                let hellos = range.filter { $0 % sourceAddresses == source }.map { client in
                    let token = server.token(role: .user, subject: "m\(client)")
                    return #"{"type":"hello","token":"\#(token)"}"#
                }
                swarm.connect(hellos: hellos, source: "127.0.0.\(2 + source)")
            }
            let deadline = ContinuousClock.now + .seconds(60)
            while receipts.caughtUp.load(ordering: .relaxed) + swarm.closed.load(ordering: .relaxed) < range.upperBound
            {
                guard ContinuousClock.now < deadline else {
                    throw HarnessError("clients \(range) did not catch up within 60 s")
                }
                try await Task.sleep(for: .milliseconds(5))
            }
            if range.upperBound % 10_000 == 0 || range.upperBound == clients {
                progress("W10: \(range.upperBound) clients connected, server \(server.residentBytes >> 20) MiB")
            }
        }
        guard swarm.closed.load(ordering: .relaxed) == 0 else {
            throw HarnessError(
                "\(swarm.closed.load(ordering: .relaxed)) clients were closed, \(swarm.failed.load(ordering: .relaxed)) of them failing to connect"
            )
        }
        let connectSeconds = (ContinuousClock.now - connectStarted).seconds
        try await Task.sleep(for: .seconds(2))
        let resident = server.residentBytes
        let perClient = Double(resident - baseline) / Double(clients)
        progress("W10: \(clients) clients idle, server \(resident >> 20) MiB, \(Int(perClient)) B each")

        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let token = server.token(role: .publisher, subject: "bench")
        let batchSize = 1_000
        let batches = (clients + batchSize - 1) / batchSize
        let receiptsForBatches = receipts
        let (port, clients) = (server.port, self.clients)
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    while true {
                        let batch = receiptsForBatches.nextBatch.add(1, ordering: .relaxed).oldValue
                        guard batch < batches else { return }
                        let users = batch * batchSize..<min((batch + 1) * batchSize, clients)
                        try await http.appendBatch(
                            users.map {
                                #"{"type":"notification.created","user_id":"m\#($0)","data":{"notification_id":"w-\#($0)","title":"For you"}}"#
                            }, port: port, token: token)
                    }
                }
            }
            try await group.waitForAll()
        }
        try await http.shutdown()
        let deadline = ContinuousClock.now + .seconds(60)
        while receipts.received.load(ordering: .relaxed) < clients && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        // Anything doubled arrives right behind the rest.
        try await Task.sleep(for: .milliseconds(500))
        let end = receipts.lastReceipt.withLock { $0 } ?? .now
        swarm.stop()  // the reader thread is done with `receipts.events`
        let counts = receipts.events
        let missing = counts.filter { $0 == 0 }.count
        let doubled = counts.filter { $0 > 1 }.count
        guard missing == 0 && doubled == 0 else {
            throw HarnessError("\(missing) clients missed their event, \(doubled) got it more than once")
        }
        return Figures(
            residentBytes: resident, bytesPerClient: perClient, connectSeconds: connectSeconds,
            deliverySeconds: (end - started).seconds)
    }
}
