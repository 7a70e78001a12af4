import Crypto

/// A position in one stream, as the opaque text clients store and hand back.
///
/// Bytes: version (1), stream kind (0 = `all`, 1 = user), the store's epoch (8), for user
/// streams the first 8 bytes of SHA-256 of the user id, the position (8: a seq for `all`, a
/// stream_seq for user streams; 0 is the start), and a 4-byte FNV-1a checksum, so a mistyped cursor is
/// `invalid_cursor` rather than another position. Written as unpadded base64url: 30 or 40
/// characters of `A-Z a-z 0-9 - _`.
public struct Cursor: Sendable, Equatable, CustomStringConvertible {
    public enum Stream: Sendable, Equatable {
        case all
        case user(hash: UInt64)
    }

    public let epoch: UInt64
    public let stream: Stream
    public let position: Int64

    private static let version: UInt8 = 1

    public init(epoch: UInt64, stream: Stream, position: Int64) {
        precondition(position >= 0, "cursor positions are never negative")
        self.epoch = epoch
        self.stream = stream
        self.position = position
    }

    public static func all(epoch: UInt64, seq: Int64) -> Cursor {
        Cursor(epoch: epoch, stream: .all, position: seq)
    }

    public static func user(_ userID: String, epoch: UInt64, streamSeq: Int64) -> Cursor {
        Cursor(epoch: epoch, stream: .user(hash: userHash(userID)), position: streamSeq)
    }

    /// The stream identity a user cursor carries.
    public static func userHash(_ userID: String) -> UInt64 {
        let digest = SHA256.hash(data: Array(userID.utf8))
        var value: UInt64 = 0
        for byte in digest.prefix(8) { value = value << 8 | UInt64(byte) }
        return value
    }

    public var text: String {
        var bytes: [UInt8] = [Self.version]
        switch stream {
        case .all: bytes.append(0)
        case .user: bytes.append(1)
        }
        BigEndian.append(epoch, to: &bytes)
        if case .user(let hash) = stream { BigEndian.append(hash, to: &bytes) }
        BigEndian.append(UInt64(position), to: &bytes)
        bytes += Self.checksum(bytes)
        return Base64URL.encode(bytes)
    }

    public var description: String { text }

    /// Parses cursor text; throws `invalid_cursor` when it is not one this software wrote.
    public static func parse(_ text: String) throws(StoreError) -> Cursor {
        guard !text.isEmpty, text.utf8.count <= Limits.cursorCharactersMax,
            let bytes = Base64URL.decode(text), bytes.count == 30 || bytes.count == 22
        else { throw .invalidCursor("cursor is malformed") }
        guard bytes[0] == version else { throw .invalidCursor("cursor is malformed (unknown version)") }
        guard Array(bytes.suffix(4)) == checksum(Array(bytes.dropLast(4))) else {
            throw .invalidCursor("cursor is malformed (checksum mismatch)")
        }
        var reader = 2
        func read64() -> UInt64 {
            var value: UInt64 = 0
            for _ in 0..<8 {
                value = value << 8 | UInt64(bytes[reader])
                reader += 1
            }
            return value
        }
        let epoch = read64()
        let stream: Stream
        switch (bytes[1], bytes.count) {
        case (0, 22): stream = .all
        case (1, 30): stream = .user(hash: read64())
        default: throw .invalidCursor("cursor is malformed (unknown stream kind)")
        }
        let position = read64()
        guard position <= UInt64(Int64.max) else { throw .invalidCursor("cursor is malformed (position)") }
        return Cursor(epoch: epoch, stream: stream, position: Int64(position))
    }

    /// Appends the text of the `all` cursor at `seq`: what `Cursor.all(epoch:seq:).text` is,
    /// written without intermediate arrays (the export writes one per event).
    package static func appendAllText(epoch: UInt64, seq: Int64, to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 22) { buffer in
            let bytes = buffer.baseAddress!
            bytes[0] = version
            bytes[1] = 0
            for index in 0..<8 {
                bytes[2 + index] = UInt8(truncatingIfNeeded: epoch >> UInt64(56 - 8 * index))
                bytes[10 + index] = UInt8(truncatingIfNeeded: UInt64(seq) >> UInt64(56 - 8 * index))
            }
            let hash = fnv1a(UnsafeBufferPointer(start: bytes, count: 18))
            for index in 0..<4 { bytes[18 + index] = UInt8(truncatingIfNeeded: hash >> UInt32(24 - 8 * index)) }
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
