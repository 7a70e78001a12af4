/// Decodes events from JSON text: an event object `{"type","user_id","id"?,"data"}` (one NDJSON
/// line, or the body of `POST /v1/events`), or a batch `{"events":[...]}`. Checks only the
/// outer shape; `Store.append` checks every field rule. Errors name the event and the problem.
public enum EventDecoder {
    /// One event object.
    public static func decodeEvent(_ bytes: [UInt8]) throws(StoreError) -> NewEvent {
        do {
            return try bytes.withUnsafeBytes { buffer in
                var scanner = JSONScanner(buffer)
                let event = try decodeObject(&scanner, index: nil)
                try scanner.expectEnd()
                return event
            }
        } catch let error as StoreError {
            throw error
        } catch let error as JSONScanner.SyntaxError {
            throw .badRequest("event is not valid JSON: \(error.reason) at byte \(error.offset)")
        } catch {
            throw .badRequest("event is not valid JSON")
        }
    }

    /// The events of an append body: one event object, or `{"events":[...]}` (not empty).
    public static func decodeAppendBody(_ bytes: [UInt8]) throws(StoreError) -> [NewEvent] {
        do {
            return try bytes.withUnsafeBytes { buffer in
                var scanner = JSONScanner(buffer)
                scanner.skipWhitespace()
                guard scanner.peek() == UInt8(ascii: "{") else {
                    throw StoreError.badRequest("body must be a JSON object: one event or {\"events\":[...]}")
                }
                // Look at the first key: a batch has exactly one member, "events".
                var probe = scanner
                try probe.expect(UInt8(ascii: "{"), "'{'")
                probe.skipWhitespace()
                if probe.peek() == UInt8(ascii: "\"") {
                    let span = try probe.scanString()
                    if probe.decodedString(span) == Array("events".utf8) {
                        let events = try decodeBatch(&scanner)
                        try scanner.expectEnd()
                        return events
                    }
                }
                // One event: syntax first, then its size, then its shape.
                var compact: [UInt8] = []
                try scanner.scanValue(into: &compact)
                try scanner.expectEnd()
                guard compact.count <= Limits.eventBytesMax else {
                    throw StoreError(
                        .payloadTooLarge,
                        "event is \(compact.count) bytes as compact JSON; the limit is \(Limits.eventBytesMax)",
                        index: 0)
                }
                return [
                    try compact.withUnsafeBytes { buffer in
                        var inner = JSONScanner(buffer)
                        return try decodeObject(&inner, index: 0)
                    }
                ]
            }
        } catch let error as StoreError {
            throw error
        } catch let error as JSONScanner.SyntaxError {
            throw .badRequest("body is not valid JSON: \(error.reason) at byte \(error.offset)")
        } catch {
            throw .badRequest("body is not valid JSON")
        }
    }

    /// Reads `{"events":[...]}` in three passes, so the checks run in the protocol's order:
    /// JSON syntax (400), then sizes (413: the count, each event's compact size), then each
    /// event's shape (400 with its index).
    private static func decodeBatch(_ scanner: inout JSONScanner) throws -> [NewEvent] {
        try scanner.expect(UInt8(ascii: "{"), "'{'")
        scanner.skipWhitespace()
        _ = try scanner.scanString()
        try scanner.expect(UInt8(ascii: ":"), "':'")
        scanner.skipWhitespace()
        guard scanner.peek() == UInt8(ascii: "[") else { throw StoreError.badRequest("events must be an array") }
        // Every element's compact form goes into one buffer; `ends` marks where each stops.
        var compact: [UInt8] = []
        compact.reserveCapacity(scanner.bytes.count)
        var ends: [Int] = []
        try scanner.expect(UInt8(ascii: "["), "'['")
        scanner.skipWhitespace()
        if scanner.peek() == UInt8(ascii: "]") {
            try scanner.expect(UInt8(ascii: "]"), "']'")
        } else {
            while true {
                try scanner.scanValue(into: &compact)
                ends.append(compact.count)
                scanner.skipWhitespace()
                if scanner.peek() == UInt8(ascii: ",") {
                    try scanner.expect(UInt8(ascii: ","), "','")
                    continue
                }
                try scanner.expect(UInt8(ascii: "]"), "',' or ']'")
                break
            }
        }
        scanner.skipWhitespace()
        if scanner.peek() == UInt8(ascii: ",") {
            throw StoreError.badRequest("a batch body has only the field events")
        }
        try scanner.expect(UInt8(ascii: "}"), "'}'")
        try scanner.expectEnd()
        guard ends.count <= Limits.batchEventsMax else {
            throw StoreError(
                .payloadTooLarge, "a batch holds at most \(Limits.batchEventsMax) events, not \(ends.count)")
        }
        for index in ends.indices {
            let size = ends[index] - (index == 0 ? 0 : ends[index - 1])
            guard size > Limits.eventBytesMax else { continue }
            throw StoreError(
                .payloadTooLarge, "event is \(size) bytes as compact JSON; the limit is \(Limits.eventBytesMax)",
                index: index)
        }
        guard !ends.isEmpty else { throw StoreError.badRequest("events must not be empty") }
        return try compact.withUnsafeBytes { buffer in
            var events: [NewEvent] = []
            events.reserveCapacity(ends.count)
            for index in ends.indices {
                let start = index == 0 ? 0 : ends[index - 1]
                var inner = JSONScanner(UnsafeRawBufferPointer(rebasing: buffer[start..<ends[index]]))
                events.append(try decodeObject(&inner, index: index))
            }
            return events
        }
    }

