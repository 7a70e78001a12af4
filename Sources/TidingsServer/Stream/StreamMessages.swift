public import TidingsStore

/// A close of the stream for a client fault: the close code, and the `error` message sent
/// just before it.
struct StreamFault: Error, Equatable {
    let closeCode: UInt16
    let errorCode: String
    let message: String

    static func badRequest(_ message: String) -> StreamFault {
        StreamFault(closeCode: 4400, errorCode: "bad_request", message: message)
    }
    static func invalidCursor(_ message: String) -> StreamFault {
        StreamFault(closeCode: 4400, errorCode: "invalid_cursor", message: message)
    }
    static let unauthorized = StreamFault(
        closeCode: 4401, errorCode: "unauthorized", message: "missing or invalid token")
    static let expired = StreamFault(closeCode: 4401, errorCode: "unauthorized", message: "the token has expired")
    static func forbidden(_ message: String) -> StreamFault {
        StreamFault(closeCode: 4403, errorCode: "forbidden", message: message)
    }
    /// 1013 is WebSocket's standard "try again later" (docs/PROTOCOL.md, close codes).
    static func tooManyStreams(limit: Int) -> StreamFault {
        StreamFault(
            closeCode: 1013, errorCode: "unavailable",
            message: "this token's subject has \(limit) open streams, the most allowed; close one and retry")
    }
    static let timeout = StreamFault(closeCode: 4408, errorCode: "timeout", message: "no hello within the time allowed")
}

/// The client's first message.
struct Hello {
    /// Present when the hello carried a token field (a non-string token is kept as "" so it
    /// fails verification, as the protocol checks the token first).
    var token: String?
    /// The raw `stream` value when it is a string.
    var stream: String?
    var userID: String?
    var cursor: String?
    /// Problems of shape, reported only after the token and permission checks (4400).
    var shapeProblem: String?

    static let fields: Set<String> = ["type", "token", "stream", "user_id", "cursor"]

    /// Parses the first message; a message that is not even a hello object fails at once.
    init(_ text: String) throws(StreamFault) {
        guard let value = try? JSONValue.parse(text), let members = value.objectValue else {
            throw .badRequest("the first message must be a hello object")
        }
        guard members["type"]?.stringValue == "hello" else {
            throw .badRequest("the first message must be {\"type\":\"hello\",...}")
        }
        if let token = members["token"] { self.token = token.stringValue ?? "" }
        func note(_ problem: String) { if shapeProblem == nil { shapeProblem = problem } }
        if let unknown = members.keys.sorted().first(where: { !Self.fields.contains($0) }) {
            note("\(unknown) is not a field of hello")
        }
        if let stream = members["stream"] {
            if let name = stream.stringValue, name == "user" || name == "all" {
                self.stream = name
            } else {
                note("stream must be \"user\" or \"all\"")
            }
        }
        if let user = members["user_id"] {
            if let id = user.stringValue, Identifier.isValid(id) {
                userID = id
            } else {
                note("user_id is not a valid user id")
            }
        }
        if let cursor = members["cursor"] {
            switch cursor {
            case .null: break
            case .string(let text): self.cursor = text
            default: note("cursor must be a string or null")
            }
        }
    }
}

/// A message after the hello: a `read` or a `mark`, both a state change with a `ref` to ack.
enum ClientMessage {
    case mark(ref: String, change: StateChange)

    init(_ text: String) throws(StreamFault) {
        guard let value = try? JSONValue.parse(text), let members = value.objectValue else {
            throw .badRequest("messages must be JSON objects")
        }
        guard let type = members["type"]?.stringValue else { throw .badRequest("a message needs a type") }
        guard type == "read" || type == "mark" else { throw .badRequest("unexpected message type \(type)") }
        guard let ref = members["ref"]?.stringValue, !ref.isEmpty, ref.utf8.count <= 256 else {
            throw .badRequest("a \(type) needs a ref: a string of 1-256 bytes")
        }
        do {
            let change = try MarkRequest.parse(value, fixed: type == "read" ? .read : nil, allowed: ["type", "ref"])
            self = .mark(ref: ref, change: change)
        } catch let error as APIError {
            throw .badRequest(error.message)
        } catch {
            throw .badRequest("malformed \(type)")
        }
    }
}

/// The `event` message of the stream: built once per delivery, the hot path of fan-out.
public enum StreamEventMessage {
    public static func encode(_ event: StoredEvent, cursor: String, counts: InboxCounts?) -> [UInt8] {
        ServerMessage.event(EnvelopeJSON.encode(event, cursor: cursor), counts: counts)
    }
}

/// The server's messages, written byte by byte.
enum ServerMessage {
    static func welcome(stream: String, epoch: String, head: String, counts: InboxCounts?) -> [UInt8] {
        var writer = JSONWriter()
        writer.field("type", "welcome")
        writer.field("stream", stream)
        writer.field("epoch", epoch)
        writer.field("head", head)
        if let counts { writer.counts(counts) }
        return writer.finish()
    }

    static func event(_ envelope: [UInt8], counts: InboxCounts?) -> [UInt8] {
        var writer = JSONWriter(capacity: envelope.count + 64)
        writer.field("type", "event")
        writer.rawField("event", envelope)
        if let counts { writer.counts(counts) }
        return writer.finish()
    }

    static func caughtUp(cursor: String, counts: InboxCounts?) -> [UInt8] {
        var writer = JSONWriter()
        writer.field("type", "caught_up")
        writer.field("cursor", cursor)
        if let counts { writer.counts(counts) }
        return writer.finish()
    }

    static func reset(reason: StoreError.ResetReason, head: String, counts: InboxCounts?) -> [UInt8] {
        var writer = JSONWriter()
        writer.field("type", "reset")
        writer.field("reason", reason.rawValue)
        writer.field("head", head)
        if let counts { writer.counts(counts) }
        return writer.finish()
    }

    static func ack(ref: String, status: String, counts: InboxCounts?) -> [UInt8] {
        var writer = JSONWriter()
        writer.field("type", "ack")
        writer.field("ref", ref)
        writer.field("status", status)
        if let counts { writer.counts(counts) }
        return writer.finish()
    }

    static func error(_ fault: StreamFault) -> [UInt8] {
        var writer = JSONWriter()
        writer.field("type", "error")
        writer.field("code", fault.errorCode)
        writer.field("message", fault.message)
        return writer.finish()
    }
}

extension JSONWriter {
    /// `unread_count`, `unseen_count` and `archived_count`: every message and answer that
    /// carries one carries all three, as of the same position.
    mutating func counts(_ counts: InboxCounts) {
        field("unread_count", counts.unread)
        field("unseen_count", counts.unseen)
        field("archived_count", counts.archived)
    }
}
