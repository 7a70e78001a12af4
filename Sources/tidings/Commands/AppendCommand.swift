import ArgumentParser
import Foundation
import TidingsStore

struct AppendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append",
        abstract: "Append events read as NDJSON from a file or standard input.",
        discussion: """
            Each line is one event object, as POST /v1/events takes it:
              {"type":"notification.created","user_id":"alice","id":"evt-1","data":{"notification_id":"n-1","title":"Hi"}}
              {"type":"notification.read","user_id":"alice","data":{"notification_id":"n-1"}}
            Lines are appended in batches; each batch is atomic. A retried line with the same id is a \
            duplicate, not a second event. A bad line stops the run with its line number; the batches \
            before it stay appended.

            Examples:
              tidings append --data ./data events.ndjson
              cat events.ndjson | tidings append --data ./data --results > results.ndjson
            """
    )

    @OptionGroup var store: StoreLocation

    @Argument(help: ArgumentHelp("NDJSON file to read; - or nothing for standard input.", valueName: "file"))
    var file: String?

    @Option(help: "Events per atomic batch (1-1000).")
    var batchSize = 1_000

    @Flag(help: "Print one NDJSON result per event to standard output as soon as its batch is committed.")
    var results = false

    func validate() throws {
        guard (1...Limits.batchEventsMax).contains(batchSize) else {
            throw ValidationError("--batch-size must be between 1 and \(Limits.batchEventsMax)")
        }
    }

    func run() async throws {
        var reader = try LineReader(path: file)
        let bar = ProgressBar("appending")
        let store = try await store.open()
        defer { store.close() }
        let output = try OutputWriter(path: nil)
        var counts: [AppendResult.Status: Int] = [:]
        var batch: [NewEvent] = []
        var lines: [Int] = []
        var lineNumber = 0
        let started = ContinuousClock.now
        func flush() async throws {
            guard !batch.isEmpty else { return }
            let outcome: [AppendResult]
            do {
                outcome = try await store.append(batch)
            } catch let error as StoreError {
                let line = error.index.map { lines[$0] } ?? lines[0]
                let done = counts.values.reduce(0, +)
                throw CLIError(
                    "line \(line): \(error.code): \(error.message) (the \(done) events before this batch were appended)"
                )
            }
            for (index, result) in outcome.enumerated() {
                counts[result.status, default: 0] += 1
                guard results else { continue }
                var line = Array(#"{"line":"#.utf8) + Array(String(lines[index]).utf8)
                line += Array(#","status":""#.utf8) + Array(result.status.rawValue.utf8) + [UInt8(ascii: "\"")]
                if let event = result.event {
                    line += Array(#","seq":"#.utf8) + Array(String(event.seq).utf8)
                    line += Array(#","id":""#.utf8) + Array(event.id.utf8) + [UInt8(ascii: "\"")]
                }
                line += Array("}\n".utf8)
                output.write(line)
            }
            if results { output.flush() }
            batch.removeAll(keepingCapacity: true)
            lines.removeAll(keepingCapacity: true)
            if let total = reader.totalBytes { bar.update(reader.consumed, of: total) }
        }
        while let line = reader.next() {
            lineNumber += 1
            if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
            do {
                batch.append(try EventDecoder.decodeEvent(Array(line)))
            } catch {
                try await flush()
                throw CLIError("line \(lineNumber): \(error.code): \(error.message)")
            }
            lines.append(lineNumber)
            if batch.count == batchSize { try await flush() }
        }
        try await flush()
        output.flush()
        bar.finish()
        let seconds = (ContinuousClock.now - started).seconds
        let total = counts.values.reduce(0, +)
        Console.note(
            String(
                format: "appended %d, duplicates %d, noops %d (%d events in %.2fs)", counts[.appended] ?? 0,
                counts[.duplicate] ?? 0, counts[.noop] ?? 0, total, seconds))
    }
}

/// A one-line error for the user; the command exits with status 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
