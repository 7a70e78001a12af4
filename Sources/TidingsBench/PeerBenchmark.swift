import Foundation
import TidingsSQLite
import TidingsStore
import TidingsTestSupport

/// The workloads of the benchmark plan, each beside Redis measured in the same run (where a
/// peer applies), with its floor. Ours and the peer's runs alternate, `runs` times each, and
/// the medians are reported: the machine's fsync latency flips within minutes, so single runs
/// say little and ratios within one run say much more.
public struct PeerBenchmark: Sendable {
    public enum Workload: String, CaseIterable, Sendable {
        case w1, w1h, w2, w3, w4, w5, w6, w7, w7l, w8, w9, w10
    }

    public var events: Int
    public var runs: Int
    public var binary: String
    public var directory: String
    public var progress: @Sendable (String) -> Void

    public init(
        events: Int, runs: Int, binary: String, directory: String, progress: @escaping @Sendable (String) -> Void
    ) {
        self.events = events
        self.runs = runs
        self.binary = binary
        self.directory = directory
        self.progress = progress
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    /// Runs ours and the peer's measurement alternately and returns both medians.
    private func alternate(
        _ ours: () async throws -> Double, _ peer: () async throws -> Double
    ) async throws -> (Double, Double) {
        var mine: [Double] = []
        var theirs: [Double] = []
        for run in 0..<runs {
            if run % 2 == 0 {
                mine.append(try await ours())
                theirs.append(try await peer())
            } else {
                theirs.append(try await peer())
                mine.append(try await ours())
            }
        }
        return (Self.median(mine), Self.median(theirs))
    }

    public func run(_ workloads: [Workload]) async throws -> [BenchmarkFigure] {
        let peer = try RedisPeer()
        defer { peer.stop() }
        progress("corpus: \(events) events")
        var generator = CorpusGenerator()
        let raw = (0..<events).map { _ in generator.next() }
        let corpus = raw.map { NewEvent(type: $0.type, userID: $0.userID, data: $0.data) }
        let store = StoreBenchmark(events: events, directory: directory) { _ in }
        var figures: [BenchmarkFigure] = []
        func record(_ figure: BenchmarkFigure) {
            figures.append(figure)
            progress(figure.summary)
        }

        if workloads.contains(.w1) {
            let slice = min(events, 50_000)
            let (ours, theirs) = try await alternate(
                { try await store.appendConcurrently(Array(corpus.prefix(slice)), durability: .full) },
                { try await Blocking.run { try peer.concurrentAppends(Array(raw.prefix(slice)), clients: 64) } })
            record(
                BenchmarkFigure(
                    workload: "W1", metric: "durable single appends, 64 appenders (FULL vs appendfsync always)",
                    unit: "ev/s", tidings: ours, peer: theirs, peerName: "Redis XADD", floor: .ratioAtLeast(1.0)))
        }
        if workloads.contains(.w1h) {
            let slice = min(events, 30_000)
            let (ours, theirs) = try await alternate(
                {
                    let load = HTTPLoad(events: slice, clients: 64, binary: binary, directory: directory + "/http")
                    return try await load.run(sync: "full")[0].tidings
                },
                { try await Blocking.run { try peer.concurrentAppends(Array(raw.prefix(slice)), clients: 64) } })
            record(
                BenchmarkFigure(
                    workload: "W1h", metric: "the same through HTTP, 64 keep-alive clients", unit: "ev/s",
                    tidings: ours, peer: theirs, peerName: "Redis XADD", floor: .ratioAtLeast(0.5)))
        }
        if workloads.contains(.w2) {
            let (ours, theirs) = try await alternate(
                { try await store.appendBatches(corpus, size: 1_000, durability: .normal) },
                { try await Blocking.run { try peer.pipelinedAppends(raw, depth: 1_000) } })
            record(
                BenchmarkFigure(
                    workload: "W2", metric: "batches of 1,000 (NORMAL vs everysec, pipelined 1,000)", unit: "ev/s",
                    tidings: ours, peer: theirs, peerName: "Redis XADD", floor: .ratioAtLeast(0.7)))
        }
        let needsStore = workloads.contains { [.w3, .w4, .w5, .w6].contains($0) }
        if needsStore {
            let path = directory + "/loaded"
            try? FileManager.default.removeItem(atPath: path)
            var options = StoreOptions()
            options.durability = .normal
            let loaded = try await SQLiteStore.open(directory: path, options: options)
            _ = try await store.appendBatches(corpus, size: 1_000, store: loaded)
            if workloads.contains(.w4) {
                var ours: [[Double]] = [[], []]
                var theirs: [[Double]] = [[], []]
                for _ in 0..<runs {
                    for (index, weighted) in [false, true].enumerated() {
                        ours[index].append(try await store.userReplay(loaded, corpus: corpus, weighted: weighted).1)
                    }
                    let peerFigures = try await Blocking.run { try peer.userReplayLatency(raw, samples: 2_000) }
                    theirs[0].append(peerFigures[0].p99)
                    theirs[1].append(peerFigures[1].p99)
                }
                for (index, users) in ["uniform", "activity-weighted"].enumerated() {
                    record(
                        BenchmarkFigure(
                            workload: "W4", metric: "100 events after a cursor, \(users) users, p99", unit: "us",
                            tidings: Self.median(ours[index]), peer: Self.median(theirs[index]),
                            peerName: "Redis XRANGE", lowerIsBetter: true, floor: .ratioAtMost(3.0)))
                }
            }
            if workloads.contains(.w5) {
                let (ours, theirs) = try await alternate(
                    { try await store.fullReplay(loaded) }, { try await Blocking.run { try peer.fullScan(raw) } })
                record(
                    BenchmarkFigure(
                        workload: "W5", metric: "full replay (NDJSON envelopes vs XRANGE pages of 1,000)", unit: "ev/s",
                        tidings: ours, peer: theirs, peerName: "Redis XRANGE", floor: .ratioAtLeast(1.0)))
            }
            let stats = try await loaded.stats()
            loaded.close()
            if workloads.contains(.w3) {
                let onDisk = Double(FileSizes.directoryBytes(path)) / Double(events)
                let theirs = try await Blocking.run { try peer.memoryPerEntry(raw) }
                record(
                    BenchmarkFigure(
                        workload: "W3",
                        metric: "bytes on disk per event, all tables, WAL checkpointed (vs used_memory per entry)",
                        unit: "B", tidings: onDisk, peer: theirs, peerName: "Redis memory", lowerIsBetter: true,
                        floor: .ratioAtMost(0.4)))
                record(
                    BenchmarkFigure(
                        workload: "W3", metric: "log compression ratio", unit: "x", tidings: stats.compressionRatio,
                        floor: .atLeast(3.0)))
            }
            if workloads.contains(.w6) {
                var rates: [Double] = []
                for _ in 0..<runs {
                    let reopened = try await SQLiteStore.open(directory: path, options: options)
                    let started = ContinuousClock.now
                    try await reopened.rebuildProjections()
                    rates.append(Double(events) / (ContinuousClock.now - started).seconds)
                    reopened.close()
                }
                record(
                    BenchmarkFigure(
                        workload: "W6", metric: "projection rebuild", unit: "ev/s", tidings: Self.median(rates),
                        floor: .atLeast(1_000_000)))
            }
            try? FileManager.default.removeItem(atPath: path)
        }
        var fullRate: [Int: Double] = [:]
        if workloads.contains(.w7) || workloads.contains(.w7l) {
            for clients in [1_000, 10_000] {
                let messages = clients * 10
                let (ours, theirs) = try await alternate(
                    {
                        let load = FanoutLoad(
                            clients: clients, events: messages, binary: binary, directory: directory + "/fanout"
                        ) { _ in }
                        return try await load.run()[0].tidings
                    },
                    { try await Blocking.run { try peer.pubSubFanout(raw, subscribers: clients, messages: messages) } })
                fullRate[clients] = ours
                if workloads.contains(.w7) {
                    record(
                        BenchmarkFigure(
                            workload: "W7",
                            metric: "live fan-out to \(clients) clients (WebSocket vs Pub/Sub subscribers)",
                            unit: "ev/s", tidings: ours, peer: theirs, peerName: "Redis Pub/Sub",
                            floor: .ratioAtLeast(0.8)))
                }
            }
        }
        if workloads.contains(.w7l) || workloads.contains(.w9) {
            let rate = (fullRate[10_000] ?? 20_000) / 2
            var latencies: [Double] = []
            var memory: [Double] = []
            for _ in 0..<runs {
                let load = FanoutLoad(
                    clients: 10_000, events: max(20_000, Int(rate * 5)), rate: rate, binary: binary,
                    directory: directory + "/fanout"
                ) { _ in }
                let figures = try await load.run()
                latencies.append(figures[2].tidings / 1_000)
                memory.append(figures[3].tidings)
            }
            if workloads.contains(.w7l) {
                record(
                    BenchmarkFigure(
                        workload: "W7l",
                        metric: "append to receipt p99 at \(Int(rate)) ev/s (half of W7), 10,000 clients", unit: "ms",
                        tidings: Self.median(latencies), lowerIsBetter: true, floor: .atMost(20)))
            }
            if workloads.contains(.w9) {
                record(
                    BenchmarkFigure(
                        workload: "W9", metric: "server memory per idle WebSocket client", unit: "B",
                        tidings: Self.median(memory), lowerIsBetter: true, floor: .atMost(8 * 1024)))
            }
        }
        if workloads.contains(.w8) {
            var seconds: [Double] = []
            for _ in 0..<runs {
                let storm = ReconnectStorm(
                    clients: 10_000, behindMax: 1_000, binary: binary, directory: directory + "/storm",
                    progress: progress)
                seconds.append(try await storm.run())
            }
            record(
                BenchmarkFigure(
                    workload: "W8",
                    metric: "reconnect storm: 10,000 clients resume 1-1,000 events behind, all caught up", unit: "s",
                    tidings: Self.median(seconds), lowerIsBetter: true, floor: .atMost(10)))
        }
        if workloads.contains(.w10) {
            // 100,000 clients where the open-file limit allows it; fewer where it does not (the
            // figures then name the count, and the floors scale with it).
            let clients = ManyClients.clientsAllowed(wanted: 100_000)
            if clients < 100_000 {
                progress("W10: the open-file limit allows \(clients) clients, not 100,000; measuring \(clients)")
            }
            var runsFigures: [ManyClients.Figures] = []
            for _ in 0..<runs {
                let load = ManyClients(
                    clients: clients, binary: binary, directory: directory + "/many", progress: progress)
                runsFigures.append(try await load.run())
            }
            let scale = Double(clients) / 100_000
            record(
                BenchmarkFigure(
                    workload: "W10", metric: "server memory with \(clients) idle WebSocket clients", unit: "MiB",
                    tidings: Self.median(runsFigures.map { Double($0.residentBytes) / 1_048_576 }), lowerIsBetter: true,
                    floor: .atMost(1_024 * scale)))
            record(
                BenchmarkFigure(
                    workload: "W10", metric: "one event for each of \(clients) clients, all delivered", unit: "s",
                    tidings: Self.median(runsFigures.map(\.deliverySeconds)), lowerIsBetter: true,
                    floor: .atMost(10 * scale)))
        }
        return figures
    }
}
