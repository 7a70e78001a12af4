import Testing
import TidingsTestSupport

@testable import TidingsStore

/// Random sequences of appends, retries and every state change (single and bulk, with kind
/// filters), checked against `StoreModel`: streams, cursors, counts, lists, the all stream,
/// verify and rebuild must all agree with it, on every engine.
@Suite struct PropertyTests {
    struct Generator {
        var random: SeededGenerator
        var model = StoreModel()
        var sentWithIDs: [NewEvent] = []
        var nextNotification = 0
        var nextID = 0
        let users = ["alice", "bob", "carol", "dave:1", "e@x.org"]
        static let kinds: [String?] = [nil, "mention", "build.failed"]

        mutating func pick<T>(_ values: [T]) -> T { values[Int(random.next() % UInt64(values.count))] }
        mutating func chance(_ percent: UInt64) -> Bool { random.next() % 100 < percent }

        mutating func knownNotification(for user: String) -> String? {
            let known = Array(model.users[user]?.notifications.keys ?? [:].keys)
            return known.isEmpty ? nil : pick(known.sorted())
        }

        /// One random event with what the model needs to know about it.
        mutating func event() -> NewEvent {
            if chance(10), !sentWithIDs.isEmpty {
                var retry = pick(sentWithIDs)
                if chance(30) {
                    retry.data = Array(#"{"notification_id":"changed-\#(nextNotification)"}"#.utf8)
                    retry.type = EventType.created.name
                }
                return retry
            }
            let user = pick(users)
            let id: String? = chance(40) ? "evt-\(nextID)" : nil
            nextID += 1
            let roll = random.next() % 100
            var result: NewEvent
            if roll < 50 {
                let notification: String
                if chance(5), let known = knownNotification(for: user) {
                    notification = known
                } else {
                    // Ids one character long, UUIDs and ids longer than a rebuild packs inline
                    // each have their own encoding.
                    notification =
                        nextNotification % 7 == 0
                        ? String(UnicodeScalar(UInt8(97 + nextNotification % 26)))
                        : nextNotification % 5 == 0
                            ? "00000000-0000-4000-8000-\(String(100_000_000_000 + nextNotification))"
                            : nextNotification % 3 == 0
                                ? "a-notification-id-longer-than-24-bytes-\(nextNotification)" : "n-\(nextNotification)"
                    nextNotification += 1
                }
                let kind = pick(Self.kinds)
                result = created(user, notification, id: id, title: "T\(random.next() % 1000)", kind: kind)
            } else if roll < 88 {
                let notification = knownNotification(for: user) ?? "unknown-\(random.next() % 5)"
                let type = pick([
                    EventType.read, .read, .read, .unread, .seen, .archived, .unarchived, .snoozed, .unsnoozed,
                ])
                // Two snooze ends, so that snoozing again is sometimes a change and sometimes not;
                // an unsnooze names one of them half the time (the sweeper's conditional form).
                let ends = ["2099-01-01T09:00:00Z", "2099-01-02T09:00:00.250Z"]
                let until = type == .snoozed || (type == .unsnoozed && chance(50)) ? pick(ends) : nil
                result = change(type, user, notification, until: until, id: id)
            } else {
                let type = pick([EventType.readAll, .readAll, .seenAll, .archivedAll])
                let upTo: Int64? = chance(50) ? Int64(random.next() % UInt64(model.events.count + 3)) + 1 : nil
                let kind = chance(30) ? pick(Self.kinds.compactMap { $0 }) : nil
                let onlyRead = type == .archivedAll && chance(50) ? chance(70) : nil
                result = bulk(type, user, upTo: upTo, kind: kind, onlyRead: onlyRead, id: id)
            }
            if id != nil { sentWithIDs.append(result) }
            return result
        }

    }