    private enum Field: CaseIterable {
        case type, userID, id, data

        package var name: String {
            switch self {
            case .type: "type"
            case .userID: "user_id"
            case .id: "id"
            case .data: "data"
            }
        }
    }

    /// The field a key names, compared in place.
    private static func field(_ span: JSONScanner.StringSpan, in scanner: JSONScanner) -> Field? {
        if span.hasEscapes {
            switch String(decoding: scanner.decodedString(span), as: UTF8.self) {
            case "type": return .type
            case "user_id": return .userID
            case "id": return .id
            case "data": return .data
            default: return nil
            }
        }
        let key = UnsafeRawBufferPointer(rebasing: scanner.bytes[span.start..<span.end])
        for field in Field.allCases where key.elementsEqual(field.name.utf8) { return field }
        return nil
    }

    /// A string value as a `String`: the event type names are shared constants, anything else
    /// is decoded once from the bytes in place.
    private static func stringValue(_ span: JSONScanner.StringSpan, in scanner: JSONScanner) -> String {
        if span.hasEscapes { return String(decoding: scanner.decodedString(span), as: UTF8.self) }
        let bytes = UnsafeRawBufferPointer(rebasing: scanner.bytes[span.start..<span.end])
        for type in EventType.allCases where bytes.elementsEqual(type.name.utf8) { return type.name }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func decodeObject(_ scanner: inout JSONScanner, index: Int?) throws -> NewEvent {
        func fail(_ message: String) -> StoreError {
            StoreError(.badRequest, message, index: index)
        }
        scanner.skipWhitespace()
        guard scanner.peek() == UInt8(ascii: "{") else { throw fail("an event must be a JSON object") }
        try scanner.expect(UInt8(ascii: "{"), "'{'")
        var type: String?
        var userID: String?
        var id: String?
        var data: [UInt8]?
        scanner.skipWhitespace()
        if scanner.peek() != UInt8(ascii: "}") {
            while true {
                scanner.skipWhitespace()
                guard scanner.peek() == UInt8(ascii: "\"") else { throw scanner.fail("expected a string key") }
                let keySpan = try scanner.scanString()
                try scanner.expect(UInt8(ascii: ":"), "':'")
                guard let key = field(keySpan, in: scanner) else {
                    let name = String(decoding: scanner.decodedString(keySpan), as: UTF8.self)
                    throw fail("\(name) is not a field of an event (expected type, user_id, id, data)")
                }
                scanner.skipWhitespace()
                switch key {
                case .type, .userID, .id:
                    guard scanner.peek() == UInt8(ascii: "\"") else { throw fail("\(key.name) must be a string") }
                    let value = stringValue(try scanner.scanString(), in: scanner)
                    let previous: String?
                    switch key {
                    case .type:
                        previous = type
                        type = value
                    case .userID:
                        previous = userID
                        userID = value
                    default:
                        previous = id
                        id = value
                    }
                    if previous != nil { throw fail("\(key.name) appears twice") }
                case .data:
                    guard data == nil else { throw fail("data appears twice") }
                    guard scanner.peek() == UInt8(ascii: "{") else { throw fail("data must be a JSON object") }
                    var compact: [UInt8] = []
                    compact.reserveCapacity(scanner.bytes.count)
                    try scanner.scanValue(into: &compact)
                    data = compact
                }
                scanner.skipWhitespace()
                if scanner.peek() == UInt8(ascii: ",") {
                    try scanner.expect(UInt8(ascii: ","), "','")
                    continue
                }
                try scanner.expect(UInt8(ascii: "}"), "',' or '}'")
                break
            }
        } else {
            try scanner.expect(UInt8(ascii: "}"), "'}'")
        }
        guard let type else { throw fail("type is required") }
        guard let userID else { throw fail("user_id is required") }
        guard let data else { throw fail("data is required") }
        return NewEvent(type: type, userID: userID, id: id, data: data)
    }
}
