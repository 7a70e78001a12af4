import Hummingbird
import TidingsStore

extension APIRoutes {
    /// `POST /v1/users/{user_id}/read`: `{"notification_ids":[...]}` or `{"all":true,"up_to_seq"?:N}`.
    func markRead(_ request: Request, _ context: TidingsRequestContext) async throws -> Response {
        let principal = try principal(request, context)
        let user = try userID(context)
        try require(principal.mayMarkRead(user: user))
        guard let body = try await body(request) else {
            throw APIError.badRequest(#"body must be {"notification_ids":[...]} or {"all":true}"#)
        }
        let command = try ReadCommand(try parse(body))
        let outcome = try await storeCall {
            switch command {
            case .notifications(let ids): try await store.markRead(userID: user, notificationIDs: ids)
            case .all(let upTo): try await store.markAllRead(userID: user, upToSeq: upTo)
            }
        }
        var writer = JSONWriter()
        writer.stringArrayField("read", outcome.read)
        writer.counts(outcome.counts)
        writer.field("cursor", outcome.cursor)
        return Self.json(writer.finish())
    }

    /// `GET /v1/users/{user_id}/events?after=&limit=`.
    func userEvents(_ request: Request, _ context: TidingsRequestContext) async throws -> Response {
        let principal = try principal(request, context)
        let user = try userID(context)
        try require(principal.mayRead(user: user))
        let limit = try limit(request)
        let after = request.uri.queryParameters.get("after")
        let page = try await storeCall { try await store.userEvents(userID: user, after: after, limit: limit) }
        return self.page(page, userStream: true)
    }

    /// `GET /v1/users/{user_id}/unread?limit=`.
    func unread(_ request: Request, _ context: TidingsRequestContext) async throws -> Response {
        let principal = try principal(request, context)
        let user = try userID(context)
        try require(principal.mayRead(user: user) || principal.role == .publisher)
        let limit = try limit(request)
        let snapshot = try await storeCall { try await store.unread(userID: user, limit: limit) }
        var writer = JSONWriter(capacity: 600 * max(snapshot.notifications.count, 1))
        writer.counts(snapshot.counts)
        writer.arrayField("notifications", snapshot.notifications.map { envelope($0, userStream: true) })
        writer.field("cursor", snapshot.cursor)
        return Self.json(writer.finish())
    }
}

extension APIRoutes {
    /// `GET /v1/users/{user_id}/notifications?before=&limit=&state=&kind=`: newest first, with
    /// each notification's state, from the projection.
    func notifications(_ request: Request, _ context: TidingsRequestContext) async throws -> Response {
        let principal = try principal(request, context)
        let user = try userID(context)
        try require(principal.mayRead(user: user) || principal.role == .publisher)
        let limit = try limit(request)
        let query = request.uri.queryParameters
        var filter = NotificationListFilter()
        if let state = query.get("state") {
            guard let value = NotificationListFilter.State(rawValue: state) else {
                let names = NotificationListFilter.State.allCases.map(\.rawValue).joined(separator: " or ")
                throw APIError.badRequest("state must be \(names)")
            }
            filter.state = value
        }
        filter.kind = query.get("kind")
        let before = query.get("before")
        let list = try await storeCall {
            try await store.notifications(userID: user, before: before, filter: filter, limit: limit)
        }
        let items = list.notifications.map { item in
            var writer = JSONWriter(capacity: 600)
            writer.field("read", item.isRead)
            writer.field("seen", item.isSeen)
            writer.field("archived", item.isArchived)
            if let until = item.snoozedUntil { writer.field("snoozed_until", Timestamp.format(milliseconds: until)) }
            writer.rawField("event", envelope(item.event, userStream: true))
            return writer.finish()
        }
        var writer = JSONWriter(capacity: 640 * max(items.count, 1))
        writer.arrayField("notifications", items)
        writer.counts(list.counts)
        writer.field("cursor", list.cursor)
        writer.field("next_before", list.nextBefore)
        writer.field("has_more", list.hasMore)
        return Self.json(writer.finish())
    }
}

/// The body of a read request, as HTTP and WebSocket `read` messages share it.
enum ReadCommand: Equatable {
    case notifications([String])
    case all(upToSeq: Int64?)

    /// Parses `{"notification_ids":[...]}` or `{"all":true,"up_to_seq"?:N}`; `allowed` names
    /// the other members the caller's message may carry (the WebSocket's `type` and `ref`).
    init(_ value: JSONValue, allowed: Set<String> = []) throws {
        guard let members = value.objectValue else {
            throw APIError.badRequest(#"body must be {"notification_ids":[...]} or {"all":true}"#)
        }
        for key in members.keys where !["notification_ids", "all", "up_to_seq"].contains(key) && !allowed.contains(key)
        {
            throw APIError.badRequest("\(key) is not a field of a read request")
        }
        if let ids = members["notification_ids"] {
            guard members["all"] == nil, members["up_to_seq"] == nil else {
                throw APIError.badRequest("give either notification_ids or all, not both")
            }
            guard let items = ids.arrayValue else { throw APIError.badRequest("notification_ids must be an array") }
            guard items.count <= Limits.readIdentifiersMax else {
                throw APIError(
                    code: "payload_too_large",
                    message: "a read names at most \(Limits.readIdentifiersMax) notifications, not \(items.count)")
            }
            self = .notifications(
                try items.enumerated().map { index, item in
                    guard let id = item.stringValue else {
                        throw APIError.badRequest("notification_ids[\(index)] must be a string")
                    }
                    return id
                })
            return
        }
        guard members["all"]?.boolValue == true else {
            throw APIError.badRequest(#"give notification_ids, or "all": true"#)
        }
        if let upTo = members["up_to_seq"] {
            guard let value = upTo.integralValue, value >= 1 else {
                throw APIError.badRequest("up_to_seq must be a positive integer seq")
            }
            self = .all(upToSeq: value)
        } else {
            self = .all(upToSeq: nil)
        }
    }
}
