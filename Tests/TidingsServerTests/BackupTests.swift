import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import TidingsTestSupport

@testable import TidingsSQLite
@testable import TidingsServer
@testable import TidingsStore

/// `tidings backup` and `tidings restore`, as an operator runs them beside a real `tidings serve`.
@Suite(.serialized) struct BackupTests {
    static func token(_ role: Role, _ subject: String) -> String {
        TokenSigner(secret: Array(ServerProcess.secret.utf8)).token(
            subject: subject, role: role, expiresAt: Int64(Date().timeIntervalSince1970) + 3_600)
    }

    /// Runs the `tidings` command line to its end, without holding a thread while it runs.
    static func tidings(_ arguments: [String]) async throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: MultiProcessTests.binary)
        process.arguments = arguments
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        let ended = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in ended.continuation.finish() }
        try process.run()
        // Read while it runs: a full pipe would stop the process.
        async let out = Task.detached { output.fileHandleForReading.readDataToEndOfFile() }.value
        async let err = Task.detached { error.fileHandleForReading.readDataToEndOfFile() }.value
        for await _ in ended.stream {}
        return (
            process.terminationStatus, String(decoding: await out, as: UTF8.self),
            String(decoding: await err, as: UTF8.self)
        )
    }

    /// Appends `events` as one batch; returns their seqs.
    static func append(port: Int, _ events: [String]) async throws -> [Int64] {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/events")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token(.publisher, "backend"))")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"events":[\#(events.joined(separator: ","))]}"#))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try JSONValue.parse(Array(try await response.body.collect(upTo: 1 << 24).readableBytesView))
        guard response.status == .created, let results = body["results"]?.arrayValue else {
            throw HarnessError("append answered \(response.status)")
        }
        return results.compactMap { $0["event"]?["seq"]?.integerValue }
    }

    static func scratch(_ name: String) -> String {
        NSTemporaryDirectory() + "tidings-\(name)-" + UUID().uuidString
    }

    static func headSeq(_ output: String) -> Int64? {
        output.split(separator: " ").drop { $0 != "seq" }.dropFirst().first.flatMap { Int64($0) }
    }

    /// While batches of 50 events are appended without pause: every batch acknowledged before the
    /// backup began is in it, and no batch is in it in part (each is one commit). A flood that
    /// would slow other tests' timeouts: tools/test runs this suite alone.
    @Test func aBackupTakenUnderLoadHoldsEveryAcknowledgedEventAndNoHalfBatch() async throws {
        let directory = Self.scratch("backup-load")
        let file = directory + ".backup"
        let server = try ServerProcess(binary: MultiProcessTests.binary, directory: directory)
        defer {
            server.stop()
            try? FileManager.default.removeItem(atPath: file)
        }
        let acknowledged = Atomic<Int64>(0)
        let load = Task {
            var batch = 0
            while !Task.isCancelled {
                let seqs = try await Self.append(
                    port: server.port,
                    (0..<50).map {
                        ServerHarness.created(
                            "u\($0 % 13)", "n-\(batch)-\($0)", title: String(repeating: "t", count: 200))
                    })
                acknowledged.store(seqs.max() ?? 0, ordering: .sequentiallyConsistent)
                batch += 1
            }
        }
        while acknowledged.load(ordering: .sequentiallyConsistent) < 5_000 {
            try await Task.sleep(for: .milliseconds(20))
        }
        let before = acknowledged.load(ordering: .sequentiallyConsistent)
        let backup = try await Self.tidings(["backup", "--data", directory, "--to", file])
        let after = acknowledged.load(ordering: .sequentiallyConsistent)
        load.cancel()
        _ = await load.result
        #expect(backup.status == 0, "\(backup.error)")
        let head = try #require(Self.headSeq(backup.output), "\(backup.output)")
        #expect(head >= before, "every event acknowledged before the backup began is in it")
        #expect(head % 50 == 0, "no batch in part: head \(head)")
        #expect(after > before, "appends went on during the backup")
        // The copy opens as a store and verifies on its own.
        let restored = Self.scratch("backup-open")
        defer { try? FileManager.default.removeItem(atPath: restored) }
        let restore = try await Self.tidings(["restore", "--from", file, "--data", restored])
        #expect(restore.status == 0, "\(restore.error)")
        let store = try await SQLiteStore.open(directory: restored)
        defer { store.close() }
        #expect(try await store.headSeq() == head)
        let verification = try await store.verifyLog()
        #expect(verification.ok && verification.events == head)
    }

    @Test func aRestoreResetsEveryClientAndThenStreamsLive() async throws {
        let directory = Self.scratch("restore")
        let file = directory + ".backup"
        var server = try ServerProcess(binary: MultiProcessTests.binary, directory: directory)
        let port = server.port
        defer {
            server.stop()
            try? FileManager.default.removeItem(atPath: file)
        }
        _ = try await Self.append(port: port, (1...5).map { ServerHarness.created("alice", "n-\($0)") })
        let alice = ServerHarness.hello(token: Self.token(.user, "alice"))
        let first = await ServerHarness.stream(port: port, hello: alice)
        let replay = await first.wait { $0.last?.type == "caught_up" }
        let cursor = try #require(replay.last { $0.type == "event" }?["event"]?["cursor"]?.stringValue)
        try await first.close()
        #expect(try await Self.tidings(["backup", "--data", directory, "--to", file]).status == 0)
        _ = try await Self.append(port: port, [ServerHarness.created("alice", "lost-after-backup")])

        let refused = try await Self.tidings(["restore", "--from", file, "--data", directory, "--replace"])
        #expect(refused.status == 1)
        #expect(refused.error.contains("has the store in \(directory) open"), "\(refused.error)")
        server.stop(keepStore: true)
        let unreplaced = try await Self.tidings(["restore", "--from", file, "--data", directory])
        #expect(unreplaced.status == 1)
        #expect(unreplaced.error.contains("pass --replace"), "\(unreplaced.error)")
        let restore = try await Self.tidings(["restore", "--from", file, "--data", directory, "--replace"])
        #expect(restore.status == 0, "\(restore.error)")
        #expect(restore.output.contains("kept as \(directory)/tidings.sqlite.before-restore-"))

        server = try ServerProcess(binary: MultiProcessTests.binary, directory: directory, port: port, fresh: false)
        let again = await ServerHarness.stream(
            port: port, hello: ServerHarness.hello(token: Self.token(.user, "alice"), cursor: cursor))
        let reset = await again.wait { $0.contains { $0.type == "reset" } }
        #expect(reset.first { $0.type == "reset" }?["reason"]?.stringValue == "epoch_mismatch")
        #expect(reset.first { $0.type == "reset" }?["unread_count"]?.integerValue == 5)
        let welcomeEpoch = reset.first { $0.type == "welcome" }?["epoch"]?.stringValue
        #expect(restore.output.contains("new epoch \(welcomeEpoch ?? "?")"))
        _ = try await Self.append(port: port, [ServerHarness.created("alice", "n-6")])
        let live = await again.wait { $0.last?.type == "event" }
        #expect(live.last?["event"]?["data"]?["notification_id"]?.stringValue == "n-6")
        #expect(live.last?["event"]?["seq"]?.integerValue == 6, "the event appended after the backup is gone")
        try await again.close()
        // The restored log still verifies: its derived ids keep the epoch they were made in.
        let verify = try await Self.tidings(["verify", "--data", directory, "--projections"])
        #expect(verify.status == 0)
        #expect(verify.output.hasPrefix("ok: 6 events"), "\(verify.output)")
    }

    /// Flips one bit of the last sealed block's payload in the file's bytes, as a bad disk would
    /// (the table itself refuses updates); returns the block's first seq.
    static func flipBitInLastBlock(of path: String) throws -> Int64 {
        let database = try Database(path: path, mode: .readOnly)
        let read = try database.prepare("SELECT first_seq, payload FROM blocks ORDER BY first_seq DESC LIMIT 1")
        let found = try read.step()
        let (firstSeq, payload) = (read.int64(0), read.bytes(1))
        read.reset()
        database.close()
        guard found else { throw HarnessError("\(path) has no sealed block") }
        var file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // A slice from the payload's middle, found where it lies in the file.
        for offset in stride(from: payload.count / 2, to: payload.count - 64, by: 97) {
            let needle = payload[offset..<(offset + 32)]
            guard let at = (0..<(file.count - 32)).first(where: { file[$0..<($0 + 32)].elementsEqual(needle) }) else {
                continue
            }
            file[at + 16] ^= 0x40
            try Data(file).write(to: URL(fileURLWithPath: path))
            return firstSeq
        }
        throw HarnessError("the payload's bytes were not found in \(path)")
    }

    @Test func aTruncatedOrDamagedBackupIsRefusedAndChangesNothing() async throws {
        let directory = Self.scratch("damaged")
        let file = directory + ".backup"
        let server = try ServerProcess(binary: MultiProcessTests.binary, directory: directory)
        defer {
            server.stop()
            for path in [file, file + ".truncated", file + ".damaged"] {
                try? FileManager.default.removeItem(atPath: path)
            }
        }
        for batch in 0..<4 {
            _ = try await Self.append(
                port: server.port, (0..<500).map { ServerHarness.created("u\($0 % 7)", "n-\(batch)-\($0)") })
        }
        #expect(try await Self.tidings(["backup", "--data", directory, "--to", file]).status == 0)
        let again = try await Self.tidings(["backup", "--data", directory, "--to", file])
        #expect(again.status == 1 && again.error.contains("exists"), "\(again.error)")

        let whole = try Data(contentsOf: URL(fileURLWithPath: file))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: file + ".truncated"))
        try whole.write(to: URL(fileURLWithPath: file + ".damaged"))
        // One bit of the last sealed block's compressed payload flipped, as a bad disk would.
        let firstSeq = try Self.flipBitInLastBlock(of: file + ".damaged")

        let target = Self.scratch("damaged-target")
        defer { try? FileManager.default.removeItem(atPath: target) }
        let truncated = try await Self.tidings(["restore", "--from", file + ".truncated", "--data", target])
        #expect(truncated.status == 1)
        #expect(truncated.error.contains("is not a whole Tidings backup"), "\(truncated.error)")
        let damaged = try await Self.tidings(["restore", "--from", file + ".damaged", "--data", target])
        #expect(damaged.status == 1)
        #expect(damaged.error.contains("is damaged at seq \(firstSeq)"), "\(damaged.error)")
        #expect(!FileManager.default.fileExists(atPath: target), "a refused restore leaves nothing behind")
    }
}
