/// Identifiers in records: a lowercase canonical UUID (the common case for notification and
/// event ids) is kept as its 16 bytes after a zero byte; anything else as length-prefixed text.
/// Identifiers are never empty, so a zero length byte can only be the UUID tag.
package enum CompactIdentifier {
    package static let uuidTag: UInt8 = 0x00

    package static func append(_ identifier: some Collection<UInt8>, to out: inout [UInt8]) {
        if identifier.count == 36, let packed = UUIDText.pack(Array(identifier)) {
            out.append(uuidTag)
            out += packed
        } else {
            Varint.append(identifier.count, to: &out)
            out += identifier
        }
    }

    package static func read(_ reader: inout ByteReader) throws(DecodeError) -> [UInt8] {
        guard reader.remaining > 0 else { throw DecodeError(reason: "truncated identifier") }
        if reader.bytes[reader.position] == uuidTag {
            reader.position += 1
            return UUIDText.unpack(try reader.slice(16))
        }
        let count = try reader.int()
        guard count >= 1, count <= Limits.identifierCharactersMax else {
            throw DecodeError(reason: "identifier length \(count) out of range")
        }
        return Array(try reader.slice(count))
    }

    /// The key form used by the projection tables: the same bytes `append` writes.
    package static func key(_ identifier: some Collection<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        append(identifier, to: &out)
        return out
    }
}

/// Lowercase canonical UUID text (8-4-4-4-12 hex digits) to and from its 16 bytes.
package enum UUIDText {
    @inline(__always)
    package static func lowerHexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    /// True when the 36 bytes at `offset` are a lowercase canonical UUID.
    package static func matches(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        guard offset + 36 <= bytes.count else { return false }
        for index in 0..<36 {
            let byte = bytes[offset + index]
            if index == 8 || index == 13 || index == 18 || index == 23 {
                if byte != UInt8(ascii: "-") { return false }
            } else if lowerHexValue(byte) == nil {
                return false
            }
        }
        return true
    }

    package static func pack(_ text: [UInt8]) -> [UInt8]? {
        guard text.count == 36 else { return nil }
        return text.withUnsafeBytes { bytes in
            guard matches(bytes, at: 0) else { return nil }
            var out: [UInt8] = []
            out.reserveCapacity(16)
            appendPacked(bytes, at: 0, to: &out)
            return out
        }
    }

    /// Appends the 16 bytes of the UUID whose text starts at `offset` (already matched).
    package static func appendPacked(_ bytes: UnsafeRawBufferPointer, at offset: Int, to out: inout [UInt8]) {
        var high: UInt8? = nil
        for index in 0..<36 where !(index == 8 || index == 13 || index == 18 || index == 23) {
            let nibble = lowerHexValue(bytes[offset + index])!
            if let upper = high {
                out.append(upper << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
    }

    package static func unpack(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(36)
        appendUnpacked(bytes, to: &out)
        return out
    }

    package static func appendUnpacked(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.appendWritten(capacity: 36) { text in
            writeUnpacked(bytes, to: text)
            return 36
        }
    }

    /// Writes the 36 characters of the UUID whose 16 bytes are `bytes`.
    @inline(__always)
    package static func writeUnpacked(_ bytes: UnsafeRawBufferPointer, to text: UnsafeMutablePointer<UInt8>) {
        var position = 0
        for index in 0..<16 {
            if index == 4 || index == 6 || index == 8 || index == 10 {
                text[position] = UInt8(ascii: "-")
                position += 1
            }
            text[position] = HexDigit.lower(bytes[index] >> 4)
            text[position + 1] = HexDigit.lower(bytes[index] & 0xF)
            position += 2
        }
    }
}
