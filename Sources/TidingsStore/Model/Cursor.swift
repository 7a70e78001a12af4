import Crypto

/// Where in the log's history a cursor was made: a seq at or after the cursor's position and
/// the first 4 bytes of the chain hash after it. The chain hash covers every event up to that
/// seq, so a log that still has the same 4 bytes there has the same history up to the cursor's
/// position. A log whose history forked (a failover to a standby that had not received the last
/// commits, whose seqs then went to other events) does not, and the cursor is reset instead of
/// resuming in someone else's history.
public struct CursorAnchor: Sendable, Equatable, CustomStringConvertible {
    public let seq: Int64
    public let check: UInt32

    @inlinable
    public init(seq: Int64, check: UInt32) {
        self.seq = seq
        self.check = check
    }

    /// The anchor at `seq` whose chain hash after it is `hash` (32 bytes; its first 4 count).
    @inlinable
    public init(seq: Int64, hash: some Collection<UInt8>) {
        self.init(seq: seq, check: Self.check(hash))
    }

    /// Before the first event: the chain's genesis, all zeros.
    public static let start = CursorAnchor(seq: 0, check: 0)

    /// The first 4 bytes of a chain hash, as a cursor carries them.
    @inlinable
    public static func check(_ hash: some Collection<UInt8>) -> UInt32 {
        var value: UInt32 = 0
        for byte in hash.prefix(4) { value = value << 8 | UInt32(byte) }
        return value
    }

    public var description: String { "\(seq)/\(String(check, radix: 16))" }
}

/// A position in one stream, as the opaque text clients store and hand back.
///
/// Bytes: version (2), stream kind (0 = `all`, 1 = user), the store's epoch (8), for user
/// streams the first 8 bytes of SHA-256 of the user id, the position (8: a seq for `all`, a
/// stream_seq for user streams; 0 is the start), the anchor (`CursorAnchor`: its seq, 8, and
/// its 4 check bytes), and a 4-byte FNV-1a checksum, so a mistyped cursor is `invalid_cursor`
/// rather than another position. Written as unpadded base64url: 46 or 56 characters of
/// `A-Z a-z 0-9 - _`. Version 1 cursors (no anchor: 30 or 40 characters) are still read; they
/// resume without the history check.
public struct Cursor: Sendable, Equatable, CustomStringConvertible {
    public enum Stream: Sendable, Equatable {
        case all
        case user(hash: UInt64)
    }

    public let epoch: UInt64
    public let stream: Stream
    public let position: Int64
    /// Nil only for a version 1 cursor read back.
    public let anchor: CursorAnchor?

    private static let version: UInt8 = 2
    private static let unanchoredVersion: UInt8 = 1
    /// Bytes of each form: (version, kind) -> length.
    private static func length(version: UInt8, user: Bool) -> Int {
        (version == unanchoredVersion ? 22 : 34) + (user ? 8 : 0)
    }

    public init(epoch: UInt64, stream: Stream, position: Int64, anchor: CursorAnchor?) {
        precondition(position >= 0, "cursor positions are never negative")
        precondition(
            anchor.map { stream != .all || $0.seq >= position } ?? true, "an anchor is at or after its position")
        self.epoch = epoch
        self.stream = stream
        self.position = position
        self.anchor = anchor
    }

    public static func all(epoch: UInt64, seq: Int64, anchor: CursorAnchor?) -> Cursor {
        Cursor(epoch: epoch, stream: .all, position: seq, anchor: anchor)
    }

    public static func user(_ userID: String, epoch: UInt64, streamSeq: Int64, anchor: CursorAnchor?) -> Cursor {
        Cursor(epoch: epoch, stream: .user(hash: userHash(userID)), position: streamSeq, anchor: anchor)
    }

    /// The stream identity a user cursor carries.
    public static func userHash(_ userID: String) -> UInt64 {
        let digest = SHA256.hash(data: Array(userID.utf8))
        var value: UInt64 = 0
        for byte in digest.prefix(8) { value = value << 8 | UInt64(byte) }
        return value
    }

    public var text: String {
        var bytes: [UInt8] = [anchor == nil ? Self.unanchoredVersion : Self.version]
        switch stream {
        case .all: bytes.append(0)
        case .user: bytes.append(1)
        }
        BigEndian.append(epoch, to: &bytes)
        if case .user(let hash) = stream { BigEndian.append(hash, to: &bytes) }
        BigEndian.append(UInt64(position), to: &bytes)
        if let anchor {
            BigEndian.append(UInt64(anchor.seq), to: &bytes)
            BigEndian.append(anchor.check, to: &bytes)
        }
        bytes += Self.checksum(bytes)
        return Base64URL.encode(bytes)
    }

    public var description: String { text }

