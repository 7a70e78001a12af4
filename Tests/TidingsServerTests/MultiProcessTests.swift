import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import TidingsTestSupport

@testable import TidingsServer
@testable import TidingsStore

/// Several `tidings serve` processes on one store: one SQLite file with a real `redis-server`
/// between them, or one PostgreSQL database whose NOTIFY carries every commit to every node.
@Suite(.serialized) struct MultiProcessTests {
    static var binary: String {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("tidings").path
    }

    final class Cluster: @unchecked Sendable {
        // @unchecked: servers are replaced only by the test's own task.
        let directory = NSTemporaryDirectory() + "tidings-cluster-" + UUID().uuidString
        /// The SQLite processes' Redis; none for nodes on PostgreSQL.
        let redis: RedisProcess!
        var servers: [ServerProcess] = []

        init(
            processes: Int, engine: Engine = .sqlite, redisDownAtStart: Bool = false, redisArguments: [String] = []
        ) throws {
            switch engine {
            case .sqlite:
                self.redis = try RedisProcess(arguments: redisArguments)
                if redisDownAtStart { self.redis.kill() }
                for index in 0..<processes {
                    servers.append(
                        try ServerProcess(
                            binary: MultiProcessTests.binary, directory: directory,
                            arguments: ["--redis", self.redis.url, "--sync", "normal"], fresh: index == 0))
                }
            case .postgres:
                self.redis = nil
                let url = try PostgresCluster.shared().makeDatabase()
                for _ in 0..<processes {
                    servers.append(try ServerProcess(binary: MultiProcessTests.binary, postgres: url))
                }
            }
        }

        func token(_ role: Role, _ subject: String) -> String {
            TokenSigner(secret: Array(ServerProcess.secret.utf8)).token(
                subject: subject, role: role, expiresAt: Int64(Date().timeIntervalSince1970) + 3_600)
        }

