import Foundation
import Synchronization
import TidingsFanout
public import TidingsTestSupport

/// The peer: Redis 7, started by the harness with AOF on, driven through hiredis from this
/// binary on the same corpus. Per-user streams are one stream key per user (`XADD`/`XRANGE`);
/// fan-out is Pub/Sub to hiredis subscribers. Every call blocks; run them off the cooperative
/// pool with `Blocking.run`.
public final class RedisPeer: Sendable {
    public let redis: RedisProcess

    public init() throws {
        // Redis takes its client limit from the open-file limit it inherits.
        FileDescriptorLimit.raise()
        redis = try RedisProcess(arguments: [
            "--appendonly", "yes", "--appendfsync", "everysec", "--maxclients", "20000",
        ])
    }

    func connection() throws -> RedisConnection {
        try RedisConnection(host: "127.0.0.1", port: redis.port, timeout: .seconds(30))
    }

    /// Durability matched to ours: `always` against `synchronous=FULL`, `everysec` against NORMAL.
    func reset(appendfsync: String) throws {
        let admin = try connection()
        _ = try admin.command(["FLUSHALL"])
        _ = try admin.command(["CONFIG", "SET", "appendfsync", appendfsync])
        // Compact the AOF so each run starts from a small file; one rewrite at a time.
        try waitForRewrite(admin)
        _ = try admin.command(["BGREWRITEAOF"])
        try waitForRewrite(admin)
    }

