/// A reversible rewrite of compact `data` JSON before compression, worth about 1.6x on top of
/// LZ4 for notification payloads (docs/STORAGE.md has the measurements).
///
/// Compact JSON never holds bytes 0x00-0x1F (control characters must be escaped inside strings,
/// whitespace is gone outside them), so those bytes are free to serve as tokens:
/// - `0x01` + 16 bytes: a lowercase canonical UUID, 36 characters of text that LZ4 cannot shrink;
/// - `0x02` + length + packed nibbles: a run of 8-255 lowercase hex digits (ids like `usr_9c95bd659582`);
/// - `0x03`: `"notification_id":"<id>"` where the id equals the record's own notification id,
///   which the record header already holds;
/// - `0x10`...: a field name of the protocol with its quotes and colon (`"title":`).
/// Replacing fixed byte strings by bytes that never occur in the input is invertible whatever
/// the JSON means, so `decode(encode(x)) == x` for every input; a property test checks it.
package enum DataTransform {
    private static let uuidToken: UInt8 = 0x01
    private static let hexRunToken: UInt8 = 0x02
    private static let ownNotificationToken: UInt8 = 0x03
    private static let keyTokenBase: UInt8 = 0x10
    private static let hexRunMin = 8
    private static let hexRunMax = 255

    /// Field names with quotes and colon, each replaced by `keyTokenBase + index`.
    private static let keyLiterals: [StaticString] = [
        #""notification_id":"#, #""kind":"#, #""title":"#, #""body":"#, #""link":"#, #""actor_id":"#,
        #""metadata":"#, #""up_to_seq":"#, #""project_id":"#, #""priority":"#,
    ]
    private static let keys: [[UInt8]] = keyLiterals.map {
        Array(UnsafeBufferPointer(start: $0.utf8Start, count: $0.utf8CodeUnitCount))
    }

    private static let notificationPrefix: [UInt8] = Array(#""notification_id":""#.utf8)

    package static func encode(_ data: [UInt8], notificationID: [UInt8], into out: inout [UInt8]) {
        data.withUnsafeBytes { bytes in
            notificationID.withUnsafeBytes { own in
                encode(bytes, notificationID: own, into: &out)
            }
        }
    }

    package static func encode(
        _ bytes: UnsafeRawBufferPointer, notificationID: UnsafeRawBufferPointer, into out: inout [UInt8]
    ) {
        // The output is never longer than the input: every token is shorter than what it
        // replaces and everything else is copied byte for byte.
        let encoded = [UInt8](unsafeUninitializedCapacity: bytes.count) { buffer, initialized in
            initialized = buffer.isEmpty ? 0 : encode(bytes, notificationID: notificationID, to: buffer.baseAddress!)
        }
        out += encoded
    }

    /// Writes the encoding to `target` (room for `bytes.count`); returns the bytes written.
    private static func encode(
        _ bytes: UnsafeRawBufferPointer, notificationID: UnsafeRawBufferPointer, to target: UnsafeMutablePointer<UInt8>
    ) -> Int {
        var written = 0
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                if let length = ownNotificationLength(bytes, at: index, notificationID) {
                    target[written] = ownNotificationToken
                    written += 1
                    index += length
                    continue
                }
                if let (token, length) = keyToken(bytes, at: index) {
                    target[written] = token
                    written += 1
                    index += length
                    continue
                }
            } else if byte &- UInt8(ascii: "0") < 10 || byte &- UInt8(ascii: "a") < 6 {
                if UUIDText.matches(bytes, at: index) {
                    target[written] = uuidToken
                    var high = true
                    var pending: UInt8 = 0
                    var out = written + 1
                    for offset in 0..<36 where offset != 8 && offset != 13 && offset != 18 && offset != 23 {
                        let nibble = UUIDText.lowerHexValue(bytes[index + offset])!
                        if high {
                            pending = nibble << 4
                        } else {
                            target[out] = pending | nibble
                            out += 1
                        }
                        high.toggle()
                    }
                    written = out
                    index += 36
                    continue
                }
                var end = index + 1
                while end < count, end - index < hexRunMax, UUIDText.lowerHexValue(bytes[end]) != nil { end += 1 }
                let length = end - index
                if length >= hexRunMin {
                    target[written] = hexRunToken
                    target[written + 1] = UInt8(length)
                    written += 2
                    var position = index
                    while position < end {
                        let high = UUIDText.lowerHexValue(bytes[position])!
                        let low = position + 1 < end ? UUIDText.lowerHexValue(bytes[position + 1])! : 0
                        target[written] = high << 4 | low
                        written += 1
                        position += 2
                    }
                } else {
                    for position in index..<end {
                        target[written] = bytes[position]
                        written += 1
                    }
                }
                index = end
                continue
            }
            target[written] = byte
            written += 1
            index += 1
        }
        return written
    }

    @inline(__always)
    private static func ownNotificationLength(
        _ bytes: UnsafeRawBufferPointer, at index: Int, _ own: UnsafeRawBufferPointer
    ) -> Int? {
        let prefix = notificationPrefix.count
        let total = prefix + own.count + 1
        guard !own.isEmpty, index + total <= bytes.count, bytes[index + 1] == UInt8(ascii: "n") else { return nil }
        for offset in 0..<prefix where bytes[index + offset] != notificationPrefix[offset] { return nil }
        for offset in 0..<own.count where bytes[index + prefix + offset] != own[offset] { return nil }
        guard bytes[index + total - 1] == UInt8(ascii: "\"") else { return nil }
        return total
    }

    @inline(__always)
    private static func keyToken(_ bytes: UnsafeRawBufferPointer, at index: Int) -> (UInt8, Int)? {
        guard index + 1 < bytes.count else { return nil }
        let first = bytes[index + 1]
        for (keyIndex, key) in keys.enumerated() where key[1] == first && index + key.count <= bytes.count {
            var same = true
            for offset in 2..<key.count where bytes[index + offset] != key[offset] {
                same = false
                break
            }
            if same { return (keyTokenBase + UInt8(keyIndex), key.count) }
        }
        return nil
    }

    /// Restores the compact JSON bytes. Throws on bytes no encoder writes (corruption).
    /// Text between tokens is copied a run at a time.
    package static func decode(
        _ bytes: UnsafeRawBufferPointer, notificationID: [UInt8], into out: inout [UInt8]
    ) throws(DecodeError) {
        var index = 0
        let count = bytes.count
        while index < count {
            var end = index
            while end < count && bytes[end] >= 0x20 { end += 1 }
            if end > index {
                out.appendRaw(UnsafeRawBufferPointer(rebasing: bytes[index..<end]))
                index = end
                continue
            }
            let byte = bytes[index]
            switch byte {
            case uuidToken:
                guard index + 17 <= count else { throw DecodeError(reason: "truncated UUID in data") }
                UUIDText.appendUnpacked(UnsafeRawBufferPointer(rebasing: bytes[index + 1..<index + 17]), to: &out)
                index += 17
            case hexRunToken:
                guard index + 2 <= count else { throw DecodeError(reason: "truncated hex run in data") }
                let length = Int(bytes[index + 1])
                let packed = (length + 1) / 2
                guard length >= hexRunMin, index + 2 + packed <= count else {
                    throw DecodeError(reason: "bad hex run in data")
                }
                let start = index + 2
                out.appendWritten(capacity: hexRunMax) { text in
                    for digit in 0..<length {
                        let value = bytes[start + digit / 2]
                        text[digit] = HexDigit.lower(digit % 2 == 0 ? value >> 4 : value & 0xF)
                    }
                    return length
                }
                index += 2 + packed
            case ownNotificationToken:
                guard !notificationID.isEmpty else { throw DecodeError(reason: "notification token without id") }
                out.appendLiteral(#""notification_id":""#)
                out += notificationID
                out.append(UInt8(ascii: "\""))
                index += 1
            case keyTokenBase..<keyTokenBase + UInt8(keyLiterals.count):
                out.appendLiteral(keyLiterals[Int(byte - keyTokenBase)])
                index += 1
            default:
                throw DecodeError(reason: "unknown token \(byte) in data")
            }
        }
    }
}
