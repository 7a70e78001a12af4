import Foundation
import NIOHTTP1
import Synchronization
import Testing
import TidingsTestSupport

@testable import TidingsSQLite
@testable import TidingsServer
@testable import TidingsStore

/// The WebSocket stream of PROTOCOL.md with a real client (HummingbirdWSClient).
@Suite(.serialized) struct StreamTests {
    func events(_ messages: [JSONValue]) -> [Int64] {
        messages.filter { $0.type == "event" }.compactMap(\.seq)
    }

    @Test(arguments: Engine.allCases) func resumeFromTheMiddleReplaysExactlyWhatWasMissed(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine)
        try await server.append((1...10).map { ServerHarness.created("alice", "n-\($0)") })
        _ = try await server.request(
            .POST, "/v1/users/alice/read", token: ServerHarness.user("alice"), body: #"{"notification_ids":["n-2"]}"#)
        let cursor = server.store.unanchoredUserCursor("alice", streamSeq: 4)
        let client = await server.stream(hello: ServerHarness.hello(token: ServerHarness.user("alice"), cursor: cursor))
        let messages = await client.wait { $0.contains { $0.type == "caught_up" } }
        #expect(messages.first?.type == "welcome")
        #expect(messages.first?["stream"]?.stringValue == "user:alice")
        #expect(messages.first?["epoch"]?.stringValue == server.store.epochText)
        #expect(
            Cursor.samePosition(
                messages.first?["head"]?.stringValue, server.store.unanchoredUserCursor("alice", streamSeq: 11)))
        #expect(messages.first?["unread_count"]?.integerValue == 9)
        #expect(events(messages) == [5, 6, 7, 8, 9, 10, 11])
        let unreadCounts = messages.filter { $0.type == "event" }.compactMap { $0["unread_count"]?.integerValue }
        #expect(unreadCounts == [5, 6, 7, 8, 9, 10, 9])
        let caughtUp = try #require(messages.last)
        #expect(caughtUp.type == "caught_up")
        #expect(
            Cursor.samePosition(
                caughtUp["cursor"]?.stringValue, server.store.unanchoredUserCursor("alice", streamSeq: 11)))
        #expect(caughtUp["unread_count"]?.integerValue == 9)
        // Live events follow.
        try await server.append([ServerHarness.created("alice", "live")])
        let live = await client.wait { self.events($0).count == 8 }
        #expect(events(live).last == 12)
        #expect(
            Cursor.samePosition(
                live.last?["event"]?["cursor"]?.stringValue, server.store.unanchoredUserCursor("alice", streamSeq: 12)))
        try await client.close()
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func emptyReplayStillSaysCaughtUpWithTheCountAtTheCursor(
        engine: Engine
    ) async throws {
        let server = try await ServerHarness(engine: engine)
        try await server.append((1...3).map { ServerHarness.created("alice", "n-\($0)") })
        let head = server.store.unanchoredUserCursor("alice", streamSeq: 3)
        let client = await server.stream(hello: ServerHarness.hello(token: ServerHarness.user("alice"), cursor: head))
        let messages = await client.wait { $0.contains { $0.type == "caught_up" } }
        #expect(messages.map { $0.type ?? "" } == ["welcome", "caught_up"])
        #expect(messages[1]["unread_count"]?.integerValue == 3)
        let fresh = await server.stream(hello: ServerHarness.hello(token: ServerHarness.user("nobody")))
        let empty = await fresh.wait { $0.contains { $0.type == "caught_up" } }
        #expect(empty.map { $0.type ?? "" } == ["welcome", "caught_up"])
        #expect(empty[0]["unread_count"]?.integerValue == 0)
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func resumeAcrossAServerRestart(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine)
        try await server.append((1...5).map { ServerHarness.created("alice", "n-\($0)") })
        let client = await server.stream(hello: ServerHarness.hello(token: ServerHarness.user("alice")))
        let first = await client.wait { $0.contains { $0.type == "caught_up" } }
        let lastCursor = try #require(first.last(where: { $0.type == "event" })?["event"]?["cursor"]?.stringValue)
        await server.stop()
        #expect(await client.waitForClose() == 1001)
        try await server.start()
        try await server.append((6...8).map { ServerHarness.created("alice", "n-\($0)") })
        let resumed = await server.stream(
            hello: ServerHarness.hello(token: ServerHarness.user("alice"), cursor: lastCursor))
        let messages = await resumed.wait { $0.contains { $0.type == "caught_up" } }
        #expect(events(messages) == [6, 7, 8])
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func twoDevicesOfOneUserBothGetEverythingAndAReadReachesBoth(
        engine: Engine
    ) async throws {
        let server = try await ServerHarness(engine: engine)
        try await server.append([ServerHarness.created("alice", "n-1")])
        let token = ServerHarness.user("alice")
        let phone = await server.stream(hello: ServerHarness.hello(token: token))
        let laptop = await server.stream(
            hello: ServerHarness.hello(token: nil), headers: [("Authorization", "Bearer \(token)")])
        await phone.wait { $0.contains { $0.type == "caught_up" } }
        await laptop.wait { $0.contains { $0.type == "caught_up" } }
        try await server.append([ServerHarness.created("alice", "n-2")])
        try await phone.send(#"{"type":"read","ref":"r-1","notification_ids":["n-1","n-2"]}"#)
        let phoneMessages = await phone.wait { $0.contains { $0.type == "ack" } }
        let laptopMessages = await laptop.wait { self.events($0).count == 4 }
        #expect(events(phoneMessages) == [1, 2, 3, 4])
        #expect(events(laptopMessages) == [1, 2, 3, 4])
        let ack = try #require(phoneMessages.last)
        #expect(ack.type == "ack")
        #expect(ack["ref"]?.stringValue == "r-1")
        #expect(ack["status"]?.stringValue == "ok")
        #expect(ack["unread_count"]?.integerValue == 0)
        // The ack comes after the read events it caused.
        #expect(phoneMessages.firstIndex { $0.type == "ack" }! > phoneMessages.lastIndex { $0.type == "event" }!)
        #expect(!laptopMessages.contains { $0.type == "ack" })
        try await phone.send(#"{"type":"read","ref":"r-2","all":true}"#)
        let noop = await phone.wait { $0.filter { $0.type == "ack" }.count == 2 }
        #expect(noop.last?["status"]?.stringValue == "noop")
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func aReaderThatStopsReadingCatchesUpFromTheLogInOrder(
        engine: Engine
    ) async throws {
        let server = try await ServerHarness(engine: engine) { $0.subscriptionCapacity = 8 }
        let client = await server.stream(hello: ServerHarness.hello(token: ServerHarness.user("slow")))
        await client.wait { $0.contains { $0.type == "caught_up" } }
        client.pauseReading.withLock { $0 = true }
        // 14 MB of events: more than the socket's buffers at both ends hold (4 MiB at most for
        // the server's send buffer here), so the server finds the socket full, lets live events
        // overflow, and reads them from the log once the client reads again.
        let title = String(repeating: "t", count: 512)
        let body = String(repeating: "b", count: 4_096)
        for batch in 0..<60 {
            try await server.append(
                (0..<50).map {
                    #"{"type":"notification.created","user_id":"slow","data":{"notification_id":"n-\#(batch)-\#($0)","title":"\#(title)","body":"\#(body)"}}"#
                })
        }
        client.pauseReading.withLock { $0 = false }
        let messages = await client.wait(timeout: .seconds(30)) { self.events($0).count >= 3000 }
        #expect(events(messages) == Array(1...3000))
        let metrics = try await server.request(.GET, "/metrics")
        #expect(!metrics.text.contains("tidings_catch_ups_total 0\n"))
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func handshakeFaultsCloseWithTheirCodes(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine) { $0.helloTimeout = .milliseconds(500) }
        try await server.append([ServerHarness.created("alice", "n-1")])
        let alice = ServerHarness.user("alice")
        let cases: [(String?, [(String, String)], Int, String?)] = [
            (nil, [], 4408, "timeout"),
            (ServerHarness.hello(token: "bad"), [], 4401, "unauthorized"),
            (#"{"type":"hello"}"#, [], 4401, "unauthorized"),
            (
                ServerHarness.hello(token: alice), [("Authorization", "Bearer \(ServerHarness.user("bob"))")], 4401,
                "unauthorized"
            ),
            (ServerHarness.hello(token: alice, user: "bob"), [], 4403, "forbidden"),
            (ServerHarness.hello(token: alice, stream: "all"), [], 4403, "forbidden"),
            (ServerHarness.hello(token: ServerHarness.publisher), [], 4403, "forbidden"),
            (ServerHarness.hello(token: ServerHarness.auditor, stream: "all", user: "alice"), [], 4400, "bad_request"),
            (ServerHarness.hello(token: alice, stream: "everything"), [], 4400, "bad_request"),
            (ServerHarness.hello(token: alice, cursor: "garbage"), [], 4400, "invalid_cursor"),
            (
                ServerHarness.hello(token: alice, cursor: server.store.unanchoredUserCursor("bob", streamSeq: 0)), [],
                4400,
                "invalid_cursor"
            ),
            (#"{"type":"hello","token":"\#(alice)","colour":"red"}"#, [], 4400, "bad_request"),
            ("not json", [], 4400, "bad_request"),
            (#"{"type":"read","ref":"x","all":true}"#, [], 4400, "bad_request"),
            // Token first: a bad token wins over a bad shape.
            (#"{"type":"hello","token":"bad","stream":"nope"}"#, [], 4401, "unauthorized"),
        ]
        for (hello, headers, code, errorCode) in cases {
            let client = await server.stream(hello: hello, headers: headers)
            let closeCode = await client.waitForClose()
            #expect(closeCode == code, "\(hello ?? "no hello")")
            let messages = client.received()
            #expect(messages.count == 1, "\(hello ?? "no hello"): \(messages)")
            #expect(messages.last?.type == "error")
            #expect(messages.last?["code"]?.stringValue == errorCode, "\(hello ?? "no hello")")
        }
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func foreignEpochAndCursorAheadAreResets(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine)
        try await server.append((1...3).map { ServerHarness.created("alice", "n-\($0)") })
        let alice = ServerHarness.user("alice")
        for (round, (cursor, reason)) in [
            (Cursor.user("alice", epoch: server.store.epoch &+ 1, streamSeq: 2, anchor: .start).text, "epoch_mismatch"),
            (server.store.unanchoredUserCursor("alice", streamSeq: 9), "cursor_ahead"),
        ].enumerated() {
            let client = await server.stream(hello: ServerHarness.hello(token: alice, cursor: cursor))
            let messages = await client.wait { $0.contains { $0.type == "reset" } }
            #expect(messages.map { $0.type ?? "" } == ["welcome", "reset"])
            #expect(messages[1]["reason"]?.stringValue == reason)
            #expect(
                Cursor.samePosition(
                    messages[1]["head"]?.stringValue,
                    server.store.unanchoredUserCursor("alice", streamSeq: Int64(3 + round))))
            #expect(messages[1]["unread_count"]?.integerValue == Int64(3 + round))
            try await server.append([ServerHarness.created("alice", "after-\(reason)")])
            let live = await client.wait { self.events($0).count == 1 }
            #expect(events(live).count == 1)
            try await client.close()
        }
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func auditorsFollowTheAllStreamAndMayNotRead(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine)
        try await server.append([ServerHarness.created("alice", "n-1"), ServerHarness.created("bob", "n-1")])
        let auditor = await server.stream(hello: ServerHarness.hello(token: ServerHarness.auditor, stream: "all"))
        var messages = await auditor.wait { $0.contains { $0.type == "caught_up" } }
        #expect(messages.first?["stream"]?.stringValue == "all")
        #expect(messages.first?["unread_count"] == nil)
        #expect(events(messages) == [1, 2])
        #expect(messages.first(where: { $0.type == "event" })?["unread_count"] == nil)
        try await server.append([ServerHarness.created("carol", "n-1")])
        messages = await auditor.wait { self.events($0).count == 3 }
        #expect(
            Cursor.samePosition(
                messages.last?["event"]?["cursor"]?.stringValue, server.store.unanchoredAllCursor(seq: 3)))
        try await auditor.send(#"{"type":"read","ref":"a","all":true}"#)
        messages = await auditor.wait { $0.contains { $0.type == "ack" } }
        #expect(messages.last?["status"]?.stringValue == "forbidden")
        // An auditor on a user stream may watch it, not mark it read.
        let watcher = await server.stream(hello: ServerHarness.hello(token: ServerHarness.auditor, user: "alice"))
        await watcher.wait { $0.contains { $0.type == "caught_up" } }
        try await watcher.send(#"{"type":"read","ref":"w","notification_ids":["n-1"]}"#)
        let watched = await watcher.wait { $0.contains { $0.type == "ack" } }
        #expect(watched.last?["status"]?.stringValue == "forbidden")
        #expect(watched.last?["unread_count"]?.integerValue == 1)
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func messagesBeforeTheWelcomeAreHandledAfterIt(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine)
        try await server.append([ServerHarness.created("alice", "n-1")])
        let client = await server.stream(hello: nil)
        try await client.send(ServerHarness.hello(token: ServerHarness.user("alice")))
        try await client.send(#"{"type":"read","ref":"early","notification_ids":["n-1"]}"#)
        let messages = await client.wait { $0.contains { $0.type == "ack" } }
        #expect(messages.map { $0.type ?? "" } == ["welcome", "event", "caught_up", "event", "ack"])
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func malformedMessageAfterTheHelloCloses4400(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine)
        let client = await server.stream(hello: ServerHarness.hello(token: ServerHarness.user("alice")))
        await client.wait { $0.contains { $0.type == "caught_up" } }
        try await client.send(#"{"type":"read","ref":"x","notification_ids":"n-1"}"#)
        #expect(await client.waitForClose() == 4400)
        #expect(client.received().last?["code"]?.stringValue == "bad_request")
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func anExpiringTokenClosesTheConnection(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine) { $0.watchdogInterval = .milliseconds(100) }
        // Valid now only thanks to the 30 s leeway, and for about one more second.
        let token = ServerHarness.token(.user, "alice", expiresIn: -29)
        let client = await server.stream(hello: ServerHarness.hello(token: token))
        await client.wait { $0.contains { $0.type == "caught_up" } }
        #expect(await client.waitForClose(timeout: .seconds(5)) == 4401)
        #expect(client.received().last?["code"]?.stringValue == "unauthorized")
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func aClientThatReadsOutlivesTheWriteTimeout(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine) {
            $0.writeTimeout = .milliseconds(500)
            $0.watchdogInterval = .milliseconds(50)
        }
        try await server.append((1...3).map { ServerHarness.created("steady", "n-\($0)") })
        let client = await server.stream(hello: ServerHarness.hello(token: ServerHarness.user("steady"), cursor: nil))
        await client.wait { $0.contains { $0.type == "caught_up" } }
        // Replay pages, caught_up and live events all written, then four write timeouts of quiet.
        try await server.append([ServerHarness.created("steady", "n-4")])
        await client.wait { self.events($0).count == 4 }
        try await Task.sleep(for: .seconds(2))
        try await server.append([ServerHarness.created("steady", "n-5")])
        let messages = await client.wait { self.events($0).count == 5 }
        #expect(events(messages) == [1, 2, 3, 4, 5])
        #expect(client.closeCode.withLock { $0 } == nil)
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func aClientThatReadsNothingIsClosedWith4429(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine) {
            $0.writeTimeout = .seconds(1)
            $0.watchdogInterval = .milliseconds(100)
            $0.subscriptionCapacity = 4
        }
        let client = await server.stream(hello: ServerHarness.hello(token: ServerHarness.user("stuck")))
        await client.wait { $0.contains { $0.type == "caught_up" } }
        client.pauseReading.withLock { $0 = true }
        // Large events fill the socket buffers quickly.
        let metadata = String(repeating: "m", count: 60_000)
        for batch in 0..<20 {
            try await server.append(
                (0..<10).map {
                    #"{"type":"notification.created","user_id":"stuck","data":{"notification_id":"n-\#(batch)-\#($0)","metadata":{"m":"\#(metadata)"}}}"#
                })
        }
        // Once the server has given up on the connection, reading again drains what was
        // queued, ending with the close frame.
        let deadline = ContinuousClock.now + .seconds(30)
        var closedByServer = false
        while !closedByServer && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            let metrics = try await server.request(.GET, "/metrics")
            closedByServer = metrics.text.contains(#"tidings_connections_closed_total{code="4429"} 1"#)
        }
        #expect(closedByServer)
        client.pauseReading.withLock { $0 = false }
        let code = await client.waitForClose(timeout: .seconds(20))
        #expect(code == 4429, "closed with \(String(describing: code)) after \(client.received().count) messages")
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func connectingWhileAppendsRunNeverGivesAGapOrADuplicate(
        engine: Engine
    ) async throws {
        let server = try await ServerHarness(engine: engine)
        let appending = Task {
            for index in 0..<600 {
                try await server.append([ServerHarness.created("racer", "n-\(index)")])
            }
        }
        // Each client's first event must be the one right after its cursor: a skipped replay
        // would start later, a repeated one earlier.
        var clients: [(client: ServerHarness.StreamClient, firstExpected: Int64)] = []
        for round in 0..<30 {
            let head = try await server.store.userHead(userID: "racer").streamSeq
            let position: Int64? = round % 3 == 0 || Int64(round) > head ? nil : Int64(round)
            let cursor = position.map { server.store.unanchoredUserCursor("racer", streamSeq: $0) }
            let client = await server.stream(
                hello: ServerHarness.hello(token: ServerHarness.user("racer"), cursor: cursor))
            clients.append((client, (position ?? 0) + 1))
            await client.wait { $0.contains { $0.type == "welcome" } }
        }
        try await appending.value
        for (client, firstExpected) in clients {
            let messages = await client.wait(timeout: .seconds(20)) { self.events($0).last == 600 }
            let seen = events(messages)
            #expect(
                seen == Array(firstExpected...600),
                "gap or duplicate: \(seen.count) events from \(seen.first ?? 0), expected from \(firstExpected)")
        }
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func anOnlineRebuildChangesNoCountAClientSees(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine, tuneStore: { $0.checkpointEvents = 100 })
        try await server.append((0..<300).map { ServerHarness.created("alice", "old-\($0)") })
        let client = await server.stream(hello: ServerHarness.hello(token: ServerHarness.user("alice")))
        await client.wait { $0.contains { $0.type == "caught_up" } }
        let rebuild = try await server.request(.POST, "/v1/admin/projections/rebuild", token: ServerHarness.admin)
        #expect(rebuild.status == 202)
        for index in 0..<100 {
            try await server.append([ServerHarness.created("alice", "new-\(index)")])
            if index % 10 == 0 {
                _ = try await server.request(
                    .POST, "/v1/users/alice/read", token: ServerHarness.user("alice"),
                    body: #"{"notification_ids":["old-\#(index)"]}"#)
            }
        }
        let messages = await client.wait { self.events($0).count == 410 }
        // Every event's unread count follows from the one before: +1 per created, -1 per read.
        var previous: Int64 = 0
        for message in messages where message.type == "event" {
            let count = message["unread_count"]?.integerValue ?? -1
            let created = message["event"]?["type"]?.stringValue == "notification.created"
            #expect(count == previous + (created ? 1 : -1))
            previous = count
        }
        let unread = try await server.request(.GET, "/v1/users/alice/unread", token: ServerHarness.user("alice"))
        #expect(unread.json["unread_count"]?.integerValue == previous)
        let verify = try await server.request(.POST, "/v1/admin/projections/verify", token: ServerHarness.admin)
        #expect(verify.json["ok"]?.boolValue == true)
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func shutdownClosesStreamsWith1001AndHealthTurns503(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine)
        let client = await server.stream(hello: ServerHarness.hello(token: ServerHarness.user("alice")))
        await client.wait { $0.contains { $0.type == "caught_up" } }
        await server.stop()
        #expect(await client.waitForClose() == 1001)
    }
}
