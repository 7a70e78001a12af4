import ArgumentParser
import Foundation
import TidingsBench
import TidingsStore
import TidingsTestSupport

@main
struct TidingsBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tidings-bench",
        abstract: "Tidings' benchmarks on a deterministic notification corpus, beside Redis.",
        discussion: """
            Every workload uses the same seeded corpus: 80% notification.created, 20% notification.read, \
            users drawn from a Zipf distribution over 100,000 ids, about 420 bytes of JSON per event. \
            The workloads W1-W10 run beside Redis 7 (started on a free port, AOF on, driven through \
            hiredis from this binary) in the same run, alternating, and report medians and floors:
              tidings-bench all --events 1000000 --runs 3 --json results.json
              tidings-bench w2 w5 --events 200000
              tidings-bench store --events 1000000 --json store.json
              tidings-bench postgres --events 200000 --runs 3
              tidings-bench http --events 50000 --clients 64
              tidings-bench fanout --clients 10000 --events 200000
              tidings-bench corpus --events 10000 > events.ndjson
            The workloads over the network start `tidings serve` from the same build folder \
            (`swift build -c release` builds both programs; tools/bench does it).
            """,
        subcommands: [
            WorkloadBench.self, StoreBench.self, PostgresBench.self, NodesBench.self, HTTPBench.self, FanoutBench.self,
            AllocationsBench.self, CorpusBench.self,
        ],
        defaultSubcommand: WorkloadBench.self
    )
}

struct StoreBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Store-level workloads: appends, full and per-user replay, rebuild, bytes on disk."
    )

    @Option(help: "Events in the corpus.")
    var events = 1_000_000

    @Option(help: "Concurrent appenders for single-event appends.")
    var clients = 64

    @Option(help: "Write every figure, the machine and the build mode as JSON to this file.")
    var json: String?

    @Option(help: "Scratch directory for the stores (removed afterwards).")
    var directory = NSTemporaryDirectory() + "tidings-bench"

    @Option(
        name: .customLong("only"),
        help: ArgumentHelp(
            "Run only these workloads (repeatable): \(StoreBenchmark.Workload.allCases.map(\.rawValue).joined(separator: ", ")).",
            valueName: "workload"))
    var workloads: [String] = []

    func validate() throws {
        for name in workloads where StoreBenchmark.Workload(rawValue: name) == nil {
            throw ValidationError(
                "--only \(name) is not a workload; use one of \(StoreBenchmark.Workload.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
    }

    func run() async throws {
        try? FileManager.default.removeItem(atPath: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var benchmark = StoreBenchmark(events: events, appenders: clients, directory: directory) { Console.note($0) }
        benchmark.only = Set(workloads.compactMap(StoreBenchmark.Workload.init(rawValue:)))
        let figures = try await benchmark.run()
        let report = BenchmarkReport(machine: .current(), events: events, figures: figures)
        print(report.table)
        if let json { try Data(try report.json()).write(to: URL(fileURLWithPath: json)) }
    }
}

struct PostgresBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postgres",
        abstract: "P1-P5: the PostgreSQL engine beside the same PostgreSQL driven directly.",
        discussion: """
            The peer keeps each event's JSON as a row with a (user_id, seq) index: 64 clients inserting \
            and committing one row each (P1), COPY of 1,000 rows (P2), its bytes (P3), the indexed page \
            of 100 after a position (P4), SELECT payload ORDER BY seq (P5). Without --postgres a durable \
            throwaway cluster (fsync on, synchronous_commit on) is started as the postgres user.
              tidings-bench postgres --events 200000 --runs 3
              tidings-bench postgres --postgres postgres://postgres@127.0.0.1:5432/postgres --runs 1
            """
    )

    @Option(help: "Events in the corpus (P2-P5).")
    var events = 200_000

    @Option(help: "Single-event appends for P1, per side.")
    var singles = 20_000

    @Option(help: "Concurrent appenders for P1.")
    var clients = 64

    @Option(help: "Runs, alternating which side goes first; medians are reported.")
    var runs = 3

    @OptionGroup var cluster: ClusterOptions

    func run() async throws {
        try await cluster.report(events: events) { adminURL in
            try await PostgresBenchmark(
                events: events, singles: singles, appenders: clients, runs: runs, adminURL: adminURL
            ) { Console.note($0) }.run()
        }
    }
}

