/// One event in its stored, binary form: what the index, the projection and the hash chain need
/// as fields, and `data` rewritten by `DataTransform`. Records are concatenated into blocks.
///
/// Layout: `flags` (type's low bits in bits 0-1 and its high bits in bits 4-7, explicit id in
/// bit 2, `up_to_seq` in bit 3), `user_no`, `stream_seq`, milliseconds since the previous record
/// (or the block's base time), then the explicit id, the notification id (every type but the
/// bulk ones), `up_to_seq` (bulk types, when given), and the length-prefixed transformed data.
/// Integers are LEB128 varints.
package struct LogRecord: Equatable, Sendable {
    package var type: EventType
    package var userNo: Int64
    package var streamSeq: Int64
    package var timestampMilliseconds: Int64
    /// The client's id; nil when the server derived it from the store and seq.
    package var explicitID: [UInt8]?
    /// Empty for the bulk types.
    package var notificationID: [UInt8]
    package var upToSeq: Int64?
    /// `data` after `DataTransform.encode`.
    package var transformedData: [UInt8]

    package static let explicitIDFlag: UInt8 = 0x04
    package static let upToFlag: UInt8 = 0x08

    package func encode(previousTimestamp: Int64, into out: inout [UInt8]) {
        precondition(timestampMilliseconds >= previousTimestamp, "timestamps never decrease along seq")
        var flags = type.recordFlags
        if explicitID != nil { flags |= Self.explicitIDFlag }
        if upToSeq != nil { flags |= Self.upToFlag }
        out.append(flags)
        Varint.append(userNo, to: &out)
        Varint.append(streamSeq, to: &out)
        Varint.append(timestampMilliseconds - previousTimestamp, to: &out)
        if let explicitID { CompactIdentifier.append(explicitID, to: &out) }
        if type.namesNotification { CompactIdentifier.append(notificationID, to: &out) }
        if let upToSeq { Varint.append(upToSeq, to: &out) }
        Varint.append(transformedData.count, to: &out)
        out += transformedData
    }

    package static func decode(_ reader: inout ByteReader, previousTimestamp: Int64) throws(DecodeError) -> LogRecord {
        let flags = try reader.byte()
        guard let type = EventType(recordFlags: flags) else { throw DecodeError(reason: "bad record flags \(flags)") }
        let userNo = try reader.int64()
        let streamSeq = try reader.int64()
        let delta = try reader.int64()
        var explicitID: [UInt8]?
        if flags & explicitIDFlag != 0 { explicitID = try CompactIdentifier.read(&reader) }
        var notificationID: [UInt8] = []
        if type.namesNotification { notificationID = try CompactIdentifier.read(&reader) }
        var upToSeq: Int64?
        if flags & upToFlag != 0 { upToSeq = try reader.int64() }
        let dataCount = try reader.int()
        let data = Array(try reader.slice(dataCount))
        guard userNo >= 1, streamSeq >= 1 else { throw DecodeError(reason: "bad record numbers") }
        return LogRecord(
            type: type, userNo: userNo, streamSeq: streamSeq, timestampMilliseconds: previousTimestamp + delta,
            explicitID: explicitID, notificationID: notificationID, upToSeq: upToSeq, transformedData: data)
    }

    /// The compact JSON of `data`.
    package func data() throws(DecodeError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(transformedData.count * 2)
        do {
            try transformedData.withUnsafeBytes { bytes in
                try DataTransform.decode(bytes, notificationID: notificationID, into: &out)
            }
        } catch let error as DecodeError {
            throw error
        } catch {
            throw DecodeError(reason: "\(error)")
        }
        return out
    }
    package init(
        type: EventType, userNo: Int64, streamSeq: Int64, timestampMilliseconds: Int64, explicitID: [UInt8]?,
        notificationID: [UInt8], upToSeq: Int64?, transformedData: [UInt8]
    ) {
        self.type = type
        self.userNo = userNo
        self.streamSeq = streamSeq
        self.timestampMilliseconds = timestampMilliseconds
        self.explicitID = explicitID
        self.notificationID = notificationID
        self.upToSeq = upToSeq
        self.transformedData = transformedData
    }
}

extension LogRecord {
    /// Steps over one record without copying it; returns its absolute timestamp.
    @inlinable
    package static func skip(_ reader: inout ByteReader, previousTimestamp: Int64) throws(DecodeError) -> Int64 {
        let flags = try reader.byte()
        guard let type = EventType(recordFlags: flags) else { throw DecodeError(reason: "bad record flags \(flags)") }
        _ = try reader.varint()
        _ = try reader.varint()
        let delta = try reader.int64()
        if flags & explicitIDFlag != 0 { try skipIdentifier(&reader) }
        if type.namesNotification { try skipIdentifier(&reader) }
        if flags & upToFlag != 0 { _ = try reader.varint() }
        _ = try reader.slice(try reader.int())
        return previousTimestamp + delta
    }

    @inlinable
    package static func skipIdentifier(_ reader: inout ByteReader) throws(DecodeError) {
        guard reader.remaining > 0 else { throw DecodeError(reason: "truncated identifier") }
        if reader.bytes[reader.position] == CompactIdentifier.uuidTag {
            _ = try reader.slice(17)
        } else {
            _ = try reader.slice(try reader.int())
        }
    }
}
