/// Writes NDJSON envelopes of the `all` stream from records in place, as every engine's export
/// does, caching what repeats: user ids (by number) and the second of the timestamp.
package struct EnvelopeWriter: Sendable {
    package var bytes: [UInt8] = []
    /// The head of the snapshot the records come from: the anchor of their cursors. Each run
    /// of an export reads in its own snapshot and sets it.
    package var anchor = CursorAnchor.start
    private let epoch: UInt64
    private let derivedIDs: DerivedEventID
    /// A reference, so the run that carries this writer from one read to the next copies no
    /// dictionary.
    private let userNames = UserNames()
    private var second: Int64 = .min
    private var secondText: [UInt8] = []
    private var notification: [UInt8] = []

    package init(epoch: UInt64, derivedIDs: DerivedEventID) {
        self.epoch = epoch
        self.derivedIDs = derivedIDs
    }

    /// Appends the envelope of `record` and a newline; `userName` gives the id of a user
    /// number this writer has not written yet.
    package mutating func append(seq: Int64, record: RecordView, userName: (Int64) throws -> String) throws {
        bytes.appendLiteral(#"{"seq":"#)
        JSONText.appendInteger(seq, to: &bytes)
        bytes.appendLiteral(#","stream_seq":"#)
        JSONText.appendInteger(record.streamSeq, to: &bytes)
        bytes.appendLiteral(#","user_id":"#)
        if let name = userNames.quoted[record.userNo] {
            bytes += name
        } else {
            var name: [UInt8] = []
            JSONText.appendQuoted(try userName(record.userNo), to: &name)
            if userNames.quoted.count > 100_000 { userNames.quoted.removeAll(keepingCapacity: true) }
            userNames.quoted[record.userNo] = name
            bytes += name
        }
        bytes.appendLiteral(#","id":""#)
        if record.explicitID.isEmpty {
            derivedIDs.append(seq: seq, to: &bytes)
        } else {
            RecordView.appendIdentifierText(record.explicitID, to: &bytes)
        }
        bytes += Self.typeFields[Int(record.type.rawValue)]
        appendTimestamp(record.timestampMilliseconds)
        bytes.appendLiteral(#"","data":"#)
        notification.removeAll(keepingCapacity: true)
        if !record.notificationID.isEmpty { RecordView.appendIdentifierText(record.notificationID, to: &notification) }
        do {
            try DataTransform.decode(record.transformedData, notificationID: notification, into: &bytes)
        } catch {
            throw StoreError(.internal, "the log is damaged: data of event \(seq) does not decode (\(error))")
        }
        bytes.appendLiteral(#","cursor":""#)
        Cursor.appendAllText(epoch: epoch, seq: seq, anchor: anchor, to: &bytes)
        bytes.appendLiteral("\"}\n")
    }

    /// `","type":"<name>","ts":"` for each type, by raw value.
    private static let typeFields: [[UInt8]] = EventType.allCases.map {
        Array("\",\"type\":\"\($0.name)\",\"ts\":\"".utf8)
    }

    private mutating func appendTimestamp(_ milliseconds: Int64) {
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        if seconds != second {
            second = seconds
            secondText.removeAll(keepingCapacity: true)
            Timestamp.append(milliseconds: seconds * 1000, to: &secondText)
            secondText.removeLast(5)  // ".000Z"
        }
        bytes += secondText
        let millis = Int(milliseconds - seconds * 1000)
        bytes.appendWritten(capacity: 5) { text in
            text[0] = UInt8(ascii: ".")
            text[1] = UInt8(ascii: "0") + UInt8(millis / 100)
            text[2] = UInt8(ascii: "0") + UInt8(millis / 10 % 10)
            text[3] = UInt8(ascii: "0") + UInt8(millis % 10)
            text[4] = UInt8(ascii: "Z")
            return 5
        }
    }
}

/// User ids already written by an export, quoted, by user number.
/// `@unchecked Sendable`: an export's runs are read one after another, each awaiting the last,
/// so one thread at a time uses it.
private final class UserNames: @unchecked Sendable {
    var quoted: [Int64: [UInt8]] = [:]
}