struct NodesBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "P6-P7: three nodes on one PostgreSQL under live fan-out, beside one node.",
        discussion: """
            P7: the clients spread over three nodes, events delivered per second beside the same \
            clients on one node. P6: appends on one node, the clients on the two others, the 99th \
            percentile from append to receipt at half the rate the nodes sustain. Each node is a \
            `tidings serve` process; without --postgres a durable throwaway cluster (fsync on, \
            synchronous_commit on) is started as the postgres user.
              tidings-bench nodes --clients 10000 --runs 3
              tidings-bench nodes --clients 1000 --runs 1
            """
    )

    @Option(help: "WebSocket clients (one user each).")
    var clients = 10_000

    @Option(help: "Events per load; omitted, ten per client.")
    var events: Int?

    @Option(help: "Runs; medians are reported.")
    var runs = 3

    @OptionGroup var cluster: ClusterOptions

    func run() async throws {
        let events = self.events ?? clients * 10
        try await cluster.report(events: events) { adminURL in
            try await NodesBenchmark(
                clients: clients, events: events, runs: runs, adminURL: adminURL, binary: try ServerBinary.path
            ) { Console.note($0) }.run()
        }
    }
}

/// The PostgreSQL a benchmark makes its databases in, and where its figures go.
struct ClusterOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "A cluster's admin URL to make the benchmark's databases in (dropped afterwards).", valueName: "url"))
    var postgres: String?

    @Option(help: "Write the figures as JSON to this file.")
    var json: String?

    /// Runs `benchmark` against `--postgres`, or a durable throwaway cluster (fsync and
    /// synchronous_commit on) started for it, and prints its figures.
    func report(events: Int, _ benchmark: (String) async throws -> [BenchmarkFigure]) async throws {
        let started = postgres == nil ? try PostgresCluster.start(durable: true) : nil
        defer { started?.stop() }
        let figures = try await benchmark(postgres ?? started!.adminURL)
        let report = BenchmarkReport(machine: .current(), events: events, figures: figures)
        print(report.table)
        if let json { try Data(try report.json()).write(to: URL(fileURLWithPath: json)) }
    }
}

struct AllocationsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allocations",
        abstract: "Heap allocations per event on the hot paths, against committed ceilings.",
        discussion: """
            Needs the allocation counter preloaded; tools/allocations builds it and runs this in \
            the release build. Exits with status 1 when a path allocates more than its ceiling.

              tools/allocations
            """
    )

    @Option(help: "Scratch directory for the store (removed afterwards).")
    var directory = NSTemporaryDirectory() + "tidings-allocations"

    func run() async throws {
        guard let check = AllocationCheck(directory: directory) else {
            throw ValidationError("the allocation counter is not loaded; run tools/allocations")
        }
        let results = try await check.run()
        for result in results {
            let verdict = result.withinCeiling ? "ok" : "OVER"
            print(
                "\(verdict.padding(toLength: 5, withPad: " ", startingAt: 0))"
                    + "\(String(format: "%7.2f", result.perEvent)) per event (ceiling \(String(format: "%g", result.ceiling)))  \(result.path)"
            )
        }
        if results.contains(where: { !$0.withinCeiling }) {
            throw HarnessError("a hot path allocates more than its ceiling (see above)")
        }
    }
}

struct CorpusBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corpus",
        abstract: "Print the benchmark corpus as NDJSON events, ready for `tidings append`."
    )

    @Option(help: "How many events.")
    var events = 1_000

    @Option(help: "The generator's seed (the same seed gives the same bytes).")
    var seed: UInt64 = CorpusGenerator.defaultSeed

    func run() throws {
        var generator = CorpusGenerator(seed: seed)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20 + 70_000)
        for _ in 0..<events {
            buffer += generator.next().json
            buffer.append(10)
            if buffer.count >= 1 << 20 {
                FileHandle.standardOutput.write(Data(buffer))
                buffer.removeAll(keepingCapacity: true)
            }
        }
        FileHandle.standardOutput.write(Data(buffer))
    }
}

