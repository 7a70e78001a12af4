import ArgumentParser
import Foundation
import TidingsBench
import TidingsStore

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks on a deterministic notification corpus.",
        discussion: """
            Every workload uses the same seeded corpus: 80% notification.created, 20% notification.read,
            users drawn from a Zipf distribution over 100,000 ids, about 420 bytes of JSON per event.
              tidings bench store --events 1000000 --json store.json
              tidings bench corpus --events 10000 > events.ndjson
            """,
        subcommands: [StoreBench.self, CorpusBench.self]
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
        let output = try OutputWriter(path: nil)
        for _ in 0..<events {
            output.withBuffer {
                $0 += generator.next().json
                $0.append(10)
            }
        }
        output.flush()
    }
}
