import Foundation
import NIOHTTP1
import Testing
import TidingsSQLite
import TidingsStore

@testable import TidingsServer

/// The store's file system fills up under a running server: appends fail with
/// `503 unavailable` and a log line that names the cause, nothing acknowledged is lost, and
/// appends work again by themselves once there is space. A read-only store is refused at start. The store lives on a small
/// tmpfs mounted for the test (it needs the right to mount, which root has on this machine and
/// in CI; elsewhere the test says so and does nothing).
@Suite(.serialized) struct DiskFaultTests {
    /// A tmpfs of `kilobytes`, resized and remounted by the test, unmounted at the end.
    final class SmallFileSystem {
        let path = NSTemporaryDirectory() + "tidings-tmpfs-" + UUID().uuidString

        init?(kilobytes: Int) {
            try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            guard Self.mount(["-t", "tmpfs", "-o", "size=\(kilobytes)k", "tmpfs", path]) else { return nil }
        }

        func remount(_ options: String) {
            #expect(Self.mount(["-o", "remount,\(options)", path]), "remount \(options)")
        }

        func unmount() {
            _ = Self.run("/bin/umount", ["-l", path])
            try? FileManager.default.removeItem(atPath: path)
        }

        static func mount(_ arguments: [String]) -> Bool { run("/bin/mount", arguments) }

        static func run(_ tool: String, _ arguments: [String]) -> Bool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = arguments
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return false }
            process.waitUntilExit()
            return process.terminationStatus == 0
        }
    }

    static func batch(_ round: Int) -> String {
        let body = String(repeating: "Disk pressure ", count: 20)
        let events = (0..<50).map { item in
            #"{"type":"notification.created","user_id":"u\#(item % 7)","id":"e-\#(round)-\#(item)","data":{"notification_id":"n-\#(round)-\#(item)","title":"Round \#(round)","body":"\#(body)\#(round * 100 + item)"}}"#
        }
        return #"{"events":[\#(events.joined(separator: ","))]}"#
    }

    /// Appends batches until one is refused; returns the rounds acknowledged and the refusal.
    static func appendUntilRefused(
        _ server: ServerHarness, from start: Int, max: Int
    ) async throws -> (acknowledged: [Int], refusal: ServerHarness.Reply?) {
        var acknowledged: [Int] = []
        for round in start..<(start + max) {
            let reply = try await server.request(
                .POST, "/v1/events", token: ServerHarness.publisher, body: batch(round))
            guard reply.status == 201 else { return (acknowledged, reply) }
            acknowledged.append(round)
        }
        return (acknowledged, nil)
    }

    /// Appends `round` until it is accepted, for up to ten seconds.
    static func appendWhenBack(_ server: ServerHarness, round: Int) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let reply = try await server.request(
                .POST, "/v1/events", token: ServerHarness.publisher, body: batch(round))
            if reply.status == 201 { return true }
            #expect(reply.status == 503, "\(reply.status) \(reply.text)")
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    static func checkEverything(_ server: ServerHarness, acknowledged: [Int]) async throws {
        let log = try await server.store.verifyLog()
        #expect(log.ok, "\(log)")
        #expect(log.headSeq == Int64(acknowledged.count * 50), "exactly the acknowledged appends are in the log")
        let projection = try await server.store.verifyProjections()
        #expect(projection.ok, "\(projection.mismatches.prefix(3))")
        for round in acknowledged {
            let reply = try await server.request(
                .POST, "/v1/events", token: ServerHarness.publisher, body: batch(round))
            #expect(reply.status == 200, "round \(round) is in the log: appending it again is a duplicate")
        }
    }

    @Test func aFullDiskRefusesAppendsThenRecoversByItself() async throws {
        guard let disk = SmallFileSystem(kilobytes: 3 * 1024) else {
            print("DiskFaultTests: cannot mount a tmpfs here (needs root); skipped")
            return
        }
        defer { disk.unmount() }
        let logs = LogCapture()
        let server = try await ServerHarness(
            directory: disk.path + "/store", logs: logs, tuneStore: { $0.pageCacheBytes = 1 << 20 })
        let (acknowledged, refusal) = try await Self.appendUntilRefused(server, from: 0, max: 2_000)
        #expect(!acknowledged.isEmpty)
        let refused = try #require(refusal, "a 3 MiB file system fills up")
        #expect(refused.status == 503)
        #expect(refused.json["error"]?["code"]?.stringValue == "unavailable")
        #expect(logs.all.contains { $0.hasPrefix("error") && $0.contains("full") }, "a log line names the cause")
        #expect(try await server.store.headSeq() == Int64(acknowledged.count * 50), "a refused batch adds nothing")
        // Reads go on while the disk is full.
        #expect(try await server.request(.GET, "/v1/users/u1/unread", token: ServerHarness.admin).status == 200)
        // Space returns; the next append is accepted without a restart.
        disk.remount("size=64m")
        let next = acknowledged.count + 1_000
        #expect(try await Self.appendWhenBack(server, round: next))
        try await Self.checkEverything(server, acknowledged: acknowledged + [next])
        await server.stop()
        try await server.start()
        try await Self.checkEverything(server, acknowledged: acknowledged + [next])
        await server.stop()
    }

    /// A file system cannot turn read-only under open files (remount fails with EBUSY), so this
    /// is the read-only store an operator meets at start: refused with an error that names the
    /// path and the fix, nothing changed; writable again, it opens with everything in it.
    @Test func aReadOnlyStoreIsRefusedAtStartWithTheReasonThenOpensWhenWritable() async throws {
        guard let disk = SmallFileSystem(kilobytes: 64 * 1024) else {
            print("DiskFaultTests: cannot mount a tmpfs here (needs root); skipped")
            return
        }
        defer { disk.unmount() }
        let server = try await ServerHarness(directory: disk.path + "/store")
        let (acknowledged, _) = try await Self.appendUntilRefused(server, from: 0, max: 5)
        #expect(acknowledged.count == 5)
        await server.stop()
        disk.remount("ro")
        do {
            try await server.start()
            Issue.record("a server started on a read-only store")
        } catch let error as StoreError {
            #expect(error.code == .unavailable)
            #expect(error.message.contains("not writable") && error.message.contains("Read-only file system"))
        }
        disk.remount("rw")
        try await server.start()
        try await Self.checkEverything(server, acknowledged: acknowledged)
        await server.stop()
    }
}
