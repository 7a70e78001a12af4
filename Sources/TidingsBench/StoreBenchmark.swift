import Foundation
import TidingsSQLite
import TidingsStore
import TidingsTestSupport

/// The store-level workloads: appends (single events from 64 appenders, batches of 100 and
/// 1,000), a full replay to NDJSON, per-user replays, a projection rebuild, and the bytes on
/// disk, all on the deterministic corpus.
public struct StoreBenchmark: Sendable {
    public var events: Int
    public var appenders: Int
    public var directory: String
    public var progress: @Sendable (String) -> Void
    /// Which workloads to run; empty runs them all.
    public var only: Set<Workload> = []

    public enum Workload: String, CaseIterable, Sendable {
        case appendSingle = "append-single"
        case appendHundred = "append-100"
        case appendThousand = "append-1000"
        case replay
        case userReplay = "user-replay"
        case list
        case rebuild
        case size
    }

    public init(events: Int, appenders: Int = 64, directory: String, progress: @escaping @Sendable (String) -> Void) {
        self.events = events
        self.appenders = appenders
        self.directory = directory
        self.progress = progress
    }

    func wants(_ workload: Workload) -> Bool { only.isEmpty || only.contains(workload) }

    static func corpus(_ count: Int, seed: UInt64 = CorpusGenerator.defaultSeed) -> [NewEvent] {
        var generator = CorpusGenerator(seed: seed)
        return (0..<count).map { _ in
            let event = generator.next()
            return NewEvent(type: event.type, userID: event.userID, data: event.data)
        }
    }

    public func run() async throws -> [BenchmarkFigure] {
        var figures: [BenchmarkFigure] = []
        let corpus = Self.corpus(events)
        progress(
            "corpus: \(events) events, \(corpus.reduce(0) { $0 + $1.data.count } / max(events, 1)) bytes of data each")

        if wants(.appendSingle) {
            let singles = min(events, 50_000)
            let single = try await appendConcurrently(Array(corpus.prefix(singles)), durability: .full)
            figures.append(
                BenchmarkFigure(
                    workload: "append", metric: "batch 1, \(appenders) appenders, FULL", unit: "ev/s", tidings: single))
            progress("append batch 1 x\(appenders) appenders: \(Int(single)) events/s")
        }
        if wants(.appendHundred) {
            let hundreds = try await appendBatches(
                Array(corpus.prefix(min(events, 200_000))), size: 100, durability: .full)
            figures.append(
                BenchmarkFigure(workload: "append", metric: "batch 100, FULL", unit: "ev/s", tidings: hundreds))
            progress("append batch 100: \(Int(hundreds)) events/s")
        }
        let needsLoadedStore: [Workload] = [.appendThousand, .replay, .userReplay, .list, .rebuild, .size]
        guard needsLoadedStore.contains(where: wants) else { return figures }

        let path = directory + "/read"
        try? FileManager.default.removeItem(atPath: path)
        var options = StoreOptions()
        options.durability = .normal
        let store = try await SQLiteStore.open(directory: path, options: options)
        let thousands = try await appendBatches(corpus, size: 1_000, store: store)
        figures.append(
            BenchmarkFigure(workload: "append", metric: "batch 1000, NORMAL", unit: "ev/s", tidings: thousands))
        progress("append batch 1000: \(Int(thousands)) events/s")

        if wants(.replay) {
            let replay = try await fullReplay(store)
            figures.append(
                BenchmarkFigure(workload: "replay", metric: "full log to NDJSON", unit: "ev/s", tidings: replay))
            progress("full replay: \(Int(replay)) events/s")
        }
        for weighted in [false, true] where wants(.userReplay) {
            let (p50, p99) = try await userReplay(store, corpus: corpus, weighted: weighted)
            let users = weighted ? "activity-weighted" : "uniform"
            figures.append(
                BenchmarkFigure(
                    workload: "user replay", metric: "100 after a cursor, \(users), p50", unit: "us", tidings: p50,
                    lowerIsBetter: true))
            figures.append(
                BenchmarkFigure(
                    workload: "user replay", metric: "100 after a cursor, \(users), p99", unit: "us", tidings: p99,
                    lowerIsBetter: true))
            progress("user replay \(users): p50 \(Int(p50)) us, p99 \(Int(p99)) us")
        }

        if wants(.list) { figures += try await listPages(store, corpus: corpus) }

        let stats = try await store.stats()
        store.close()
        // Bytes on disk after the load, every table and index, the write-ahead log checkpointed
        // (closing checkpoints and truncates it).
        let onDisk = Double(FileSizes.directoryBytes(path))
        if wants(.rebuild) {
            let store = try await SQLiteStore.open(directory: path, options: options)
            let rebuildStart = ContinuousClock.now
            try await store.rebuildProjections()
            let rebuild = Double(events) / (ContinuousClock.now - rebuildStart).seconds
            figures.append(
                BenchmarkFigure(workload: "rebuild", metric: "projection from the log", unit: "ev/s", tidings: rebuild))
            progress("rebuild: \(Int(rebuild)) events/s")
            store.close()
        }
        guard wants(.size) else { return figures }
        figures.append(
            BenchmarkFigure(
                workload: "size", metric: "bytes on disk per event (all tables)", unit: "B",
                tidings: onDisk / Double(events), lowerIsBetter: true))
        figures.append(
            BenchmarkFigure(
                workload: "size", metric: "log compression ratio", unit: "x", tidings: stats.compressionRatio))
        figures.append(
            BenchmarkFigure(
                workload: "size", metric: "raw bytes per event", unit: "B",
                tidings: Double(stats.rawBytes) / Double(events)))
        figures.append(
            BenchmarkFigure(
                workload: "size", metric: "log bytes per event", unit: "B",
                tidings: Double(stats.storedBytes) / Double(events), lowerIsBetter: true))
        progress("size: \(Int(onDisk / Double(events))) bytes per event on disk, ratio \(stats.compressionRatio)")
        return figures
    }

