/// An operator-facing error from the store: bad input, a conflict, a cursor that cannot be used,
/// or a fault of the disk underneath. Each carries a protocol error code and a message that
/// names the problem; the server maps the code to its HTTP status.
public struct StoreError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The protocol's error code. A struct rather than an enum so codes can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public var description: String { rawValue }

        public static let badRequest = Code(rawValue: "bad_request")
        public static let invalidCursor = Code(rawValue: "invalid_cursor")
        public static let cursorReset = Code(rawValue: "cursor_reset")
        public static let conflict = Code(rawValue: "conflict")
        public static let payloadTooLarge = Code(rawValue: "payload_too_large")
        public static let unavailable = Code(rawValue: "unavailable")
        public static let `internal` = Code(rawValue: "internal")
        package init(rawValue: String) {
            self.rawValue = rawValue
        }
    }

    /// Why a well-formed cursor cannot be used on this store.
    public enum ResetReason: String, Sendable {
        case epochMismatch = "epoch_mismatch"
        case cursorAhead = "cursor_ahead"
        /// The cursor was made in a history the log no longer has: commits it had seen were
        /// lost (a failover to a standby that had not received them) and their seqs went to
        /// other events.
        case historyForked = "history_forked"
    }

    public let code: Code
    public let message: String
    /// The failing event's position in an append request.
    public let index: Int?
    /// For `cursor_reset`: the head cursor of the stream the cursor was meant for.
    public let head: String?
    public let resetReason: ResetReason?

    public init(
        _ code: Code, _ message: String, index: Int? = nil, head: String? = nil, resetReason: ResetReason? = nil
    ) {
        self.code = code
        self.message = message
        self.index = index
        self.head = head
        self.resetReason = resetReason
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let index { text += " (event \(index))" }
        return text
    }

    package func at(index: Int) -> StoreError {
        StoreError(code, message, index: index, head: head, resetReason: resetReason)
    }

    package static func badRequest(_ message: String) -> StoreError { StoreError(.badRequest, message) }
    package static func conflict(_ message: String) -> StoreError { StoreError(.conflict, message) }
    package static func tooLarge(_ message: String) -> StoreError { StoreError(.payloadTooLarge, message) }
    package static func invalidCursor(_ message: String) -> StoreError { StoreError(.invalidCursor, message) }
}
