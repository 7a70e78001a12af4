import Logging
import NIOCore
import PostgresNIO
import TidingsStore

extension GroupCommit {
    /// What a group read ahead under the head lock: the projection rows its events touch, and
    /// the seqs of the event ids it names that the log already holds.
    struct ReadAhead {
        var view: GroupView
        var seqsByID: [String: Int64]
    }

    /// One query for everything a group's events need from the projection (`ReadAheadStatement`).
    func readAhead(_ events: [ValidatedEvent], head: LogHead) async throws -> ReadAhead {
        var seqsByID: [String: Int64] = [:]
        var explicitIDs: Set<String> = []
        var userIDs: Set<String> = []
        var pairUsers: [String] = []
        var pairIDs: [ByteBuffer] = []
        var unreadUsers: Set<String> = []
        var unarchivedUsers: Set<String> = []
        for event in events {
            userIDs.insert(event.userID)
            if event.type == .archivedAll {
                unarchivedUsers.insert(event.userID)
            } else if event.type.isBulk {
                unreadUsers.insert(event.userID)
            } else {
                pairUsers.append(event.userID)
                pairIDs.append(event.notificationKey.buffer)
            }
            guard let id = event.id else { continue }
            if let seq = context.derivedIDs.seq(of: id.utf8) {
                if seq >= 1 && seq <= head.seq { seqsByID[id] = seq }
            } else {
                explicitIDs.insert(id)
            }
        }
        let statement = ReadAheadStatement(
            userIDs: Array(userIDs), pairUsers: pairUsers, pairIDs: pairIDs, unreadUsers: Array(unreadUsers),
            unarchivedUsers: Array(unarchivedUsers), eventIDs: Array(explicitIDs))
        var rows: [ReadAheadStatement.Row] = []
        for try await row in try await connection.execute(statement, logger: logger) { rows.append(row) }
        var view = GroupView(nextUserNo: head.nextUserNo)
        var notifications: [(Int64, ByteBuffer, NotificationState, String?)] = []
        var users: [(Int64, String)] = []
        for (part, number, name, a, b, c, d, id) in rows {
            switch part {
            case 0:
                guard let name, let a, let b, let c, let d else { continue }
                view.load(
                    user: GroupView.User(
                        userNo: number, userID: name, streamSeq: a,
                        counts: InboxCounts(unread: b, unseen: c, archived: d),
                        isNew: false))
                users.append((number, name))
            case 1, 2:
                guard let id, let a, let b else { continue }
                let state = NotificationState(
                    createdSeq: a, flags: UInt8(truncatingIfNeeded: b), snoozedUntil: c ?? 0)
                notifications.append((number, id, state, name))
            default:
                if let name { seqsByID[name] = number }
            }
        }
        for (user, id, state, kind) in notifications {
            view.load(userNo: user, id: id.bytes, state: state, kind: kind.map { Array($0.utf8) })
        }
        for name in unreadUsers {
            if let number = view.existingUserNo(name) { view.markComplete(userNo: number, .unread) }
        }
        for name in unarchivedUsers {
            if let number = view.existingUserNo(name) { view.markComplete(userNo: number, .unarchived) }
        }
        context.rememberUsers(users)
        return ReadAhead(view: view, seqsByID: seqsByID)
    }
}

/// Everything a group's events need from the projection, in one query: their users, the
/// notifications they name, for users with a bulk event every notification it may select (the
/// unread ones for read_all and seen_all, those not archived for archived_all), and the event
/// ids already taken. Each is a part of one `UNION ALL`, told apart by its first column: each
/// statement is a round trip, and a small group's time went on round trips and planning, not on
/// work. Prepared once per connection, so the plan is made once. Columns a-d are the user's
/// stream head and counts, or the notification's created seq, flags and snooze end; `name` is
/// the user id, the notification's kind or the event id.
struct ReadAheadStatement: PostgresPreparedStatement {
    static let sql = """
        WITH u AS (
            SELECT user_no, user_id, stream_seq, unread, unseen, archived FROM tidings_users
            WHERE user_id = ANY($1::text[]))
        SELECT 0::int2, user_no, user_id, stream_seq, unread, unseen, archived, NULL::bytea FROM u
        UNION ALL
        SELECT 1::int2, n.user_no, n.kind, n.created_seq, n.flags::int8, n.snoozed_until, NULL, n.notification_id
            FROM unnest($2::text[], $3::bytea[]) AS k(user_id, notification_id)
            JOIN u ON u.user_id = k.user_id
            JOIN tidings_notifications n ON n.user_no = u.user_no AND n.notification_id = k.notification_id
        UNION ALL
        SELECT 2::int2, n.user_no, n.kind, n.created_seq, n.flags::int8, n.snoozed_until, NULL, n.notification_id
            FROM u JOIN tidings_notifications n ON n.user_no = u.user_no AND n.flags & 1 <> 0
            WHERE u.user_id = ANY($4::text[])
        UNION ALL
        SELECT 2::int2, n.user_no, n.kind, n.created_seq, n.flags::int8, n.snoozed_until, NULL, n.notification_id
            FROM u JOIN tidings_notifications n ON n.user_no = u.user_no AND n.flags & 4 = 0
            WHERE u.user_id = ANY($5::text[])
        UNION ALL
        SELECT 3::int2, seq, event_id, NULL, NULL, NULL, NULL, NULL FROM tidings_event_ids
            WHERE event_id = ANY($6::text[])
        """
    typealias Row = (Int16, Int64, String?, Int64?, Int64?, Int64?, Int64?, ByteBuffer?)

    var userIDs: [String]
    var pairUsers: [String]
    var pairIDs: [ByteBuffer]
    var unreadUsers: [String]
    var unarchivedUsers: [String]
    var eventIDs: [String]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 6)
        bindings.append(userIDs)
        bindings.append(pairUsers)
        bindings.append(pairIDs)
        bindings.append(unreadUsers)
        bindings.append(unarchivedUsers)
        bindings.append(eventIDs)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
