import Foundation
import Logging
import NIOCore
import PostgresNIO
import TidingsPostgres
import TidingsStore
import TidingsTestSupport

/// P1-P5: the PostgreSQL engine beside the same PostgreSQL driven directly, in the same run.
/// The peer keeps each event's JSON as one row of `peer_events (seq bigserial, user_id,
/// payload json)` with a `(user_id, seq)` index: single-row commits from 64 clients (P1), `COPY`
/// of 1,000 rows (P2), its bytes with the index (P3), the indexed per-user page (P4) and
/// `SELECT payload ORDER BY seq` (P5), through the same client library. Each run uses fresh
/// databases for both and alternates which goes first.
public struct PostgresBenchmark: Sendable {
    public var events: Int
    public var singles: Int
    public var appenders: Int
    public var runs: Int
    /// The cluster's admin URL; each run makes its databases there.
    public var adminURL: String
    public var progress: @Sendable (String) -> Void

    public init(
        events: Int, singles: Int, appenders: Int = 64, runs: Int, adminURL: String,
        progress: @escaping @Sendable (String) -> Void
    ) {
        self.events = events
        self.singles = singles
        self.appenders = appenders
        self.runs = runs
        self.adminURL = adminURL
        self.progress = progress
    }

    struct Sample {
        var tidings: Double
        var peer: Double
    }

    public func run() async throws -> [BenchmarkFigure] {
        let corpus = StoreBenchmark.corpus(events)
        let rows = corpus.map(PeerRow.init)
        var samples: [String: [Sample]] = [:]
        for run in 0..<runs {
            let tidingsFirst = run % 2 == 0
            for (name, sample) in try await oneRun(corpus: corpus, rows: rows, tidingsFirst: tidingsFirst) {
                samples[name, default: []].append(sample)
                progress(
                    "run \(run + 1): \(name): tidings \(Self.format(sample.tidings)), peer \(Self.format(sample.peer))")
            }
        }
        func median(_ name: String, _ key: KeyPath<Sample, Double>) -> Double {
            let values = (samples[name] ?? []).map { $0[keyPath: key] }.sorted()
            return values.isEmpty ? 0 : values[values.count / 2]
        }
        func figure(
            _ name: String, workload: String, metric: String, unit: String, lowerIsBetter: Bool = false,
            floor: BenchmarkFigure.Floor
        ) -> BenchmarkFigure {
            var figure = BenchmarkFigure(
                workload: workload, metric: metric, unit: unit, tidings: median(name, \.tidings),
                peer: median(name, \.peer), peerName: "PostgreSQL", lowerIsBetter: lowerIsBetter)
            figure.floor = floor
            return figure
        }
        return [
            figure(
                "P1", workload: "P1 append", metric: "single events, \(appenders) appenders, durable", unit: "ev/s",
                floor: .ratioAtLeast(2.0)),
            figure(
                "P2", workload: "P2 append", metric: "batches of 1,000 vs COPY", unit: "ev/s", floor: .ratioAtLeast(0.7)
            ),
            figure(
                "P3", workload: "P3 size", metric: "bytes per event, every table and index", unit: "B",
                lowerIsBetter: true, floor: .ratioAtMost(0.4)),
            figure(
                "P4", workload: "P4 user page", metric: "100 after a cursor, activity-weighted, p99", unit: "us",
                lowerIsBetter: true, floor: .ratioAtMost(3.0)),
            figure("P5", workload: "P5 replay", metric: "full log to NDJSON", unit: "ev/s", floor: .ratioAtLeast(1.0)),
        ]
    }

    static func format(_ value: Double) -> String { BenchmarkReport.compact(value) }

    // MARK: One run

