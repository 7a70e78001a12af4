import Foundation
import Testing
import TidingsTestSupport

@testable import TidingsSQLite
@testable import TidingsStore

/// A child process (`tidings append --results`) appends and prints each acknowledged event; the
/// test kills it with SIGKILL at a random moment, reopens the store and checks that every
/// acknowledged event is there exactly once, the chain verifies and the projection matches a
/// rebuild.
@Suite struct CrashTests {
    static var tidingsBinary: String {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return executable.deletingLastPathComponent().appendingPathComponent("tidings").path
    }

    struct Acknowledged {
        var seq: Int64
        var id: String
    }

    /// Runs the child on `lines` of NDJSON and kills it after `delay`; returns what it acknowledged.
    func appendAndKill(directory: String, input: String, batchSize: Int, delay: Duration) async throws -> [Acknowledged]
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.tidingsBinary)
        process.arguments = ["append", "--data", directory, "--batch-size", "\(batchSize)", "--results", input]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        try await Task.sleep(for: delay)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        var acknowledged: [Acknowledged] = []
        // Only whole lines count: the last one may have been cut by the kill.
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .dropLast()
        {
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                continue
            }
            if let seq = object["seq"] as? Int, let id = object["id"] as? String {
                acknowledged.append(Acknowledged(seq: Int64(seq), id: id))
            }
        }
        return acknowledged
    }

    @Test func killedAppenderLosesNothingAcknowledged() async throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.tidingsBinary), "build the tidings executable first")
        let directory = NSTemporaryDirectory() + "tidings-crash-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var corpus = CorpusGenerator(seed: 77, userCount: 300)
        var lines: [String] = []
        for index in 0..<12_000 {
            let event = corpus.next()
            lines.append(
                #"{"type":"\#(event.type)","user_id":"\#(event.userID)","id":"crash-\#(index)","data":\#(String(decoding: event.data, as: UTF8.self))}"#
            )
        }
        var random = SeededGenerator(seed: UInt64(Date().timeIntervalSince1970))
        var acknowledged: [String: Int64] = [:]
        var offset = 0
        let rounds = 24
        for round in 0..<rounds {
            // Each round re-sends the tail of the previous one: retries after a crash.
            let start = max(0, offset - 50)
            let end = min(lines.count, start + 500 + Int(random.next() % 500))
            let input = directory + "/input-\(round).ndjson"
            try lines[start..<end].joined(separator: "\n").write(toFile: input, atomically: true, encoding: .utf8)
            let batch = Int(random.next() % 64) + 1
            let delay = Duration.milliseconds(Int(random.next() % 250) + 20)
            for ack in try await appendAndKill(
                directory: directory + "/store", input: input, batchSize: batch, delay: delay)
            {
                if let seq = acknowledged[ack.id] { #expect(seq == ack.seq, "id \(ack.id) acknowledged at two seqs") }
                acknowledged[ack.id] = ack.seq
            }
            offset = end
        }
        let store = try await SQLiteStore.open(directory: directory + "/store")
        defer { store.close() }
        let verification = try await store.verifyLog()
        #expect(verification.ok, "\(String(describing: verification.problem))")
        var stored: [String: Int64] = [:]
        var expectedSeq: Int64 = 1
        try await store.exportAll(after: nil) { event in
            #expect(event.seq == expectedSeq)
            expectedSeq += 1
            #expect(stored[event.id] == nil, "id \(event.id) stored twice")
            stored[event.id] = event.seq
            return true
        }
        for (id, seq) in acknowledged {
            #expect(stored[id] == seq, "acknowledged \(id) at seq \(seq) is not in the log")
        }
        let projection = try await store.verifyProjections()
        #expect(projection.ok, "\(projection.mismatches)")
        #expect(acknowledged.count > 0)
        print("crash test: \(rounds) kills, \(acknowledged.count) acknowledged, \(stored.count) in the log")
    }
}

extension SQLiteStore {
    /// `exportAll` with a non-Sendable closure, for tests that collect into local state.
    @discardableResult
    func exportAll(after: String?, _ body: @escaping (StoredEvent) throws -> Bool) async throws -> Int {
        let collected = try await allEventsForTests()
        var count = 0
        for event in collected {
            count += 1
            guard try body(event) else { break }
        }
        return count
    }

    func allEventsForTests() async throws -> [StoredEvent] {
        var events: [StoredEvent] = []
        var cursor: String?
        while true {
            let page = try await allEvents(after: cursor, limit: 1000)
            events += page.events
            cursor = page.nextCursor
            if !page.hasMore { return events }
        }
    }
}
