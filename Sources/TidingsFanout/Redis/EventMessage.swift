import Crypto
public import TidingsStore

/// A committed event as one process tells the others over Redis Pub/Sub.
///
/// Bytes: version (3), seq, stream_seq, ts, unread count + 1 (0: no counts), and with counts the
/// unseen and archived counts, the anchor's seq as LEB128 varints, the anchor's 4 check bytes, the type, then user id, event id and data, each
/// length-prefixed, and 16 bytes of HMAC-SHA256
/// over everything before them, keyed with the store's fan-out key. Redis is shared
/// infrastructure: a message that is damaged, forged, or from another store fails the check and
/// is dropped (the log watcher delivers the event from the store instead), as is a message of
/// another version, from a process of another release.
public enum EventMessage {
    static let version: UInt8 = 3
    static let macBytes = 16

    public static func encode(_ event: StoredEvent, key: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [version]
        out.reserveCapacity(event.data.count + 96)
        appendVarint(UInt64(event.seq), &out)
        appendVarint(UInt64(event.streamSeq), &out)
        appendVarint(UInt64(event.timestampMilliseconds), &out)
        appendVarint(event.counts.map { UInt64($0.unread) + 1 } ?? 0, &out)
        if let counts = event.counts {
            appendVarint(UInt64(counts.unseen), &out)
            appendVarint(UInt64(counts.archived), &out)
        }
        appendVarint(UInt64(event.anchor.seq), &out)
        BigEndian.append(event.anchor.check, to: &out)
        out.append(event.type.rawValue)
        for field in [Array(event.userID.utf8), Array(event.id.utf8), event.data] {
            appendVarint(UInt64(field.count), &out)
            out += field
        }
        out += mac(out, key: key)
        return out
    }

    /// The event, or nil when the message is malformed or not signed with `key`.
    public static func decode(_ bytes: [UInt8], key: [UInt8]) -> StoredEvent? {
        guard bytes.count > macBytes + 1 else { return nil }
        let body = Array(bytes.dropLast(macBytes))
        guard constantTimeEqual(mac(body, key: key), Array(bytes.suffix(macBytes))), body[0] == version else {
            return nil
        }
        var index = 1
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while index < body.count, shift < 64 {
                let byte = body[index]
                index += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            return nil
        }
        func field(max: Int) -> [UInt8]? {
            guard let count = varint(), count <= UInt64(max), index + Int(count) <= body.count else { return nil }
            defer { index += Int(count) }
            return Array(body[index..<index + Int(count)])
        }
        guard let seq = varint(), let streamSeq = varint(), let ts = varint(), let unread = varint(),
            seq >= 1, seq < UInt64(Int64.max), streamSeq >= 1, streamSeq < UInt64(Int64.max), ts < UInt64(Int64.max),
            unread < UInt64(Int64.max)
        else { return nil }
        var counts: InboxCounts?
        if unread > 0 {
            guard let unseen = varint(), let archived = varint(), unseen < UInt64(Int64.max),
                archived < UInt64(Int64.max)
            else { return nil }
            counts = InboxCounts(unread: Int64(unread - 1), unseen: Int64(unseen), archived: Int64(archived))
        }
        guard let anchorSeq = varint(), anchorSeq >= seq, anchorSeq < UInt64(Int64.max), index + 4 < body.count
        else { return nil }
        var check: UInt32 = 0
        for _ in 0..<4 {
            check = check << 8 | UInt32(body[index])
            index += 1
        }
        guard let type = EventType(rawValue: body[index]) else { return nil }
        index += 1
        guard let user = field(max: Limits.identifierCharactersMax),
            let id = field(max: Limits.identifierCharactersMax),
            let data = field(max: Limits.eventBytesMax), index == body.count
        else { return nil }
        return StoredEvent(
            seq: Int64(seq), streamSeq: Int64(streamSeq), userID: String(decoding: user, as: UTF8.self),
            id: String(decoding: id, as: UTF8.self), type: type, timestampMilliseconds: Int64(ts), data: data,
            counts: counts,
            anchor: CursorAnchor(seq: Int64(anchorSeq), check: check))
    }

    private static func mac(_ bytes: [UInt8], key: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: bytes, using: SymmetricKey(data: key)).prefix(macBytes))
    }

    private static func constantTimeEqual(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    private static func appendVarint(_ value: UInt64, _ out: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        out.append(UInt8(rest))
    }
}
