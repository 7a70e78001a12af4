/// The kinds of fact the log records. The raw value is what a record stores (its low two bits in
/// bits 0-1 of the record's flags, the rest in bits 4-7), so the values of the first three never
/// change: logs written before the inbox states read unchanged.
public enum EventType: UInt8, Sendable, CaseIterable, Hashable {
    case created = 0
    case read = 1
    case readAll = 2
    case unread = 3
    case seen = 4
    case seenAll = 5
    case archived = 6
    case archivedAll = 7
    case unarchived = 8
    case snoozed = 9
    case unsnoozed = 10

    /// The name on the wire, as in `PROTOCOL.md`.
    public var name: String {
        switch self {
        case .created: "notification.created"
        case .read: "notification.read"
        case .readAll: "notification.read_all"
        case .unread: "notification.unread"
        case .seen: "notification.seen"
        case .seenAll: "notification.seen_all"
        case .archived: "notification.archived"
        case .archivedAll: "notification.archived_all"
        case .unarchived: "notification.unarchived"
        case .snoozed: "notification.snoozed"
        case .unsnoozed: "notification.unsnoozed"
        }
    }

    public init?(name: String) {
        guard let type = EventType.allCases.first(where: { $0.name == name }) else { return nil }
        self = type
    }

    /// Bulk events name no notification: they mark every one up to a seq (and of a kind).
    public var isBulk: Bool { self == .readAll || self == .seenAll || self == .archivedAll }

    /// The event carries `data.notification_id`.
    public var namesNotification: Bool { !isBulk }

    /// The bit of this type in a block's `type_mask` and a filter's mask.
    @inlinable
    package var maskBit: Int { 1 << Int(rawValue) }

    /// Every type's bit.
    package static let allMask = (1 << allCases.count) - 1

    /// The record flags' bits that hold the type.
    @inlinable
    package var recordFlags: UInt8 { (rawValue & 0x03) | (rawValue >> 2) << 4 }

    /// The type a record's flags hold, nil when they hold none.
    @inlinable
    package init?(recordFlags flags: UInt8) {
        self.init(rawValue: (flags & 0x03) | (flags >> 4) << 2)
    }

    /// All the names, for error messages.
    package static var namesList: String { allCases.map(\.name).joined(separator: ", ") }
}
