/// An event that passed every shape and field rule, in the form the log stores.
package struct ValidatedEvent: Sendable {
    package var type: EventType
    package var userID: String
    package var id: String?
    /// `notification_id` of every type but the bulk ones.
    package var notificationID: [UInt8]
    /// `up_to_seq` of a bulk event, when given.
    package var upToSeq: Int64?
    /// A bulk event's `kind` and `only_read`, a snooze's `until`.
    package var options = EventOptions.none
    /// Compact JSON of `data`.
    package var data: [UInt8]
    /// Size of the event object as compact JSON, as appended (`raw_bytes` in stats).
    package var rawSize: Int
    /// `notificationID` in key form (`CompactIdentifier`); empty for the bulk types.
    package var notificationKey: [UInt8] = []
    /// `data` after `DataTransform.encode`, as the record stores it. Computed with the rest of
    /// validation, off the writer's thread.
    package var transformedData: [UInt8] = []
    package init(
        type: EventType, userID: String, id: String?, notificationID: [UInt8], upToSeq: Int64?, data: [UInt8],
        rawSize: Int, notificationKey: [UInt8] = [], transformedData: [UInt8] = []
    ) {
        self.type = type
        self.userID = userID
        self.id = id
        self.notificationID = notificationID
        self.upToSeq = upToSeq
        self.data = data
        self.rawSize = rawSize
        self.notificationKey = notificationKey
        self.transformedData = transformedData
    }
}