    func appendConcurrently(_ corpus: [NewEvent], durability: StoreOptions.Durability) async throws -> Double {
        let path = directory + "/append-single"
        try? FileManager.default.removeItem(atPath: path)
        var options = StoreOptions()
        options.durability = durability
        let store = try await SQLiteStore.open(directory: path, options: options)
        defer { store.close() }
        return try await Self.appendConcurrently(corpus, appenders: appenders, store: store)
    }

    /// Single-event appends of `corpus` from `appenders` tasks at once, in events per second.
    static func appendConcurrently(_ corpus: [NewEvent], appenders: Int, store: any EventStore) async throws -> Double {
        try await Workers.rate(count: corpus.count, workers: appenders) { index in
            _ = try await store.append([corpus[index]])
        }
    }

    func appendBatches(
        _ corpus: [NewEvent], size: Int, durability: StoreOptions.Durability
    ) async throws -> Double {
        let path = directory + "/append-batch-\(size)"
        try? FileManager.default.removeItem(atPath: path)
        var options = StoreOptions()
        options.durability = durability
        let store = try await SQLiteStore.open(directory: path, options: options)
        defer { store.close() }
        return try await appendBatches(corpus, size: size, store: store)
    }

    func appendBatches(_ corpus: [NewEvent], size: Int, store: SQLiteStore) async throws -> Double {
        let start = ContinuousClock.now
        var index = 0
        while index < corpus.count {
            let end = min(index + size, corpus.count)
            _ = try await store.append(Array(corpus[index..<end]))
            index = end
        }
        return Double(corpus.count) / (ContinuousClock.now - start).seconds
    }

    func fullReplay(_ store: SQLiteStore) async throws -> Double {
        let start = ContinuousClock.now
        let sink = ByteCounter()
        let count = try await store.exportNDJSON(after: nil) { chunk, _ in
            sink.add(chunk.count)
            return true
        }
        return Double(count) / (ContinuousClock.now - start).seconds
    }

    func userReplay(_ store: SQLiteStore, corpus: [NewEvent], weighted: Bool) async throws -> (Double, Double) {
        var counts: [String: Int] = [:]
        for event in corpus { counts[event.userID, default: 0] += 1 }
        let users = counts.keys.sorted()
        let anchor = try await movedOnAnchor(store)
        var random = SeededGenerator(seed: weighted ? 7 : 11)
        var samples: [Double] = []
        for _ in 0..<2_000 {
            let user =
                weighted
                ? corpus[Int(random.next() % UInt64(corpus.count))].userID
                : users[Int(random.next() % UInt64(users.count))]
            let position = Int64(random.next() % UInt64(counts[user]!))
            let cursor = store.userCursor(user, streamSeq: position, anchor: anchor)
            let start = ContinuousClock.now
            _ = try await store.userEvents(userID: user, after: cursor, limit: 100)
            samples.append((ContinuousClock.now - start).seconds * 1_000_000)
        }
        samples.sort()
        return (samples[samples.count / 2], samples[samples.count * 99 / 100])
    }
}