    @Test(arguments: Engine.allCases, [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func randomHistoriesAgreeWithTheModel(engine: Engine, seed: UInt64) async throws {
        let temporary = try await EngineStore.make(engine, blockTargetBytes: 200)
        var generator = Generator(random: SeededGenerator(seed: seed))
        for step in 0..<400 {
            let size = generator.chance(70) ? 1 : Int(generator.random.next() % 4) + 2
            let request = (0..<size).map { _ in generator.event() }
            let expected = generator.model.append(request)
            do {
                let results = try await temporary.store.append(request)
                guard let expected else {
                    Issue.record("step \(step): store appended what the model refuses: \(results)")
                    return
                }
                let actual: [StoreModel.Outcome] = results.map { result in
                    switch result.status {
                    case .appended: .appended(seq: result.event!.seq)
                    case .duplicate: .duplicate(seq: result.event!.seq)
                    case .noop: .noop
                    }
                }
                #expect(actual == expected, "step \(step)")
                for (result, outcome) in zip(results, expected) {
                    if case .appended(let seq) = outcome {
                        #expect(result.event?.counts == generator.model.events[Int(seq - 1)].countsAfter)
                    }
                }
            } catch let error as StoreError {
                #expect(expected == nil, "step \(step): store refused with \(error)")
                #expect(error.code == .conflict, "step \(step): \(error)")
            }
            if step % 40 == 39 { try await temporary.reopen() }
            if step % 20 == 0 { try await check(temporary.store, against: generator.model, random: &generator.random) }
        }
        try await check(temporary.store, against: generator.model, random: &generator.random)
        try await temporary.store.rebuildProjections()
        try await check(temporary.store, against: generator.model, random: &generator.random)
        let projection = try await temporary.store.verifyProjections()
        #expect(projection.ok, "\(projection.mismatches)")
        let log = try await temporary.store.verifyLog()
        #expect(log.ok, "\(String(describing: log.problem))")
        #expect(log.headSeq == Int64(generator.model.events.count))
    }

    func check(_ store: any EventStore, against model: StoreModel, random: inout SeededGenerator) async throws {
        for (userID, user) in model.users {
            // Page through the whole stream with a random page size.
            let limit = Int(random.next() % 4) + 1
            var cursor: String?
            var seen: [Int64] = []
            while true {
                let page = try await store.userEvents(userID: userID, after: cursor, limit: limit)
                for event in page.events {
                    let expected = model.events[Int(event.seq - 1)]
                    #expect(event.userID == userID)
                    #expect(event.streamSeq == expected.streamSeq)
                    #expect(event.counts == expected.countsAfter)
                    #expect(event.type == expected.type)
                    #expect(event.dataText == expected.data)
                    if let id = expected.id { #expect(event.id == id) }
                }
                seen += page.events.map(\.seq)
                cursor = page.nextCursor
                #expect(page.hasMore == (seen.count < user.events.count))
                if !page.hasMore { break }
            }
            #expect(seen == user.events)
            let unread = try await store.unread(userID: userID, limit: 1000)
            #expect(unread.counts == user.counts)
            #expect(unread.notifications.map(\.seq) == user.unread)
            #expect(
                Cursor.samePosition(
                    unread.cursor, store.unanchoredUserCursor(userID, streamSeq: Int64(user.events.count))))
            if !user.events.isEmpty {
                let position = Int64(random.next() % UInt64(user.events.count)) + 1
                let counts = try await store.counts(userID: userID, atStreamSeq: position)
                #expect(counts == model.events[Int(user.events[Int(position - 1)] - 1)].countsAfter)
            }
        }
        for (userID, user) in model.users {
            try await checkList(store, userID: userID, user: user, model: model, random: &random)
        }
        var all: [Int64] = []
        var cursor: String?
        repeat {
            let page = try await store.allEvents(after: cursor, filter: EventFilter(), limit: 7)
            all += page.events.map(\.seq)
            cursor = page.nextCursor
            if !page.hasMore { break }
        } while true
        #expect(all == model.events.map(\.seq))

        // The sweeper's read: snoozes ending by the first of the two ends, then by the second.
        for end in ["2099-01-01T09:00:00Z", "2099-01-02T09:00:00.250Z"] {
            let now = Timestamp.parse(end)!
            var expected: [(Int64, String, Int64)] = []
            for (userID, user) in model.users {
                for (notification, seq) in user.notifications {
                    if let until = user.states[seq]!.snoozedUntil, until <= now {
                        expected.append((seq, "\(userID)/\(notification)", until))
                    }
                }
            }
            let due = try await store.dueSnoozes(asOf: now, limit: 100_000)
            #expect(
                due.map { "\($0.createdSeq) \($0.userID)/\($0.notificationID) \($0.until)" }.sorted()
                    == expected.map { "\($0.0) \($0.1) \($0.2)" }.sorted(), "due by \(end)")
        }
    }

    /// Pages through the user's notification list with a random filter and page size: newest
    /// first, each with its read state, as the model has them.
    func checkList(
        _ store: any EventStore, userID: String, user: StoreModel.UserState, model: StoreModel,
        random: inout SeededGenerator
    ) async throws {
        let states = NotificationListFilter.State.allCases
        let state = states[Int(random.next() % UInt64(states.count))]
        let kind = Generator.kinds[Int(random.next() % UInt64(Generator.kinds.count))]
        let limit = Int(random.next() % 7) + 1
        let expected = user.notifications.values.sorted(by: >).filter { seq in
            let data = try? JSONValue.parse(model.events[Int(seq - 1)].data)
            let notification = user.states[seq]!
            let passes =
                switch state {
                case .inbox: !notification.hidden
                case .all: true
                case .unread: notification.unread
                case .unseen: notification.unseen
                case .archived: notification.archived
                case .snoozed: notification.snoozedUntil != nil
                }
            return passes && (kind == nil || data?["kind"]?.stringValue == kind)
        }
        var listed: [Int64] = []
        var before: String?
        while true {
            let page = try await store.notifications(
                userID: userID, before: before, filter: NotificationListFilter(state: state, kind: kind), limit: limit)
            #expect(page.notifications.count <= limit)
            for item in page.notifications {
                #expect(item.event.type == .created)
                let notification = user.states[item.event.seq]
                #expect(item.isRead == !(notification?.unread ?? false), "\(userID) \(item.event.seq)")
                #expect(item.isSeen == !(notification?.unseen ?? false), "\(userID) \(item.event.seq)")
                #expect(item.isArchived == notification?.archived, "\(userID) \(item.event.seq)")
                #expect(item.snoozedUntil == notification?.snoozedUntil, "\(userID) \(item.event.seq)")
            }
            listed += page.notifications.map(\.event.seq)
            #expect(page.counts == user.counts)
            #expect(
                Cursor.samePosition(
                    page.cursor, store.unanchoredUserCursor(userID, streamSeq: Int64(user.events.count))))
            #expect(page.hasMore == (listed.count < expected.count), "\(userID) \(state) \(kind ?? "-") \(limit)")
            if !page.hasMore || page.notifications.isEmpty { break }
            before = page.nextBefore
        }
        #expect(listed == expected, "\(userID) \(state) \(kind ?? "-") limit \(limit)")
    }
}