/// Checks events against the protocol's shape, field and size rules. Errors name the field and
/// the rule, and carry no index: the caller adds the event's position.
package enum EventValidator {
    /// Size checks only (413), run for every event of a request before any field rule.
    package static func checkSize(_ event: NewEvent) -> StoreError? {
        var size = compactObjectSize(event)
        if size > Limits.eventBytesMax {
            // Whitespace does not count: measure the compact form (invalid JSON keeps its raw size).
            var compact: [UInt8] = []
            compact.reserveCapacity(event.data.count)
            let valid = event.data.withUnsafeBytes { bytes in
                var scanner = JSONScanner(bytes)
                return (try? scanner.scanValue(into: &compact)) != nil
            }
            if valid { size = compactObjectSize(event, compactDataCount: compact.count) }
        }
        if size > Limits.eventBytesMax {
            return .tooLarge("event is \(size) bytes as compact JSON; the limit is \(Limits.eventBytesMax)")
        }
        return nil
    }

    package static func validate(_ event: NewEvent) throws(StoreError) -> ValidatedEvent {
        guard let type = EventType(name: event.type) else {
            throw .badRequest("type must be one of \(EventType.namesList)")
        }
        if let problem = Identifier.problem(event.userID.utf8) { throw .badRequest("user_id \(problem)") }
        if let id = event.id, let problem = Identifier.problem(id.utf8) { throw .badRequest("id \(problem)") }
        var validated = ValidatedEvent(
            type: type, userID: event.userID, id: event.id, notificationID: [], upToSeq: nil, data: [],
            rawSize: 0)
        do {
            try event.data.withUnsafeBytes { bytes in try validateData(bytes, into: &validated) }
        } catch let error as StoreError {
            throw error
        } catch {
            throw .badRequest("data is not valid JSON")
        }
        validated.rawSize = compactObjectSize(event, compactDataCount: validated.data.count)
        if type.namesNotification { validated.notificationKey = CompactIdentifier.key(validated.notificationID) }
        validated.transformedData.reserveCapacity(validated.data.count)
        DataTransform.encode(validated.data, notificationID: validated.notificationID, into: &validated.transformedData)
        return validated
    }

    private enum Field {
        case notificationID, kind, title, body, link, actorID, metadata, upToSeq, until, onlyRead
    }

    private static let fieldNames: [(Field, [UInt8])] = [
        (.notificationID, Array("notification_id".utf8)), (.kind, Array("kind".utf8)), (.title, Array("title".utf8)),
        (.body, Array("body".utf8)), (.link, Array("link".utf8)), (.actorID, Array("actor_id".utf8)),
        (.metadata, Array("metadata".utf8)), (.upToSeq, Array("up_to_seq".utf8)), (.until, Array("until".utf8)),
        (.onlyRead, Array("only_read".utf8)),
    ]

    /// The field a key names, compared in place (keys with escapes are decoded first).
    private static func field(_ span: JSONScanner.StringSpan, in scanner: JSONScanner) -> Field? {
        if span.hasEscapes {
            let key = scanner.decodedString(span)
            return fieldNames.first { $0.1 == key }?.0
        }
        let count = span.end - span.start
        for (field, name) in fieldNames where name.count == count {
            var same = true
            for index in 0..<count where scanner.bytes[span.start + index] != name[index] {
                same = false
                break
            }
            if same { return field }
        }
        return nil
    }

    private static func bit(_ field: Field) -> UInt16 {
        switch field {
        case .notificationID: 1
        case .kind: 2
        case .title: 4
        case .body: 8
        case .link: 16
        case .actorID: 32
        case .metadata: 64
        case .upToSeq: 128
        case .until: 256
        case .onlyRead: 512
        }
    }

    private static func allowed(_ field: Field, for type: EventType) -> Bool {
        switch type {
        case .created: field != .upToSeq && field != .until && field != .onlyRead
        case .readAll, .seenAll: field == .upToSeq || field == .kind
        case .archivedAll: field == .upToSeq || field == .kind || field == .onlyRead
        case .snoozed, .unsnoozed: field == .notificationID || field == .until
        case .read, .unread, .seen, .archived, .unarchived: field == .notificationID
        }
    }

    private static func validateData(
        _ bytes: UnsafeRawBufferPointer, into event: inout ValidatedEvent
    ) throws(StoreError) {
        var scanner = JSONScanner(bytes)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var seen: UInt16 = 0
        do {
            scanner.skipWhitespace()
            guard scanner.peek() == UInt8(ascii: "{") else { throw StoreError.badRequest("data must be a JSON object") }
            try scanner.expect(UInt8(ascii: "{"), "'{'")
            out.append(UInt8(ascii: "{"))
            scanner.skipWhitespace()
            if scanner.peek() == UInt8(ascii: "}") {
                try scanner.expect(UInt8(ascii: "}"), "'}'")
                out.append(UInt8(ascii: "}"))
            } else {
                while true {
                    scanner.skipWhitespace()
                    guard scanner.peek() == UInt8(ascii: "\"") else { throw scanner.fail("expected a string key") }
                    let keyStart = scanner.position
                    let keySpan = try scanner.scanString()
                    var name: String { String(decoding: scanner.decodedString(keySpan), as: UTF8.self) }
                    guard let field = field(keySpan, in: scanner), allowed(field, for: event.type) else {
                        throw StoreError.badRequest("data.\(name) is not a field of \(event.type.name)")
                    }
                    if seen & bit(field) != 0 { throw StoreError.badRequest("data.\(name) appears twice") }
                    seen |= bit(field)
                    out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[keyStart..<scanner.position]))
                    try scanner.expect(UInt8(ascii: ":"), "':'")
                    out.append(UInt8(ascii: ":"))
                    try validateField(field, scanner: &scanner, out: &out, event: &event)
                    scanner.skipWhitespace()
                    if scanner.peek() == UInt8(ascii: ",") {
                        try scanner.expect(UInt8(ascii: ","), "','")
                        out.append(UInt8(ascii: ","))
                        continue
                    }
                    try scanner.expect(UInt8(ascii: "}"), "',' or '}'")
                    out.append(UInt8(ascii: "}"))
                    break
                }
            }
            try scanner.expectEnd()
        } catch let error as JSONScanner.SyntaxError {
            throw .badRequest("data is not valid JSON: \(error.reason) at byte \(error.offset)")
        } catch let error as StoreError {
            throw error
        } catch {
            throw .badRequest("data is not valid JSON")
        }
        if event.type.namesNotification && seen & bit(.notificationID) == 0 {
            throw .badRequest("data.notification_id is required for \(event.type.name)")
        }
        if event.type == .snoozed && seen & bit(.until) == 0 {
            throw .badRequest("data.until is required for \(event.type.name)")
        }
        event.data = out
    }

    private static func validateField(
        _ field: Field, scanner: inout JSONScanner, out: inout [UInt8], event: inout ValidatedEvent
    ) throws {
        var name: String { String(decoding: fieldNames.first { $0.0 == field }!.1, as: UTF8.self) }
        scanner.skipWhitespace()
        let valueStart = out.count
        switch field {
        case .metadata:
            guard scanner.peek() == UInt8(ascii: "{") else {
                throw StoreError.badRequest("data.metadata must be an object")
            }
            try scanner.scanValue(into: &out)
        case .upToSeq:
            let kind = try scanner.scanValue(into: &out)
            guard kind == .number, let value = JSONScanner.integralValue(out[valueStart...]), value >= 1 else {
                throw StoreError.badRequest("data.up_to_seq must be a positive integer seq")
            }
            event.upToSeq = value
        case .onlyRead:
            let kind = try scanner.scanValue(into: &out)
            guard kind == .bool else { throw StoreError.badRequest("data.only_read must be true or false") }
            event.options.onlyRead = out.count - valueStart == 4
        case .until:
            guard scanner.peek() == UInt8(ascii: "\"") else {
                throw StoreError.badRequest("data.until must be an RFC 3339 time string")
            }
            let start = scanner.position
            let span = try scanner.scanString()
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: scanner.bytes[start..<scanner.position]))
            guard let until = Timestamp.parse(String(decoding: scanner.decodedString(span), as: UTF8.self)) else {
                throw StoreError.badRequest("data.until must be an RFC 3339 time such as 2026-12-05T09:00:00Z")
            }
            event.options.until = until
        case .notificationID, .actorID, .kind, .title, .body, .link:
            guard scanner.peek() == UInt8(ascii: "\"") else {
                throw StoreError.badRequest("data.\(name) must be a string")
            }
            let start = scanner.position
            let span = try scanner.scanString()
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: scanner.bytes[start..<scanner.position]))
            switch field {
            case .notificationID, .actorID:
                let value = scanner.decodedString(span)
                if let problem = Identifier.problem(value) { throw StoreError.badRequest("data.\(name) \(problem)") }
                if field == .notificationID { event.notificationID = value }
            default:
                let limit =
                    switch field {
                    case .kind: Limits.kindCharactersMax
                    case .title: Limits.titleCharactersMax
                    case .body: Limits.bodyCharactersMax
                    default: Limits.linkCharactersMax
                    }
                if span.scalarCount > limit {
                    throw StoreError.badRequest(
                        "data.\(name) is \(span.scalarCount) characters; the limit is \(limit)")
                }
                if field == .kind { event.options.kind = scanner.decodedString(span) }
            }
        }
    }

    /// The size of `{"type":…,"user_id":…,"id":…,"data":…}` as compact JSON.
    package static func compactObjectSize(_ event: NewEvent, compactDataCount: Int? = nil) -> Int {
        var size = 2 + 7 + 11 + 8  // {} "type": ,"user_id": ,"data":
        size += JSONText.quotedCount(event.type) + JSONText.quotedCount(event.userID)
        if let id = event.id { size += 6 + JSONText.quotedCount(id) }  // ,"id":
        size += compactDataCount ?? event.data.count
        return size
    }
}
