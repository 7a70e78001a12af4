import Testing

@testable import TidingsSQLite
@testable import TidingsStore

/// Every shape, field and size rule of PROTOCOL.md's append, with the exact error.
@Suite struct ValidationTests {
    func rejection(_ events: [NewEvent]) async throws -> StoreError? {
        let temporary = try await TemporaryStore()
        do {
            _ = try await temporary.store.append(events)
            return nil
        } catch let error as StoreError {
            // A refused request appends nothing.
            #expect(try await temporary.store.headSeq() == 0)
            return error
        }
    }

    static let badEvents: [(NewEvent, String)] = [
        (
            NewEvent(type: "notification.deleted", userID: "alice", data: Array("{}".utf8)),
            "type must be one of \(EventType.namesList)"
        ),
        (NewEvent(type: .created, userID: "", data: #"{"notification_id":"n"}"#), "user_id must not be empty"),
        (
            NewEvent(type: .snoozed, userID: "alice", data: #"{"notification_id":"n"}"#),
            "data.until is required for notification.snoozed"
        ),
        (
            NewEvent(type: .snoozed, userID: "alice", data: #"{"notification_id":"n","until":"tomorrow"}"#),
            "data.until must be an RFC 3339 time such as 2026-12-05T09:00:00Z"
        ),
        (
            NewEvent(type: .snoozed, userID: "alice", data: #"{"notification_id":"n","until":1}"#),
            "data.until must be an RFC 3339 time string"
        ),
        (
            NewEvent(type: .archivedAll, userID: "alice", data: #"{"only_read":"yes"}"#),
            "data.only_read must be true or false"
        ),
        (
            NewEvent(type: .readAll, userID: "alice", data: #"{"only_read":true}"#),
            "data.only_read is not a field of notification.read_all"
        ),
        (
            NewEvent(type: .seen, userID: "alice", data: #"{"notification_id":"n","kind":"x"}"#),
            "data.kind is not a field of notification.seen"
        ),
        (
            NewEvent(type: .unarchived, userID: "alice", data: "{}"),
            "data.notification_id is required for notification.unarchived"
        ),

        (
            NewEvent(type: .created, userID: "...", data: #"{"notification_id":"n"}"#),
            "user_id must not consist of dots only"
        ),
        (
            NewEvent(type: .created, userID: "al ice", data: #"{"notification_id":"n"}"#),
            "user_id may only contain A-Z a-z 0-9 . _ : @ -"
        ),
        (
            NewEvent(type: .created, userID: String(repeating: "a", count: 129), data: #"{"notification_id":"n"}"#),
            "user_id must be at most 128 characters"
        ),
        (
            NewEvent(type: .created, userID: "alice", id: "a/b", data: #"{"notification_id":"n"}"#),
            "id may only contain A-Z a-z 0-9 . _ : @ -"
        ),
        (NewEvent(type: .created, userID: "alice", data: "[]"), "data must be a JSON object"),
        (
            NewEvent(type: .created, userID: "alice", data: #"{"title":"x"}"#),
            "data.notification_id is required for notification.created"
        ),
        (
            NewEvent(type: .created, userID: "alice", data: #"{"notification_id":7}"#),
            "data.notification_id must be a string"
        ),
        (
            NewEvent(type: .created, userID: "alice", data: #"{"notification_id":"n","colour":"red"}"#),
            "data.colour is not a field of notification.created"
        ),
        (
            NewEvent(type: .created, userID: "alice", data: #"{"notification_id":"n","notification_id":"m"}"#),
            "data.notification_id appears twice"
        ),
        (
            NewEvent(type: .created, userID: "alice", data: #"{"notification_id":"n","kind":null}"#),
            "data.kind must be a string"
        ),
        (
            NewEvent(type: .created, userID: "alice", data: #"{"notification_id":"n","metadata":[1]}"#),
            "data.metadata must be an object"
        ),
        (
            NewEvent(type: .created, userID: "alice", data: #"{"notification_id":"n","actor_id":"a b"}"#),
            "data.actor_id may only contain A-Z a-z 0-9 . _ : @ -"
        ),
        (
            NewEvent(
                type: .created, userID: "alice",
                data: #"{"notification_id":"n","kind":"\#(String(repeating: "k", count: 65))"}"#),
            "data.kind is 65 characters; the limit is 64"
        ),
        (
            NewEvent(
                type: .created, userID: "alice",
                data: #"{"notification_id":"n","title":"\#(String(repeating: "é", count: 513))"}"#),
            "data.title is 513 characters; the limit is 512"
        ),
        (
            NewEvent(
                type: .created, userID: "alice",
                data: #"{"notification_id":"n","body":"\#(String(repeating: "b", count: 4097))"}"#),
            "data.body is 4097 characters; the limit is 4096"
        ),
        (
            NewEvent(
                type: .created, userID: "alice",
                data: #"{"notification_id":"n","link":"\#(String(repeating: "l", count: 2049))"}"#),
            "data.link is 2049 characters; the limit is 2048"
        ),
        (
            NewEvent(type: .read, userID: "alice", data: #"{"notification_id":"n","title":"x"}"#),
            "data.title is not a field of notification.read"
        ),
        (NewEvent(type: .read, userID: "alice", data: "{}"), "data.notification_id is required for notification.read"),
        (
            NewEvent(type: .readAll, userID: "alice", data: #"{"notification_id":"n"}"#),
            "data.notification_id is not a field of notification.read_all"
        ),
        (
            NewEvent(type: .readAll, userID: "alice", data: #"{"up_to_seq":0}"#),
            "data.up_to_seq must be a positive integer seq"
        ),
        (
            NewEvent(type: .readAll, userID: "alice", data: #"{"up_to_seq":1.5}"#),
            "data.up_to_seq must be a positive integer seq"
        ),
        (
            NewEvent(type: .readAll, userID: "alice", data: #"{"up_to_seq":"3"}"#),
            "data.up_to_seq must be a positive integer seq"
        ),
        (
            NewEvent(type: .created, userID: "alice", data: #"{"notification_id":"n""#),
            "data is not valid JSON: expected ',' or '}' at byte 22"
        ),
        (
            NewEvent(type: EventType.created.name, userID: "alice", data: [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]),
            "data is not valid JSON: invalid UTF-8 at byte 2"
        ),
        (
            NewEvent(type: .created, userID: "alice", data: #"{"notification_id":"n","metadata":{"a":01}}"#),
            "data is not valid JSON: expected ',' or '}' at byte 40"
        ),
    ]

    @Test(arguments: badEvents.indices)
    func fieldRuleNamesTheFieldAndTheLimit(_ index: Int) async throws {
        let (event, message) = Self.badEvents[index]
        // The bad event sits second in a batch behind a good one: the index points at it.
        let error = try await rejection([created("alice", "ok"), event])
        #expect(error?.code == .badRequest)
        #expect(error?.message == message)
        #expect(error?.index == 1)
    }

    @Test func deepNestingIsRefusedNotACrash() async throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let error = try await rejection([
            NewEvent(type: .created, userID: "alice", data: #"{"notification_id":"n","metadata":{"x":\#(deep)}}"#)
        ])
        #expect(error?.code == .payloadTooLarge)
        let nested = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        let shallow = try await rejection([
            NewEvent(type: .created, userID: "alice", data: #"{"notification_id":"n","metadata":{"x":\#(nested)}}"#)
        ])
        #expect(shallow?.code == .badRequest)
        #expect(shallow?.message.contains("nesting deeper than 64") == true)
    }

    @Test func sizeLimitsComeBeforeFieldRules() async throws {
        let big = String(repeating: "x", count: 70_000)
        // Event 0 breaks a field rule, event 1 is too large: 413 wins, with the large one's index.
        let error = try await rejection([
            NewEvent(type: "nope", userID: "alice", data: Array("{}".utf8)),
            NewEvent(type: .created, userID: "alice", data: #"{"notification_id":"n","metadata":{"b":"\#(big)"}}"#),
        ])
        #expect(error?.code == .payloadTooLarge)
        #expect(error?.index == 1)
        #expect(error?.message == "event is 70100 bytes as compact JSON; the limit is 65536")
    }

    @Test func eventSizeCountsCompactJSONExactlyAtTheLimit() async throws {
        let temporary = try await TemporaryStore()
        // {"type":"notification.created","user_id":"u","data":{"notification_id":"n","body":"…"}}
        let overhead =
            #"{"type":"notification.created","user_id":"u","data":{"notification_id":"n","metadata":{"b":""}}}"#.utf8
            .count
        let exact = String(repeating: "b", count: Limits.eventBytesMax - overhead)
        // Whitespace does not count towards the limit.
        let spaced = NewEvent(
            type: .created, userID: "u", data: #"{ "notification_id" : "n" , "metadata" : { "b" : "\#(exact)" } }"#)
        let results = try await temporary.store.append([spaced])
        #expect(results[0].status == .appended)
        #expect(results[0].event?.dataText == #"{"notification_id":"n","metadata":{"b":"\#(exact)"}}"#)
        let over = NewEvent(
            type: .created, userID: "u", data: #"{"notification_id":"m","metadata":{"b":"\#(exact)b"}}"#)
        await expectStoreError(.payloadTooLarge) { _ = try await temporary.store.append([over]) }
    }

    @Test func batchLimits() async throws {
        let temporary = try await TemporaryStore()
        await expectStoreError(.badRequest) { _ = try await temporary.store.append([]) }
        let tooMany = (0...Limits.batchEventsMax).map { created("alice", "n-\($0)") }
        let error = await expectStoreError(.payloadTooLarge) { _ = try await temporary.store.append(tooMany) }
        #expect(error?.message == "a batch holds at most 1000 events, not 1001")
        let exactly = Array(tooMany.prefix(Limits.batchEventsMax))
        #expect(try await temporary.store.append(exactly).count == 1000)
    }

    @Test func readLimits() async throws {
        let temporary = try await TemporaryStore()
        let ids = (0...Limits.readIdentifiersMax).map { "n-\($0)" }
        await expectStoreError(.payloadTooLarge) {
            _ = try await temporary.store.markRead(userID: "alice", notificationIDs: ids)
        }
        let error = await expectStoreError(.badRequest) {
            _ = try await temporary.store.markRead(userID: "alice", notificationIDs: ["ok", "not ok"])
        }
        #expect(error?.message == "notification_ids[1] may only contain A-Z a-z 0-9 . _ : @ -")
        let outcome = try await temporary.store.markRead(userID: "alice", notificationIDs: Array(ids.prefix(1000)))
        #expect(outcome.read.isEmpty)
    }

    @Test func dataIsStoredCompactAndReturnedAsTheSameValue() async throws {
        let temporary = try await TemporaryStore()
        let data =
            "{ \"notification_id\" : \"n-1\",\n \"title\": \"caf\\u00e9 \\\"x\\\"\", \"metadata\": {\"n\": 1.50e3, \"list\": [ true, null ]}}"
        let results = try await temporary.store.append([NewEvent(type: .created, userID: "alice", data: data)])
        let expected =
            #"{"notification_id":"n-1","title":"caf\u00e9 \"x\"","metadata":{"n":1.50e3,"list":[true,null]}}"#
        #expect(results[0].event?.dataText == expected)
        let page = try await temporary.store.userEvents(userID: "alice", after: nil)
        #expect(page.events[0].dataText == expected)
    }
}
