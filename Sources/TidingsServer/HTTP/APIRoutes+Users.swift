import Hummingbird
import TidingsStore

extension APIRoutes {
    /// `POST /v1/users/{user_id}/read`: `{"notification_ids":[...]}` or `{"all":true,...}`.
    func markRead(_ request: Request, _ context: TidingsRequestContext) async throws -> Response {
        try await mark(request, context, fixed: .read, answerField: "read")
    }

    /// `POST /v1/users/{user_id}/mark`: `{"change":"archive","notification_ids":[...]}` and the
    /// other state changes (`MarkRequest`).
    func markState(_ request: Request, _ context: TidingsRequestContext) async throws -> Response {
        try await mark(request, context, fixed: nil, answerField: "changed")
    }

    private func mark(
        _ request: Request, _ context: TidingsRequestContext, fixed: StateChange.Action?, answerField: String
    ) async throws -> Response {
        let principal = try principal(request, context)
        let user = try userID(context)
        try require(principal.mayMark(user: user))
        guard let body = try await body(request) else {
            throw APIError.badRequest(
                fixed == nil
                    ? #"body must be {"change":"...","notification_ids":[...]} or {"change":"...","all":true}"#
                    : #"body must be {"notification_ids":[...]} or {"all":true}"#)
        }
        let change = try MarkRequest.parse(try parse(body), fixed: fixed)
        let outcome = try await storeCall { try await store.mark(userID: user, change) }
        var writer = JSONWriter()
        writer.stringArrayField(answerField, outcome.read)
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
