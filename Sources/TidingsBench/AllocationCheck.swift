import Foundation
import TidingsFanout
import TidingsSQLite
import TidingsServer
import TidingsStore

/// Heap allocations per event on the hottest paths (append, encode, decode, fan-out), measured
/// in the release build under `tools/allocations`, which preloads a counter of the process's
/// allocations (`tools/native/allocation-counter.c`) that this code finds with `dlsym`. Each
/// path has a committed ceiling; `tools/test` fails when a change pushes a path above it.
/// Ceilings sit about 25% above the measured counts; lower them when a change brings one down.
public struct AllocationCheck: Sendable {
    public struct Result: Sendable {
        public var path: String
        public var perEvent: Double
        public var ceiling: Double
        public var withinCeiling: Bool { perEvent <= ceiling }
    }

    private typealias Start = @convention(c) () -> Void
    private typealias Stop = @convention(c) () -> Int

    private let start: Start
    private let stop: Stop
    public var directory: String

    /// Nil when the counter is not preloaded.
    public init?(directory: String) {
        let process = UnsafeMutableRawPointer(bitPattern: 0)  // RTLD_DEFAULT
        guard let start = dlsym(process, "tidings_allocations_start"),
            let stop = dlsym(process, "tidings_allocations_stop")
        else { return nil }
        self.start = unsafeBitCast(start, to: Start.self)
        self.stop = unsafeBitCast(stop, to: Stop.self)
        self.directory = directory
    }

    /// The median of five measurements of `body`, which handles `events` events, after a
    /// warm-up run.
    private func perEvent(events: Int, _ body: () async throws -> Void) async throws -> Double {
        try await body()
        var samples: [Double] = []
        for _ in 0..<5 {
            start()
            try await body()
            samples.append(Double(stop()) / Double(events))
        }
        return samples.sorted()[2]
    }

    public func run() async throws -> [Result] {
        let corpus = StoreBenchmark.corpus(7_000, seed: 99)
        try? FileManager.default.removeItem(atPath: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = StoreOptions()
        options.durability = .normal
        let store = try await SQLiteStore.open(directory: directory, options: options)
        defer { store.close() }
        var results: [Result] = []

        var next = 0
        let append = try await perEvent(events: 1_000) {
            _ = try await store.append(Array(corpus[next..<next + 1_000]))
            next += 1_000
        }
        results.append(
            Result(
                path: "append: validate, project, encode, chain, commit (batches of 1,000)", perEvent: append,
                ceiling: 31))

        var body: [UInt8] = Array(#"{"events":["#.utf8)
        for (index, event) in corpus.prefix(1_000).enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body += #"{"type":"\#(event.type)","user_id":"\#(event.userID)","data":"#.utf8
            body += event.data
            body.append(UInt8(ascii: "}"))
        }
        body += "]}".utf8
        let decode = try await perEvent(events: 1_000) { _ = try EventDecoder.decodeAppendBody(body) }
        results.append(Result(path: "decode: an append request body of 1,000 events", perEvent: decode, ceiling: 2.5))

        let events = Int(try await store.headSeq())
        let export = try await perEvent(events: events) { try await store.exportNDJSON(after: nil) { _, _ in true } }
        results.append(Result(path: "encode: NDJSON export, envelopes from blocks", perEvent: export, ceiling: 1.1))

        var counts: [String: Int] = [:]
        for event in corpus.prefix(events) { counts[event.userID, default: 0] += 1 }
        let user = counts.max { $0.value < $1.value }!.key
        let page = try await store.userEvents(userID: user, after: nil, limit: 100).events.count
        let replay = try await perEvent(events: page) {
            _ = try await store.userEvents(userID: user, after: nil, limit: 100)
        }
        results.append(
            Result(
                path: "decode: per-user replay, records into events (page of \(page))", perEvent: replay, ceiling: 7.5))

        let hub = Hub()
        let users = (0..<100).map { "usr_\($0)" }
        let subscriptions = users.map { hub.subscribe(.user($0)) }
        let data = Array(#"{"notification_id":"n-1","title":"A title","body":"Some body text"}"#.utf8)
        var seq: Int64 = 0
        let fanout = try await perEvent(events: 1_000) {
            var batch: [StoredEvent] = []
            batch.reserveCapacity(1_000)
            for index in 0..<1_000 {
                seq += 1
                batch.append(
                    StoredEvent(
                        seq: seq, streamSeq: seq, userID: users[index % users.count], id: "evt-1",
                        type: .created, timestampMilliseconds: 1_700_000_000_000 + seq, data: data,
                        counts: InboxCounts(unread: 3, unseen: 2),
                        anchor: CursorAnchor(seq: seq, check: 0)))
            }
            hub.publish(batch)
            for subscription in subscriptions {
                guard case .events(let delivered) = await subscription.next() else { continue }
                for event in delivered {
                    _ = StreamEventMessage.encode(event, cursor: "cursor", counts: event.counts)
                }
            }
        }
        results.append(Result(path: "fan-out: publish, queue, event message", perEvent: fanout, ceiling: 6))
        return results
    }
}
