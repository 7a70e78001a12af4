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
        var elements: [[UInt8]] = []
        try scanner.expect(UInt8(ascii: "["), "'['")
        scanner.skipWhitespace()
        if scanner.peek() == UInt8(ascii: "]") {
            try scanner.expect(UInt8(ascii: "]"), "']'")
        } else {
            while true {
                var compact: [UInt8] = []
                try scanner.scanValue(into: &compact)
                elements.append(compact)
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
        guard elements.count <= Limits.batchEventsMax else {
            throw StoreError(
                .payloadTooLarge, "a batch holds at most \(Limits.batchEventsMax) events, not \(elements.count)")
        }
        for (index, element) in elements.enumerated() where element.count > Limits.eventBytesMax {
            throw StoreError(
                .payloadTooLarge,
                "event is \(element.count) bytes as compact JSON; the limit is \(Limits.eventBytesMax)", index: index)
        }
        guard !elements.isEmpty else { throw StoreError.badRequest("events must not be empty") }
        return try elements.enumerated().map { index, element in
            try element.withUnsafeBytes { buffer in
                var inner = JSONScanner(buffer)
                return try decodeObject(&inner, index: index)
            }
        }
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
                let key = String(decoding: scanner.decodedString(try scanner.scanString()), as: UTF8.self)
                try scanner.expect(UInt8(ascii: ":"), "':'")
                scanner.skipWhitespace()
                switch key {
                case "type", "user_id", "id":
                    guard scanner.peek() == UInt8(ascii: "\"") else { throw fail("\(key) must be a string") }
                    let value = String(decoding: scanner.decodedString(try scanner.scanString()), as: UTF8.self)
                    let previous: String?
                    switch key {
                    case "type":
                        previous = type
                        type = value
                    case "user_id":
                        previous = userID
                        userID = value
                    default:
                        previous = id
                        id = value
                    }
                    if previous != nil { throw fail("\(key) appears twice") }
                case "data":
                    guard data == nil else { throw fail("data appears twice") }
                    guard scanner.peek() == UInt8(ascii: "{") else { throw fail("data must be a JSON object") }
                    var compact: [UInt8] = []
                    try scanner.scanValue(into: &compact)
                    data = compact
                default:
                    throw fail("\(key) is not a field of an event (expected type, user_id, id, data)")
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