    private func waitForRewrite(_ admin: RedisConnection) throws {
        for _ in 0..<600 {
            guard case .string(let info) = try admin.command(["INFO", "persistence"]) else { return }
            let text = String(decoding: info, as: UTF8.self)
            if text.contains("aof_rewrite_in_progress:0") && text.contains("aof_rewrite_scheduled:0") { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw HarnessError("Redis is still rewriting its AOF after 30 s")
    }

    static func streamKey(_ user: String) -> [UInt8] { Array(("user:" + user).utf8) }

    /// W1 peer: single `XADD`s into per-user streams from `clients` connections at once.
    func concurrentAppends(_ corpus: [CorpusGenerator.Event], clients: Int) throws -> Double {
        try reset(appendfsync: "always")
        let failures = SharedCount()
        let ready = DispatchGroup()
        let finished = DispatchGroup()
        let go = DispatchSemaphore(value: 0)
        let port = redis.port
        // One thread and one connection per client, as 64 application servers would have.
        for worker in 0..<clients {
            ready.enter()
            finished.enter()
            Thread {
                defer { finished.leave() }
                guard let client = try? RedisConnection(host: "127.0.0.1", port: port, timeout: .seconds(30)) else {
                    failures.add(1)
                    ready.leave()
                    return
                }
                ready.leave()
                go.wait()
                var index = worker
                while index < corpus.count {
                    let event = corpus[index]
                    do {
                        _ = try client.command([
                            Array("XADD".utf8), Self.streamKey(event.userID), Array("*".utf8), Array("e".utf8),
                            event.json,
                        ])
                    } catch {
                        failures.add(1)
                    }
                    index += clients
                }
            }.start()
        }
        ready.wait()
        let started = ContinuousClock.now
        for _ in 0..<clients { go.signal() }
        finished.wait()
        let seconds = (ContinuousClock.now - started).seconds
        guard failures.value == 0 else { throw HarnessError("redis XADD failed \(failures.value) times") }
        return Double(corpus.count) / seconds
    }

    /// W2 peer: `XADD`s pipelined `depth` deep from one connection.
    func pipelinedAppends(_ corpus: [CorpusGenerator.Event], depth: Int) throws -> Double {
        try reset(appendfsync: "everysec")
        let client = try connection()
        let started = ContinuousClock.now
        var index = 0
        while index < corpus.count {
            let end = min(index + depth, corpus.count)
            for event in corpus[index..<end] {
                try client.append([
                    Array("XADD".utf8), Self.streamKey(event.userID), Array("*".utf8), Array("e".utf8), event.json,
                ])
            }
            try client.flush()
            for _ in index..<end { _ = try client.nextReply() }
            index = end
        }
        return Double(corpus.count) / (ContinuousClock.now - started).seconds
    }

    /// W3 peer: `used_memory` per entry of one stream holding the corpus.
    func memoryPerEntry(_ corpus: [CorpusGenerator.Event]) throws -> Double {
        try reset(appendfsync: "everysec")
        let client = try connection()
        let before = try usedMemory(client)
        try load(corpus, into: client) { _ in Array("all".utf8) }
        return Double(try usedMemory(client) - before) / Double(corpus.count)
    }

    private func usedMemory(_ client: RedisConnection) throws -> Int {
        guard case .string(let text) = try client.command(["INFO", "memory"]) else { return 0 }
        let line = String(decoding: text, as: UTF8.self).split(separator: "\r\n").first { $0.hasPrefix("used_memory:") }
        return line.flatMap { Int($0.dropFirst("used_memory:".count)) } ?? 0
    }

    /// Appends the corpus pipelined, returning the entry ids.
    @discardableResult
    private func load(
        _ corpus: [CorpusGenerator.Event], into client: RedisConnection, key: (CorpusGenerator.Event) -> [UInt8]
    ) throws -> [[UInt8]] {
        var ids: [[UInt8]] = []
        ids.reserveCapacity(corpus.count)
        var index = 0
        while index < corpus.count {
            let end = min(index + 1_000, corpus.count)
            for event in corpus[index..<end] {
                try client.append([Array("XADD".utf8), key(event), Array("*".utf8), Array("e".utf8), event.json])
            }
            try client.flush()
            for _ in index..<end {
                if case .string(let id) = try client.nextReply() { ids.append(id) } else { ids.append([]) }
            }
            index = end
        }
        return ids
    }

    /// W4 peer: `XRANGE` of the 100 entries after a random position of a user's stream, uniform or
    /// activity-weighted users; returns p50 and p99 in microseconds.
    func userReplayLatency(_ corpus: [CorpusGenerator.Event], samples: Int) throws -> [(p50: Double, p99: Double)] {
        try reset(appendfsync: "everysec")
        let client = try connection()
        let ids = try load(corpus, into: client) { Self.streamKey($0.userID) }
        var byUser: [String: [[UInt8]]] = [:]
        for (event, id) in zip(corpus, ids) { byUser[event.userID, default: []].append(id) }
        let users = byUser.keys.sorted()
        var results: [(Double, Double)] = []
        for weighted in [false, true] {
            var random = SeededGenerator(seed: weighted ? 7 : 11)
            var latencies: [Double] = []
            for _ in 0..<samples {
                let user =
                    weighted
                    ? corpus[Int(random.next() % UInt64(corpus.count))].userID
                    : users[Int(random.next() % UInt64(users.count))]
                let stream = byUser[user]!
                let position = Int(random.next() % UInt64(stream.count))
                // After position p: exclusive of entry p (position 0 means from the start).
                let start = position == 0 ? Array("-".utf8) : Array("(".utf8) + stream[position - 1]
                let began = ContinuousClock.now
                _ = try client.command([
                    Array("XRANGE".utf8), Self.streamKey(user), start, Array("+".utf8), Array("COUNT".utf8),
                    Array("100".utf8),
                ])
                latencies.append((ContinuousClock.now - began).seconds * 1_000_000)
            }
            let percentiles = Percentiles(latencies)
            results.append((percentiles.at(0.5), percentiles.at(0.99)))
        }
        return results
    }

    /// W5 peer: `XRANGE` over one stream holding the corpus, pages of 1,000; entries per second.
    func fullScan(_ corpus: [CorpusGenerator.Event]) throws -> Double {
        try reset(appendfsync: "everysec")
        let client = try connection()
        try load(corpus, into: client) { _ in Array("all".utf8) }
        var start = Array("-".utf8)
        var entries = 0
        let began = ContinuousClock.now
        while true {
            guard
                case .array(let page) = try client.command([
                    Array("XRANGE".utf8), Array("all".utf8), start, Array("+".utf8), Array("COUNT".utf8),
                    Array("1000".utf8),
                ]),
                !page.isEmpty, case .array(let last) = page.last!, case .string(let id) = last[0]
            else { break }
            entries += page.count
            start = Array("(".utf8) + id
        }
        return Double(entries) / (ContinuousClock.now - began).seconds
    }

    /// W7 peer: `subscribers` hiredis connections, each on its own channel; one publisher
    /// pipelines `messages` corpus events round-robin to them. Messages delivered per second.
    func pubSubFanout(_ corpus: [CorpusGenerator.Event], subscribers: Int, messages: Int) throws -> Double {
        try reset(appendfsync: "everysec")
        var connections: [RedisConnection] = []
        for index in 0..<subscribers {
            let connection = try connection()
            try connection.append([Array("SUBSCRIBE".utf8), Array("user:f\(index)".utf8)])
            try connection.flush()
            _ = try connection.nextReply()
            connections.append(connection)
        }
        let received = SharedCount()
        let done = SharedCount()
        // The subscribers are read by one thread through epoll, as an event loop would (and as
        // the WebSocket clients are).
        let subscriberConnections = ThreadConfined(connections)
        let reader = Thread {
            let connections = subscriberConnections.value
            let readiness = ReadinessSet()
            for (index, connection) in connections.enumerated() {
                readiness.add(connection.fileDescriptor, token: index)
            }
            while done.value == 0 {
                readiness.wait(milliseconds: 100) { index in
                    if let replies = try? connections[index].readAvailable() { received.add(replies.count) }
                }
            }
        }
        reader.start()
        let publisher = try connection()
        let began = ContinuousClock.now
        var index = 0
        while index < messages {
            let end = min(index + 1_000, messages)
            for item in index..<end {
                try publisher.append([
                    Array("PUBLISH".utf8), Array("user:f\(item % subscribers)".utf8), corpus[item % corpus.count].json,
                ])
            }
            try publisher.flush()
            for _ in index..<end { _ = try publisher.nextReply() }
            index = end
        }
        while received.value < messages && ContinuousClock.now - began < .seconds(120) {
            Thread.sleep(forTimeInterval: 0.001)
        }
        let seconds = (ContinuousClock.now - began).seconds
        done.add(1)
        return Double(received.value) / seconds
    }

    public func stop() { redis.kill() }
}

/// Runs blocking work on its own thread and awaits it.
enum Blocking {
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}

/// A counter shared between threads.
final class SharedCount: Sendable {
    private let count = Atomic<Int>(0)
    func add(_ amount: Int) { count.add(amount, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// Hands a non-Sendable value to the one thread that will use it from then on.
/// `@unchecked Sendable`: the creator gives the value up; only the receiving thread touches it.
final class ThreadConfined<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
