/// "Equal as JSON values", for deciding whether a retried append is a duplicate: object member
/// order, insignificant whitespace, string escapes and number spelling (`1.0` vs `1e0`) do not
/// matter. Byte-equal compact text is the fast path; otherwise both sides are parsed.
enum JSONEquality {
    indirect enum Value: Equatable {
        case object([String: Value])
        case array([Value])
        case string(String)
        /// A number as (negative, digits without leading/trailing zeros, decimal exponent).
        case number(negative: Bool, digits: [UInt8], exponent: Int)
        case bool(Bool)
        case null
    }

    static func equal(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        if left == right { return true }
        guard let leftValue = parse(left), let rightValue = parse(right) else { return false }
        return leftValue == rightValue
    }

    static func parse(_ bytes: [UInt8]) -> Value? {
        bytes.withUnsafeBytes { buffer in
            var scanner = JSONScanner(buffer)
            guard let value = try? parseValue(&scanner), (try? scanner.expectEnd()) != nil else { return nil }
            return value
        }
    }

    private static func parseValue(_ scanner: inout JSONScanner) throws -> Value {
        scanner.skipWhitespace()
        guard let byte = scanner.peek() else { throw scanner.fail("unexpected end") }
        switch byte {
        case UInt8(ascii: "{"):
            try scanner.expect(UInt8(ascii: "{"), "{")
            var members: [String: Value] = [:]
            scanner.skipWhitespace()
            if scanner.peek() == UInt8(ascii: "}") {
                try scanner.expect(UInt8(ascii: "}"), "}")
                return .object(members)
            }
            while true {
                scanner.skipWhitespace()
                let key = String(decoding: scanner.decodedString(try scanner.scanString()), as: UTF8.self)
                try scanner.expect(UInt8(ascii: ":"), ":")
                members[key] = try parseValue(&scanner)
                scanner.skipWhitespace()
                if scanner.peek() == UInt8(ascii: ",") {
                    try scanner.expect(UInt8(ascii: ","), ",")
                    continue
                }
                try scanner.expect(UInt8(ascii: "}"), "}")
                return .object(members)
            }
        case UInt8(ascii: "["):
            try scanner.expect(UInt8(ascii: "["), "[")
            var items: [Value] = []
            scanner.skipWhitespace()
            if scanner.peek() == UInt8(ascii: "]") {
                try scanner.expect(UInt8(ascii: "]"), "]")
                return .array(items)
            }
            while true {
                items.append(try parseValue(&scanner))
                scanner.skipWhitespace()
                if scanner.peek() == UInt8(ascii: ",") {
                    try scanner.expect(UInt8(ascii: ","), ",")
                    continue
                }
                try scanner.expect(UInt8(ascii: "]"), "]")
                return .array(items)
            }
        case UInt8(ascii: "\""):
            return .string(String(decoding: scanner.decodedString(try scanner.scanString()), as: UTF8.self))
        default:
            var text: [UInt8] = []
            let kind = try scanner.scanValue(into: &text)
            switch kind {
            case .bool: return .bool(text.count == 4)
            case .null: return .null
            default: return number(text)
            }
        }
    }

    /// Normalizes a JSON number's text to sign, significant digits and exponent.
    private static func number(_ text: [UInt8]) -> Value {
        var index = 0
        let negative = text.first == UInt8(ascii: "-")
        if negative { index += 1 }
        var digits: [UInt8] = []
        var exponent = 0
        var seenPoint = false
        while index < text.count {
            let byte = text[index]
            if byte == UInt8(ascii: ".") {
                seenPoint = true
            } else if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                var sign = 1
                index += 1
                if text[index] == UInt8(ascii: "-") {
                    sign = -1
                    index += 1
                } else if text[index] == UInt8(ascii: "+") {
                    index += 1
                }
                var value = 0
                while index < text.count {
                    value = min(value * 10 + Int(text[index] - UInt8(ascii: "0")), 1_000_000_000)
                    index += 1
                }
                exponent += sign * value
                break
            } else {
                digits.append(byte)
                if seenPoint { exponent -= 1 }
            }
            index += 1
        }
        while digits.first == UInt8(ascii: "0") { digits.removeFirst() }
        while digits.last == UInt8(ascii: "0") {
            digits.removeLast()
            exponent += 1
        }
        if digits.isEmpty { return .number(negative: false, digits: [], exponent: 0) }
        return .number(negative: negative, digits: digits, exponent: exponent)
    }
}