    private func oneRun(corpus: [NewEvent], rows: [PeerRow], tidingsFirst: Bool) async throws -> [(String, Sample)] {
        let cluster = PostgresCluster(adminURL: adminURL)
        let storeURL = try cluster.makeDatabase(prefix: "tidings_bench")
        let peerURL = try cluster.makeDatabase(prefix: "tidings_bench_peer")
        defer {
            cluster.dropDatabase(storeURL)
            cluster.dropDatabase(peerURL)
        }
        let singlesStoreURL = try cluster.makeDatabase(prefix: "tidings_bench_single")
        let singlesPeerURL = try cluster.makeDatabase(prefix: "tidings_bench_single_peer")
        defer {
            cluster.dropDatabase(singlesStoreURL)
            cluster.dropDatabase(singlesPeerURL)
        }
        var results: [(String, Sample)] = []
        let singleCorpus = Array(corpus.prefix(singles))
        let singleRows = Array(rows.prefix(singles))

        var options = PostgresOptions()
        options.connectionsMax = 16
        options.drainsOutbox = false
        var logger = Logger(label: "bench.postgres")
        logger.logLevel = .error

        // P1: single events from 64 appenders, each acknowledged after its durable commit.
        let singleStore = try await PostgresStore.open(try PostgresLocation(singlesStoreURL), options: options)
        let singlePeer = try await PeerDatabase.open(singlesPeerURL, connectionsMax: appenders, logger: logger)
        var p1 = Sample(tidings: 0, peer: 0)
        for side in tidingsFirst ? [true, false] : [false, true] {
            if side {
                p1.tidings = try await StoreBenchmark.appendConcurrently(
                    singleCorpus, appenders: appenders, store: singleStore)
            } else {
                p1.peer = try await singlePeer.insertConcurrently(singleRows, appenders: appenders)
            }
        }
        singleStore.close()
        await singlePeer.close()
        results.append(("P1", p1))

        // P2: the whole corpus in batches of 1,000; the loaded stores serve P3-P5.
        let store = try await PostgresStore.open(try PostgresLocation(storeURL), options: options)
        defer { store.close() }
        let peer = try await PeerDatabase.open(peerURL, connectionsMax: 4, logger: logger)
        var p2 = Sample(tidings: 0, peer: 0)
        for side in tidingsFirst ? [true, false] : [false, true] {
            if side {
                let start = ContinuousClock.now
                var index = 0
                while index < corpus.count {
                    let end = min(index + 1_000, corpus.count)
                    _ = try await store.append(Array(corpus[index..<end]))
                    index = end
                }
                p2.tidings = Double(corpus.count) / (ContinuousClock.now - start).seconds
            } else {
                p2.peer = try await peer.copy(rows, batch: 1_000)
            }
        }
        results.append(("P2", p2))

        // P3: every byte either keeps, tables, indexes and TOAST, after a checkpointed vacuum.
        try await peer.vacuum()
        let stats = try await store.stats()
        results.append(
            (
                "P3",
                Sample(
                    tidings: Double(stats.fileBytes) / Double(corpus.count),
                    peer: Double(try await peer.totalBytes()) / Double(corpus.count))
            ))

        // P4: pages of 100 events of activity-weighted users after a random position.
        var random = SeededGenerator(seed: 7)
        var counts: [String: Int64] = [:]
        for event in corpus { counts[event.userID, default: 0] += 1 }
        var positions: [(String, Int64)] = []
        for _ in 0..<2_000 {
            let user = corpus[Int(random.next() % UInt64(corpus.count))].userID
            positions.append((user, Int64(random.next() % UInt64(counts[user]!))))
        }
        let peerSeqs = try await peer.userSeqs(positions)
        let anchor = try await movedOnAnchor(store)
        var p4 = Sample(tidings: 0, peer: 0)
        for side in tidingsFirst ? [true, false] : [false, true] {
            var samples: [Double] = []
            for (index, (user, position)) in positions.enumerated() {
                let start = ContinuousClock.now
                if side {
                    let page = try await store.userEvents(
                        userID: user, after: store.userCursor(user, streamSeq: position, anchor: anchor), limit: 100)
                    precondition(page.events.count == min(100, Int(counts[user]! - position)))
                } else {
                    _ = try await peer.userPage(user, after: peerSeqs[index])
                }
                samples.append((ContinuousClock.now - start).seconds * 1_000_000)
            }
            samples.sort()
            let p99 = samples[samples.count * 99 / 100]
            if side { p4.tidings = p99 } else { p4.peer = p99 }
        }
        results.append(("P4", p4))

        // P5: the whole log, as NDJSON envelopes or as the rows' payloads.
        var p5 = Sample(tidings: 0, peer: 0)
        for side in tidingsFirst ? [true, false] : [false, true] {
            let start = ContinuousClock.now
            if side {
                let counter = ByteCounter()
                let count = try await store.exportNDJSON(after: nil) { chunk, _ in
                    counter.add(chunk.count)
                    return true
                }
                precondition(count == corpus.count + 1, "the corpus and the event P4 appended")
                p5.tidings = Double(count) / (ContinuousClock.now - start).seconds
            } else {
                let count = try await peer.readAll()
                precondition(count == corpus.count)
                p5.peer = Double(count) / (ContinuousClock.now - start).seconds
            }
        }
        await peer.close()
        results.append(("P5", p5))
        return results
    }
}

