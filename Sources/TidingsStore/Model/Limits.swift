/// The protocol's size limits, in one place. Size limits are checked before field rules.
public enum Limits {
    public static let identifierCharactersMax = 128
    public static let eventBytesMax = 65_536
    public static let batchEventsMax = 1_000
    public static let readIdentifiersMax = 1_000
    public static let requestBodyBytesMax = 8 * 1024 * 1024
    public static let pageLimitMax = 1_000
    public static let pageLimitDefault = 100
    public static let kindCharactersMax = 64
    public static let titleCharactersMax = 512
    public static let bodyCharactersMax = 4_096
    public static let linkCharactersMax = 2_048
    public static let cursorCharactersMax = 256
}

/// Rules for `user_id`, `notification_id` and event `id`: 1-128 characters of
/// `A-Z a-z 0-9 . _ : @ -`, not made of dots alone.
public enum Identifier {
    /// Nil when valid; otherwise why not, for an error message.
    public static func problem(_ bytes: some Collection<UInt8>) -> String? {
        if bytes.isEmpty { return "must not be empty" }
        if bytes.count > Limits.identifierCharactersMax {
            return "must be at most \(Limits.identifierCharactersMax) characters"
        }
        var onlyDots = true
        for byte in bytes {
            guard isAllowed(byte) else {
                return "may only contain A-Z a-z 0-9 . _ : @ -"
            }
            if byte != UInt8(ascii: ".") { onlyDots = false }
        }
        return onlyDots ? "must not consist of dots only" : nil
    }

    public static func isValid(_ text: String) -> Bool { problem(text.utf8) == nil }

    @inline(__always)
    package static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"),
            UInt8(ascii: "@"), UInt8(ascii: "-"):
            true
        default: false
        }
    }
}
