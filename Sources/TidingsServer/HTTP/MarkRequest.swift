import TidingsStore

/// The body of a state change as four requests share it: `POST /v1/users/{user_id}/read` and
/// `/mark`, and the WebSocket `read` and `mark` messages. A `read` is a `mark` whose change is
/// fixed; everything else (which notifications, the bulk bounds, a snooze's end) is one shape.
enum MarkRequest {
    /// The members of a body besides those the caller's message adds (the WebSocket's `type`
    /// and `ref`).
    private static let fields: Set<String> = [
        "change", "notification_ids", "all", "up_to_seq", "kind", "only_read", "until",
    ]
    /// The members that belong to `all` only.
    private static let bulkFields = ["up_to_seq", "kind", "only_read"]

    /// Parses `value` as a change; `fixed` is the action of a `read` (which has no `change`
    /// member), nil for a `mark`.
    static func parse(
        _ value: JSONValue, fixed: StateChange.Action? = nil, allowed: Set<String> = []
    ) throws -> StateChange {
        let what = fixed == nil ? "mark" : "read"
        guard let members = value.objectValue else {
            throw APIError.badRequest(
                fixed == nil
                    ? #"body must be {"change":"...","notification_ids":[...]} or {"change":"...","all":true}"#
                    : #"body must be {"notification_ids":[...]} or {"all":true}"#)
        }
        for key in members.keys.sorted()
        where !fields.contains(key) && !allowed.contains(key) || (fixed != nil && (key == "change" || key == "until")) {
            throw APIError.badRequest("\(key) is not a field of a \(what) request")
        }
        let action = try fixed ?? Self.action(members["change"])
        let target = try Self.target(members)
        var until: Int64?
        if let value = members["until"] {
            guard let text = value.stringValue, let time = Timestamp.parse(text) else {
                throw APIError.badRequest("until must be an RFC 3339 time such as 2026-12-05T09:00:00Z")
            }
            until = time
        }
        if action == .snooze, until == nil {
            throw APIError.badRequest("a snooze needs until: an RFC 3339 time later than now")
        }
        if action != .snooze, until != nil { throw APIError.badRequest("until belongs to the snooze change only") }
        if case .all = target, action.bulkType == nil {
            throw APIError.badRequest(
                "\(action.rawValue) names its notifications: all is for read, seen and archive")
        }
        if case .all(_, _, true) = target, action != .archive {
            throw APIError.badRequest("only_read belongs to the archive change only")
        }
        return StateChange(action, target, until: until)
    }

    private static func action(_ value: JSONValue?) throws -> StateChange.Action {
        let names = StateChange.Action.allCases.map(\.rawValue).joined(separator: ", ")
        guard let value else { throw APIError.badRequest("a mark request needs change: one of \(names)") }
        guard let name = value.stringValue, let action = StateChange.Action(rawValue: name) else {
            throw APIError.badRequest("change must be one of \(names)")
        }
        return action
    }

    private static func target(_ members: [String: JSONValue]) throws -> StateChange.Target {
        if let ids = members["notification_ids"] {
            if members["all"] != nil || bulkFields.contains(where: { members[$0] != nil }) {
                throw APIError.badRequest("give either notification_ids or all (with its bounds), not both")
            }
            guard let items = ids.arrayValue else { throw APIError.badRequest("notification_ids must be an array") }
            guard items.count <= Limits.readIdentifiersMax else {
                throw APIError(
                    code: "payload_too_large",
                    message: "a request names at most \(Limits.readIdentifiersMax) notifications, not \(items.count)")
            }
            return .notifications(
                try items.enumerated().map { index, item in
                    guard let id = item.stringValue else {
                        throw APIError.badRequest("notification_ids[\(index)] must be a string")
                    }
                    return id
                })
        }
        guard members["all"]?.boolValue == true else {
            throw APIError.badRequest(#"give notification_ids, or "all": true"#)
        }
        var upToSeq: Int64?
        if let value = members["up_to_seq"] {
            guard let seq = value.integralValue, seq >= 1 else {
                throw APIError.badRequest("up_to_seq must be a positive integer seq")
            }
            upToSeq = seq
        }
        var kind: String?
        if let value = members["kind"] {
            guard let text = value.stringValue, (1...Limits.kindCharactersMax).contains(text.unicodeScalars.count)
            else {
                throw APIError.badRequest("kind must be a string of 1-\(Limits.kindCharactersMax) characters")
            }
            kind = text
        }
        var onlyRead = false
        if let value = members["only_read"] {
            guard let flag = value.boolValue else { throw APIError.badRequest("only_read must be true or false") }
            onlyRead = flag
        }
        return .all(upToSeq: upToSeq, kind: kind, onlyRead: onlyRead)
    }
}
