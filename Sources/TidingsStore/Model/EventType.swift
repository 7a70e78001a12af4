/// The kinds of fact the log records.
public enum EventType: UInt8, Sendable, CaseIterable, Hashable {
    case created = 0
    case read = 1
    case readAll = 2

    /// The name on the wire, as in `PROTOCOL.md`.
    public var name: String {
        switch self {
        case .created: "notification.created"
        case .read: "notification.read"
        case .readAll: "notification.read_all"
        }
    }

    public init?(name: String) {
        switch name {
        case "notification.created": self = .created
        case "notification.read": self = .read
        case "notification.read_all": self = .readAll
        default: return nil
        }
    }
}