extension StoreBenchmark {
    /// Pages of 50 of the top user's notification list (the newest, the fifth, only unread,
    /// only one rare kind), each read 200 times: p50 and p99.
    func listPages(_ store: SQLiteStore, corpus: [NewEvent]) async throws -> [BenchmarkFigure] {
        var counts: [String: Int] = [:]
        for event in corpus { counts[event.userID, default: 0] += 1 }
        guard let top = counts.max(by: { $0.value < $1.value }) else { return [] }
        var fifth: String?
        for _ in 0..<4 {
            fifth = try await store.notifications(userID: top.key, before: fifth, filter: .init(), limit: 50).nextBefore
        }
        let cases: [(String, String?, NotificationListFilter)] = [
            ("newest", nil, NotificationListFilter()),
            ("fifth", fifth, NotificationListFilter()),
            ("unread", nil, NotificationListFilter(state: .unread)),
            ("kind security.alert", nil, NotificationListFilter(kind: "security.alert")),
        ]
        var figures: [BenchmarkFigure] = []
        for (name, before, filter) in cases {
            var samples: [Double] = []
            for _ in 0..<200 {
                let start = ContinuousClock.now
                let page = try await store.notifications(userID: top.key, before: before, filter: filter, limit: 50)
                samples.append((ContinuousClock.now - start).seconds * 1_000_000)
                precondition(page.notifications.count == 50, "the top user has 50 notifications in every case")
            }
            samples.sort()
            let (p50, p99) = (samples[samples.count / 2], samples[samples.count * 99 / 100])
            let metric = "page of 50, top user (\(top.value) events), \(name)"
            figures.append(
                BenchmarkFigure(
                    workload: "list", metric: metric + ", p50", unit: "us", tidings: p50, lowerIsBetter: true))
            figures.append(
                BenchmarkFigure(
                    workload: "list", metric: metric + ", p99", unit: "us", tidings: p99, lowerIsBetter: true))
            progress("list \(name), top user: p50 \(Int(p50)) us, p99 \(Int(p99)) us")
        }
        // What a first visit to the inbox read before the list: the whole stream.
        var after: String?
        let start = ContinuousClock.now
        while true {
            let page = try await store.userEvents(userID: top.key, after: after, limit: 1_000)
            after = page.nextCursor
            if !page.hasMore { break }
        }
        let replay = (ContinuousClock.now - start).seconds * 1_000_000
        figures.append(
            BenchmarkFigure(
                workload: "list", metric: "the top user's whole stream, pages of 1,000 (before the list)", unit: "us",
                tidings: replay, lowerIsBetter: true))
        progress("the top user's whole stream: \(Int(replay)) us")
        return figures
    }
}

/// Counts the bytes an export produced. `@unchecked Sendable`: one reader thread at a time
/// adds to it, inside one export.
final class ByteCounter: @unchecked Sendable {
    private(set) var bytes = 0

    func add(_ count: Int) { bytes += count }
}

/// The head as a client that went away last saw it: the log moves on by one event, so a page
/// after a cursor made there checks the cursor's history against an earlier seq, as most
/// resumes do.
func movedOnAnchor(_ store: some EventStore) async throws -> CursorAnchor {
    let anchor = try await store.head()
    _ = try await store.append([
        NewEvent(type: .created, userID: "bench-anchor", data: #"{"notification_id":"moved-on-\#(anchor.seq)"}"#)
    ])
    return anchor
}

enum FileSizes {
    static func directoryBytes(_ path: String) -> Int64 {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return files.reduce(0) { total, file in
            let attributes = try? FileManager.default.attributesOfItem(atPath: path + "/" + file)
            return total + ((attributes?[.size] as? NSNumber)?.int64Value ?? 0)
        }
    }
}

/// Work items spread over concurrent tasks, each taking every `workers`-th item.
enum Workers {
    /// Runs `body` for every index below `count`; returns items per second.
    static func rate(
        count: Int, workers: Int, _ body: @escaping @Sendable (Int) async throws -> Void
    ) async throws -> Double {
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var index = worker
                    while index < count {
                        try await body(index)
                        index += workers
                    }
                }
            }
            try await group.waitForAll()
        }
        return Double(count) / (ContinuousClock.now - start).seconds
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
