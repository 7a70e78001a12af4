/// A parsed JSON value, for the small documents the server reads (WebSocket messages, read
/// requests, token claims). Numbers keep their text so no precision is lost; objects refuse
/// duplicate keys. Bulk event data never goes through here.
public indirect enum JSONValue: Sendable, Equatable {
    case object([String: JSONValue])
    case array([JSONValue])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let reason: String
        public let offset: Int
        public var description: String { "\(reason) at byte \(offset)" }

        package init(reason: String, offset: Int) {
            self.reason = reason
            self.offset = offset
        }

    }

    /// Parses one JSON text (RFC 8259, strict UTF-8, nesting at most 64 deep).
    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> JSONValue {
        do {
            return try bytes.withUnsafeBytes { buffer in
                var scanner = JSONScanner(buffer)
                let value = try parseValue(&scanner, depth: 0)
                try scanner.expectEnd()
                return value
            }
        } catch let error as ParseError {
            throw error
        } catch let error as JSONScanner.SyntaxError {
            throw ParseError(reason: error.reason, offset: error.offset)
        } catch {
            throw ParseError(reason: "\(error)", offset: 0)
        }
    }

    public static func parse(_ text: String) throws(ParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    private static func parseValue(_ scanner: inout JSONScanner, depth: Int) throws -> JSONValue {
        guard depth < JSONScanner.nestingDepthMax else {
            throw scanner.fail("nesting deeper than \(JSONScanner.nestingDepthMax)")
        }
        scanner.skipWhitespace()
        guard let byte = scanner.peek() else { throw scanner.fail("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"):
            try scanner.expect(UInt8(ascii: "{"), "'{'")
            var members: [String: JSONValue] = [:]
            scanner.skipWhitespace()
            if scanner.peek() == UInt8(ascii: "}") {
                try scanner.expect(UInt8(ascii: "}"), "'}'")
                return .object(members)
            }
            while true {
                scanner.skipWhitespace()
                guard scanner.peek() == UInt8(ascii: "\"") else { throw scanner.fail("expected a string key") }
                let keyOffset = scanner.position
                let key = String(decoding: scanner.decodedString(try scanner.scanString()), as: UTF8.self)
                try scanner.expect(UInt8(ascii: ":"), "':'")
                let value = try parseValue(&scanner, depth: depth + 1)
                guard members.updateValue(value, forKey: key) == nil else {
                    throw ParseError(reason: "duplicate key \"\(key)\"", offset: keyOffset)
                }
                scanner.skipWhitespace()
                if scanner.peek() == UInt8(ascii: ",") {
                    try scanner.expect(UInt8(ascii: ","), "','")
                    continue
                }
                try scanner.expect(UInt8(ascii: "}"), "',' or '}'")
                return .object(members)
            }
        case UInt8(ascii: "["):
            try scanner.expect(UInt8(ascii: "["), "'['")
            var items: [JSONValue] = []
            scanner.skipWhitespace()
            if scanner.peek() == UInt8(ascii: "]") {
                try scanner.expect(UInt8(ascii: "]"), "']'")
                return .array(items)
            }
            while true {
                items.append(try parseValue(&scanner, depth: depth + 1))
                scanner.skipWhitespace()
                if scanner.peek() == UInt8(ascii: ",") {
                    try scanner.expect(UInt8(ascii: ","), "','")
                    continue
                }
                try scanner.expect(UInt8(ascii: "]"), "',' or ']'")
                return .array(items)
            }
        case UInt8(ascii: "\""):
            return .string(String(decoding: scanner.decodedString(try scanner.scanString()), as: UTF8.self))
        default:
            var text: [UInt8] = []
            switch try scanner.scanValue(into: &text) {
            case .bool: return .bool(text.count == 4)
            case .null: return .null
            default: return .number(String(decoding: text, as: UTF8.self))
            }
        }
    }

    // MARK: Reading

    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members[key]
    }

    public var stringValue: String? {
        guard case .string(let value) = self else { return nil }
        return value
    }

    public var boolValue: Bool? {
        guard case .bool(let value) = self else { return nil }
        return value
    }

    /// The value as an integer when it is a JSON number without fraction or exponent.
    public var integerValue: Int64? {
        guard case .number(let text) = self else { return nil }
        return JSONScanner.integerValue(Array(text.utf8)[...])
    }

    /// The value when it is a whole number, however written (`7`, `7.0`, `0.7e1`).
    public var integralValue: Int64? {
        guard case .number(let text) = self else { return nil }
        return JSONScanner.integralValue(Array(text.utf8)[...])
    }

    /// The value as a number, floored to an integer (for token times, which may have fractions).
    public var flooredIntegerValue: Int64? {
        guard case .number(let text) = self, let double = Double(text), double.isFinite, abs(double) < 1e15 else {
            return nil
        }
        return Int64(double.rounded(.down))
    }

    public var objectValue: [String: JSONValue]? {
        guard case .object(let members) = self else { return nil }
        return members
    }

    public var arrayValue: [JSONValue]? {
        guard case .array(let items) = self else { return nil }
        return items
    }
}
