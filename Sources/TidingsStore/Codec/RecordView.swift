/// A record read in place: its fields as integers and spans of the block's bytes, with no
/// copies. The replay, export and rebuild paths walk blocks with it; `LogRecord` is the
/// copying form for everything else.
package struct RecordView {
    package var type: EventType
    package var userNo: Int64
    package var streamSeq: Int64
    package var timestampMilliseconds: Int64
    /// The client's id in `CompactIdentifier` form; empty when derived.
    package var explicitID: UnsafeRawBufferPointer
    /// The notification id in `CompactIdentifier` form (the projection's key); empty for the bulk types.
    package var notificationID: UnsafeRawBufferPointer
    package var upToSeq: Int64?
    /// `data` after `DataTransform.encode`.
    package var transformedData: UnsafeRawBufferPointer

    /// Reads the record at the reader's position and moves past it. Inlinable: every replay,
    /// export and rebuild calls it once per event from the engine's module.
    @inlinable
    package static func read(_ reader: inout ByteReader, previousTimestamp: Int64) throws(DecodeError) -> RecordView {
        let flags = try reader.byte()
        guard let type = EventType(recordFlags: flags) else { throw DecodeError(reason: "bad record flags \(flags)") }
        let userNo = try reader.int64()
        let streamSeq = try reader.int64()
        let delta = try reader.int64()
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        let explicitID = flags & 0x04 != 0 ? try identifierSpan(&reader) : empty
        let notificationID = type.namesNotification ? try identifierSpan(&reader) : empty
        let upToSeq = flags & 0x08 != 0 ? try reader.int64() : nil
        let data = try reader.slice(try reader.int())
        guard userNo >= 1, streamSeq >= 1 else { throw DecodeError(reason: "bad record numbers") }
        return RecordView(
            type: type, userNo: userNo, streamSeq: streamSeq, timestampMilliseconds: previousTimestamp + delta,
            explicitID: explicitID, notificationID: notificationID, upToSeq: upToSeq, transformedData: data)
    }

    @inlinable
    package static func identifierSpan(_ reader: inout ByteReader) throws(DecodeError) -> UnsafeRawBufferPointer {
        guard reader.remaining > 0 else { throw DecodeError(reason: "truncated identifier") }
        let start = reader.position
        if reader.bytes[start] == CompactIdentifier.uuidTag {
            _ = try reader.slice(17)
        } else {
            let count = try reader.int()
            guard count >= 1, count <= Limits.identifierCharactersMax else {
                throw DecodeError(reason: "identifier length \(count) out of range")
            }
            _ = try reader.slice(count)
        }
        return UnsafeRawBufferPointer(rebasing: reader.bytes[start..<reader.position])
    }

    /// Appends an identifier in `CompactIdentifier` form as its text.
    package static func appendIdentifierText(_ compact: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        if compact.first == CompactIdentifier.uuidTag {
            UUIDText.appendUnpacked(UnsafeRawBufferPointer(rebasing: compact[1..<17]), to: &out)
        } else {
            var reader = ByteReader(compact)
            let count = (try? reader.int()) ?? 0
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: compact[reader.position..<reader.position + count]))
        }
    }
    @inlinable
    package init(
        type: EventType, userNo: Int64, streamSeq: Int64, timestampMilliseconds: Int64,
        explicitID: UnsafeRawBufferPointer, notificationID: UnsafeRawBufferPointer, upToSeq: Int64?,
        transformedData: UnsafeRawBufferPointer
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