        func append(through server: Int, _ body: String) async throws {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(servers[server].port)/v1/events")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(token(.publisher, "backend"))")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: Array(body.utf8)))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            _ = try await response.body.collect(upTo: 1 << 20)
            #expect(response.status == .created, "append through \(server)")
        }

        func get(_ server: Int, _ path: String) async throws -> JSONValue {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(servers[server].port)\(path)")
            request.headers.add(name: "Authorization", value: "Bearer \(token(.admin, "ops"))")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            return try JSONValue.parse(Array(try await response.body.collect(upTo: 1 << 24).readableBytesView))
        }

        func metric(_ server: Int, _ name: String) async throws -> Double? {
            let request = HTTPClientRequest(url: "http://127.0.0.1:\(servers[server].port)/metrics")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
            return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap {
                Double($0.split(separator: " ")[1])
            }
        }

        func stop() {
            for server in servers { server.stop(keepStore: true) }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    func events(_ messages: [JSONValue]) -> [Int64] {
        messages.filter { $0.type == "event" }.compactMap { $0["event"]?["stream_seq"]?.integerValue }
    }

    @Test(arguments: Engine.allCases, [2, 3])
    func aClientOnOneProcessGetsEventsAppendedThroughTheOthers(engine: Engine, processes: Int) async throws {
        let cluster = try Cluster(processes: processes, engine: engine)
        defer { cluster.stop() }
        let client = await ServerHarness.stream(
            port: cluster.servers[1].port, hello: ServerHarness.hello(token: cluster.token(.user, "alice")))
        await client.wait { $0.contains { $0.type == "caught_up" } }
        // Appends through every other process at once.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for server in 0..<processes where server != 1 {
                group.addTask {
                    for index in 0..<40 {
                        try await cluster.append(through: server, ServerHarness.created("alice", "p\(server)-\(index)"))
                    }
                }
            }
            try await group.waitForAll()
        }
        let total = 40 * (processes - 1)
        let messages = await client.wait(timeout: .seconds(20)) { self.events($0).count >= total }
        #expect(events(messages) == (1...Int64(total)).map { $0 })
        // All created and none read: the unread count is the stream position.
        for message in messages where message.type == "event" {
            #expect(message["unread_count"]?.integerValue == message["event"]?["stream_seq"]?.integerValue)
        }
        let verify = try await cluster.get(1, "/v1/log/verify")
        #expect(verify["ok"]?.boolValue == true)
        #expect(verify["head_seq"]?.integerValue == Int64(total))
    }

    @Test func redisDiesAndComesBackWhileEventsFlow() async throws {
        let cluster = try Cluster(processes: 2)
        defer { cluster.stop() }
        let clients = [
            await ServerHarness.stream(
                port: cluster.servers[1].port, hello: ServerHarness.hello(token: cluster.token(.user, "alice"))),
            await ServerHarness.stream(
                port: cluster.servers[0].port, hello: ServerHarness.hello(token: cluster.token(.user, "alice"))),
        ]
        for client in clients { await client.wait { $0.contains { $0.type == "caught_up" } } }
        for index in 0..<200 {
            if index == 50 { cluster.redis.kill() }
            if index == 130 { try cluster.redis.start() }
            try await cluster.append(through: 0, ServerHarness.created("alice", "n-\(index)"))
        }
        for client in clients {
            let messages = await client.wait(timeout: .seconds(20)) { self.events($0).count >= 200 }
            #expect(events(messages) == (1...200).map { Int64($0) }, "every event once, in order")
        }
        // Process 1 heard through Redis before and after the outage, and reconnected.
        for _ in 0..<100 where (try await cluster.metric(1, "tidings_redis_connections") ?? 0) < 2 {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect((try await cluster.metric(1, "tidings_redis_received_events") ?? 0) > 0)
        #expect((try await cluster.metric(1, "tidings_redis_connections") ?? 0) >= 2)
    }

    /// Redis stops answering for four seconds (`DEBUG SLEEP`): appends do not wait for it, and
    /// a client of the other process still gets every event within about a second, from the
    /// log, before Redis wakes; once it does, nothing arrives twice.
    @Test func aRedisThatAnswersSlowlyDelaysNothing() async throws {
        let cluster = try Cluster(processes: 2, redisArguments: ["--enable-debug-command", "local"])
        defer { cluster.stop() }
        let client = await ServerHarness.stream(
            port: cluster.servers[1].port, hello: ServerHarness.hello(token: cluster.token(.user, "alice")))
        await client.wait { $0.contains { $0.type == "caught_up" } }
        try await cluster.append(through: 0, ServerHarness.created("alice", "n-warm"))
        await client.wait { self.events($0).count >= 1 }
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        sleeper.arguments = ["-p", "\(cluster.redis.port)", "DEBUG", "SLEEP", "4"]
        sleeper.standardOutput = FileHandle.nullDevice
        try sleeper.run()
        try await Task.sleep(for: .milliseconds(200))
        let asleepSince = ContinuousClock.now
        var slowest = Duration.zero
        for index in 0..<30 {
            let started = ContinuousClock.now
            try await cluster.append(through: 0, ServerHarness.created("alice", "n-\(index)"))
            slowest = max(slowest, ContinuousClock.now - started)
        }
        #expect(slowest < .seconds(1), "an append waited \(slowest) on a sleeping Redis")
        let during = await client.wait(timeout: .seconds(3)) { self.events($0).count >= 31 }
        #expect(events(during) == (1...31).map { Int64($0) }, "delivered from the log while Redis sleeps")
        #expect(ContinuousClock.now - asleepSince < .seconds(4), "before Redis woke")
        sleeper.waitUntilExit()
        for index in 30..<40 {
            try await cluster.append(through: 0, ServerHarness.created("alice", "n-\(index)"))
        }
        let after = await client.wait(timeout: .seconds(10)) { self.events($0).count >= 41 }
        try await Task.sleep(for: .milliseconds(500))
        #expect(events(client.received()) == (1...41).map { Int64($0) }, "every event once, in order")
        _ = after
    }

    @Test func redisDownAtStartDelaysNothingThatMatters() async throws {
        let cluster = try Cluster(processes: 2, redisDownAtStart: true)
        defer { cluster.stop() }
        let client = await ServerHarness.stream(
            port: cluster.servers[1].port, hello: ServerHarness.hello(token: cluster.token(.user, "alice")))
        await client.wait { $0.contains { $0.type == "caught_up" } }
        for index in 0..<20 { try await cluster.append(through: 0, ServerHarness.created("alice", "down-\(index)")) }
        var messages = await client.wait(timeout: .seconds(10)) { self.events($0).count >= 20 }
        #expect(events(messages) == (1...20).map { Int64($0) })
        try cluster.redis.start()
        for index in 0..<20 { try await cluster.append(through: 0, ServerHarness.created("alice", "up-\(index)")) }
        messages = await client.wait(timeout: .seconds(10)) { self.events($0).count >= 40 }
        #expect(events(messages) == (1...40).map { Int64($0) })
    }

    @Test(arguments: Engine.allCases)
    func clientsOfAKilledProcessResumeOnAnotherAndMissNothing(engine: Engine) async throws {
        let cluster = try Cluster(processes: 2, engine: engine)
        defer { cluster.stop() }
        let users = (0..<5).map { "user-\($0)" }
        var clients: [ServerHarness.StreamClient] = []
        for user in users {
            let client = await ServerHarness.stream(
                port: cluster.servers[0].port, hello: ServerHarness.hello(token: cluster.token(.user, user)))
            await client.wait { $0.contains { $0.type == "caught_up" } }
            clients.append(client)
        }
        let appending = Task {
            for index in 0..<300 {
                try await cluster.append(through: 1, ServerHarness.created(users[index % users.count], "n-\(index)"))
            }
        }
        // Kill the clients' process once events are flowing, well before the appends end.
        for _ in 0..<500 {
            if clients.map({ self.events($0.received()).count }).reduce(0, +) >= 20 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        cluster.servers[0].kill()
        // Each client resumes on the other process with the cursor of the last event it processed.
        var resumed: [(ServerHarness.StreamClient, [Int64])] = []
        for (index, client) in clients.enumerated() {
            _ = await client.waitForClose()
            let seen = events(client.received())
            let cursor = client.received().last(where: { $0.type == "event" })?["event"]?["cursor"]?.stringValue
            let again = await ServerHarness.stream(
                port: cluster.servers[1].port,
                hello: ServerHarness.hello(token: cluster.token(.user, users[index]), cursor: cursor))
            resumed.append((again, seen))
        }
        try await appending.value
        #expect(resumed.contains { $0.1.count < 60 }, "the kill came while events were still being appended")
        #expect(resumed.map(\.1.count).reduce(0, +) >= 20)
        for (client, seen) in resumed {
            let messages = await client.wait(timeout: .seconds(20)) { seen.count + self.events($0).count >= 60 }
            #expect(seen + events(messages) == (1...60).map { Int64($0) }, "nothing missed, nothing twice")
        }
        let verify = try await cluster.get(1, "/v1/log/verify")
        #expect(verify["ok"]?.boolValue == true)
        #expect(verify["head_seq"]?.integerValue == 300)
        let projection = try await cluster.get(1, "/v1/stats")
        #expect(projection["events"]?.integerValue == 300)
    }
}