/// One event as the peer keeps it: the user and the event's JSON as appended.
struct PeerRow: Sendable {
    var userID: String
    var payload: String

    init(_ event: NewEvent) {
        userID = event.userID
        payload =
            #"{"type":"\#(event.type)","user_id":"\#(event.userID)","data":"#
            + String(decoding: event.data, as: UTF8.self) + "}"
    }

    /// The row in `COPY ... FROM STDIN` text format (backslashes doubled; compact JSON has no
    /// raw tabs or newlines).
    var copyLine: String {
        userID + "\t" + payload.replacingOccurrences(of: "\\", with: "\\\\") + "\n"
    }
}

/// The peer: the same PostgreSQL, one row per event, driven directly with postgres-nio.
final class PeerDatabase: Sendable {
    let client: PostgresClient
    let logger: Logger
    private let runTask: Task<Void, Never>

    private init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
        runTask = Task { await client.run() }
    }

    static func open(_ url: String, connectionsMax: Int, logger: Logger) async throws -> PeerDatabase {
        let server = try PostgresLocation(url).servers[0]
        let peer = PeerDatabase(
            client: PostgresClient(configuration: server.clientConfiguration(connectionsMax: connectionsMax)),
            logger: logger)
        try await peer.client.query(
            "CREATE TABLE peer_events (seq bigserial PRIMARY KEY, user_id text NOT NULL, payload json NOT NULL)",
            logger: logger)
        try await peer.client.query("CREATE INDEX peer_events_user ON peer_events (user_id, seq)", logger: logger)
        return peer
    }

    func close() async {
        runTask.cancel()
        _ = await runTask.value
    }

    /// Each row its own INSERT and commit, from `appenders` clients at once.
    func insertConcurrently(_ rows: [PeerRow], appenders: Int) async throws -> Double {
        let client = client
        let logger = logger
        return try await Workers.rate(count: rows.count, workers: appenders) { index in
            let row = rows[index]
            try await client.query(
                "INSERT INTO peer_events (user_id, payload) VALUES (\(row.userID), \(row.payload)::json)",
                logger: logger)
        }
    }

    /// `COPY` of `batch` rows at a time, each its own transaction.
    func copy(_ rows: [PeerRow], batch: Int) async throws -> Double {
        let logger = logger
        let start = ContinuousClock.now
        var index = 0
        while index < rows.count {
            let end = min(index + batch, rows.count)
            var buffer = ByteBuffer()
            for row in rows[index..<end] { buffer.writeString(row.copyLine) }
            try await client.withConnection { connection in
                try await connection.copyFrom(table: "peer_events", columns: ["user_id", "payload"], logger: logger) {
                    writer in
                    try await writer.write(buffer)
                }
            }
            index = end
        }
        return Double(rows.count) / (ContinuousClock.now - start).seconds
    }

    func vacuum() async throws {
        try await client.query("VACUUM ANALYZE peer_events", logger: logger)
    }

    func totalBytes() async throws -> Int64 {
        let rows = try await client.query("SELECT pg_total_relation_size('peer_events')", logger: logger)
        for try await size in rows.decode(Int64.self) { return size }
        return 0
    }

    /// The peer's position of each (user, stream position): the seq of that user's event there.
    func userSeqs(_ positions: [(String, Int64)]) async throws -> [Int64] {
        var seqs: [Int64] = []
        for (user, position) in positions {
            guard position > 0 else {
                seqs.append(0)
                continue
            }
            let rows = try await client.query(
                "SELECT seq FROM peer_events WHERE user_id = \(user) ORDER BY seq OFFSET \(position - 1) LIMIT 1",
                logger: logger)
            var seq: Int64 = 0
            for try await value in rows.decode(Int64.self) { seq = value }
            seqs.append(seq)
        }
        return seqs
    }

    func userPage(_ user: String, after seq: Int64) async throws -> Int {
        let rows = try await client.query(
            "SELECT payload FROM peer_events WHERE user_id = \(user) AND seq > \(seq) ORDER BY seq LIMIT 100",
            logger: logger)
        var count = 0
        for try await _ in rows.decode(ByteBuffer.self) { count += 1 }
        return count
    }

    /// Every payload in seq order, one line each, as a client exporting the table would.
    func readAll() async throws -> Int {
        let rows = try await client.query("SELECT payload FROM peer_events ORDER BY seq", logger: logger)
        var count = 0
        var bytes = 0
        for try await payload in rows.decode(ByteBuffer.self) {
            count += 1
            bytes += payload.readableBytes + 1
        }
        precondition(bytes > 0 || count == 0)
        return count
    }
}