    /// Parses cursor text; throws `invalid_cursor` when it is not one this software wrote.
    public static func parse(_ text: String) throws(StoreError) -> Cursor {
        guard !text.isEmpty, text.utf8.count <= Limits.cursorCharactersMax, let bytes = Base64URL.decode(text),
            bytes.count >= 22
        else { throw .invalidCursor("cursor is malformed") }
        guard bytes[0] == version || bytes[0] == unanchoredVersion else {
            throw .invalidCursor("cursor is malformed (unknown version)")
        }
        guard bytes[1] <= 1 else { throw .invalidCursor("cursor is malformed (unknown stream kind)") }
        guard bytes.count == length(version: bytes[0], user: bytes[1] == 1) else {
            throw .invalidCursor("cursor is malformed")
        }
        guard Array(bytes.suffix(4)) == checksum(Array(bytes.dropLast(4))) else {
            throw .invalidCursor("cursor is malformed (checksum mismatch)")
        }
        var reader = 2
        func read(_ count: Int) -> UInt64 {
            var value: UInt64 = 0
            for _ in 0..<count {
                value = value << 8 | UInt64(bytes[reader])
                reader += 1
            }
            return value
        }
        let epoch = read(8)
        let stream: Stream = bytes[1] == 0 ? .all : .user(hash: read(8))
        let position = read(8)
        guard position <= UInt64(Int64.max) else { throw .invalidCursor("cursor is malformed (position)") }
        var anchor: CursorAnchor?
        if bytes[0] == version {
            let seq = read(8)
            guard seq <= UInt64(Int64.max), stream != .all || seq >= position else {
                throw .invalidCursor("cursor is malformed (anchor)")
            }
            anchor = CursorAnchor(seq: Int64(seq), check: UInt32(read(4)))
        }
        return Cursor(epoch: epoch, stream: stream, position: Int64(position), anchor: anchor)
    }

    /// Whether two cursor texts name the same position of the same stream of the same store,
    /// wherever in the log's history each was made (their anchors aside).
    public static func samePosition(_ left: String?, _ right: String?) -> Bool {
        guard let left, let right, let a = try? parse(left), let b = try? parse(right) else { return left == right }
        return a.epoch == b.epoch && a.stream == b.stream && a.position == b.position
    }

    /// Appends the text of the `all` cursor at `seq`: what `Cursor.all(epoch:seq:anchor:).text`
    /// is, written without intermediate arrays (the export writes one per event).
    package static func appendAllText(epoch: UInt64, seq: Int64, anchor: CursorAnchor, to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 34) { buffer in
            let bytes = buffer.baseAddress!
            bytes[0] = version
            bytes[1] = 0
            for index in 0..<8 {
                let shift = UInt64(56 - 8 * index)
                bytes[2 + index] = UInt8(truncatingIfNeeded: epoch >> shift)
                bytes[10 + index] = UInt8(truncatingIfNeeded: UInt64(seq) >> shift)
                bytes[18 + index] = UInt8(truncatingIfNeeded: UInt64(anchor.seq) >> shift)
            }
            for index in 0..<4 { bytes[26 + index] = UInt8(truncatingIfNeeded: anchor.check >> UInt32(24 - 8 * index)) }
            let hash = fnv1a(UnsafeBufferPointer(start: bytes, count: 30))
            for index in 0..<4 { bytes[30 + index] = UInt8(truncatingIfNeeded: hash >> UInt32(24 - 8 * index)) }
            Base64URL.append(UnsafeBufferPointer(buffer), to: &out)
        }
    }

    private static func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var hash: UInt32 = 0x811c_9dc5
        for byte in bytes {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        return hash
    }

    /// FNV-1a over the other bytes: catches typos and truncation; cursors are not secrets.
    private static func checksum(_ bytes: [UInt8]) -> [UInt8] {
        let hash = fnv1a(bytes)
        return [
            UInt8(hash >> 24), UInt8(truncatingIfNeeded: hash >> 16), UInt8(truncatingIfNeeded: hash >> 8),
            UInt8(truncatingIfNeeded: hash),
        ]
    }
}

/// Base64 with the URL-safe alphabet and no padding: cursors, and JWTs in the server.
public enum Base64URL {
    private static let alphabet: [UInt8] = Array(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        append(bytes, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    package static func append(_ bytes: some RandomAccessCollection<UInt8>, to out: inout [UInt8]) {
        out.appendWritten(capacity: (bytes.count * 4 + 2) / 3) { text in
            var written = 0
            var index = bytes.startIndex
            var rest = bytes.count
            while rest > 0 {
                let first = bytes[index]
                let second = rest > 1 ? bytes[bytes.index(after: index)] : 0
                let third = rest > 2 ? bytes[bytes.index(index, offsetBy: 2)] : 0
                let value = UInt32(first) << 16 | UInt32(second) << 8 | UInt32(third)
                let characters = min(rest, 3) + 1
                for slot in 0..<characters {
                    text[written + slot] = character(UInt8(value >> UInt32(18 - 6 * slot) & 0x3F))
                }
                written += characters
                index = bytes.index(index, offsetBy: min(rest, 3))
                rest -= min(rest, 3)
            }
            return written
        }
    }

    /// The alphabet's character for a 6-bit value.
    @inline(__always)
    private static func character(_ value: UInt8) -> UInt8 {
        switch value {
        case 0..<26: UInt8(ascii: "A") + value
        case 26..<52: UInt8(ascii: "a") + value - 26
        case 52..<62: UInt8(ascii: "0") + value - 52
        case 62: UInt8(ascii: "-")
        default: UInt8(ascii: "_")
        }
    }

    /// Decodes the canonical unpadded form; nil for any other character, padding included, a
    /// length no encoding has, or unused low bits that are not zero. One pass over the text's
    /// UTF-8, no copies: every request's token goes through it.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let input = text.utf8
        guard input.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(input.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in input {
            let value = values[Int(byte)]
            guard value != 0xFF else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // Canonical form only: the unused low bits must be zero.
        guard accumulator & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}