/// The `tidings` program the network workloads start (`tidings serve`): the one built beside
/// this program, so both come from the same build.
enum ServerBinary {
    static var path: String {
        get throws {
            let selfPath =
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0]
            let path = URL(fileURLWithPath: selfPath).deletingLastPathComponent().appendingPathComponent("tidings").path
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw ValidationError(
                    "\(path) is missing: build it beside tidings-bench with `swift build -c release --product tidings`")
            }
            return path
        }
    }
}

enum Console {
    static func note(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}

struct HTTPBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Single-event appends through POST /v1/events from concurrent keep-alive clients."
    )

    @Option(help: "Events to append.")
    var events = 50_000

    @Option(help: "Concurrent keep-alive clients.")
    var clients = 64

    @Option(help: "The server's durability: full or normal.")
    var sync = "full"

    @Option(help: "Write the figures as JSON to this file.")
    var json: String?

    func run() async throws {
        let load = HTTPLoad(
            events: events, clients: clients, binary: try ServerBinary.path,
            directory: NSTemporaryDirectory() + "tidings-bench-http")
        let report = BenchmarkReport(machine: .current(), events: events, figures: try await load.run(sync: sync))
        print(report.table)
        if let json { try Data(try report.json()).write(to: URL(fileURLWithPath: json)) }
    }
}

struct FanoutBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "Live delivery to many WebSocket clients: events/s delivered, latency, memory per connection."
    )

    @Option(help: "Connected WebSocket clients (one user each).")
    var clients = 1_000

    @Option(help: "Events to deliver in all.")
    var events = 100_000

    @Option(help: "Events per second to offer; omitted, as fast as the server takes them.")
    var rate: Double?

    @Option(help: "1: one server; 2: append on one process, deliver from another (through Redis).")
    var processes = 1

    @Option(help: "Write the figures as JSON to this file.")
    var json: String?

    func run() async throws {
        let load = FanoutLoad(
            clients: clients, events: events, rate: rate, binary: try ServerBinary.path,
            directory: NSTemporaryDirectory() + "tidings-bench-fanout", topology: .sqlite(processes: processes)
        ) { Console.note($0) }
        let report = BenchmarkReport(machine: .current(), events: events, figures: try await load.run())
        print(report.table)
        if let json { try Data(try report.json()).write(to: URL(fileURLWithPath: json)) }
    }
}

struct WorkloadBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workloads",
        abstract: "W1-W10 beside Redis in the same run: appends, size, replays, rebuild, fan-out, storm, memory.",
        discussion: """
            W1 durable single appends (64 appenders), W1h the same over HTTP, W2 batches of 1,000, \
            W3 bytes on disk, W4 per-user replay p99, W5 full replay, W6 rebuild, W7 fan-out to 1,000 \
            and 10,000 WebSocket clients, W7l its latency at half rate, W8 a reconnect storm, W9 memory \
            per idle connection, W10 100,000 clients on one server (its memory, then one event each; \
            needs root for the open-file limit). `all` runs every one.
            """
    )

    @Argument(help: "Workloads to run: w1 w1h w2 w3 w4 w5 w6 w7 w7l w8 w9 w10, or all.")
    var workloads: [String] = ["all"]

    @Option(help: "Events in the corpus.")
    var events = 1_000_000

    @Option(help: "Runs of each workload (ours and the peer's alternate; medians are reported).")
    var runs = 3

    @Option(help: "Write every figure, the machine and the build mode as JSON to this file.")
    var json: String?

    func validate() throws {
        for name in workloads where name != "all" && PeerBenchmark.Workload(rawValue: name) == nil {
            throw ValidationError("\(name) is not a workload (w1 w1h w2 w3 w4 w5 w6 w7 w7l w8 w9 w10, or all)")
        }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
    }

    func run() async throws {
        let selected =
            workloads.contains("all")
            ? PeerBenchmark.Workload.allCases : workloads.compactMap(PeerBenchmark.Workload.init(rawValue:))
        let directory = NSTemporaryDirectory() + "tidings-bench-workloads"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let benchmark = PeerBenchmark(events: events, runs: runs, binary: try ServerBinary.path, directory: directory) {
            Console.note($0)
        }
        let report = BenchmarkReport(machine: .current(), events: events, figures: try await benchmark.run(selected))
        print(report.table)
        if let json { try Data(try report.json()).write(to: URL(fileURLWithPath: json)) }
    }
}
