/// A validating JSON scanner over raw bytes (RFC 8259, strict UTF-8), built for the append path:
/// it checks syntax and copies the value out in compact form (no insignificant whitespace)
/// without building a document tree. Strings keep their exact escapes; numbers keep their text,
/// so the compact bytes denote the same JSON value as the input.
package struct JSONScanner {
    package struct SyntaxError: Error, Equatable {
        package var offset: Int
        package var reason: String
        package init(offset: Int, reason: String) {
            self.offset = offset
            self.reason = reason
        }
    }

    /// Deeper nesting is refused: a hostile body must not exhaust the stack.
    package static let nestingDepthMax = 64

    package let bytes: UnsafeRawBufferPointer
    package private(set) var position: Int

    package init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        position = 0
    }

    package var isAtEnd: Bool { position >= bytes.count }

    package mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    package func peek() -> UInt8? {
        position < bytes.count ? bytes[position] : nil
    }

    package func fail(_ reason: String) -> SyntaxError {
        SyntaxError(offset: position, reason: reason)
    }

    package mutating func expect(_ byte: UInt8, _ what: String) throws(SyntaxError) {
        skipWhitespace()
        guard peek() == byte else { throw fail("expected \(what)") }
        position += 1
    }

    /// Requires that only whitespace remains.
    package mutating func expectEnd() throws(SyntaxError) {
        skipWhitespace()
        guard isAtEnd else { throw fail("unexpected data after the JSON value") }
    }

    // MARK: Values

    package enum Kind: Equatable {
        case object, array, string, number, bool, null
    }

    /// Scans one value, appending its compact form to `out`. Returns its kind.
    @discardableResult
    package mutating func scanValue(into out: inout [UInt8], depth: Int = 0) throws(SyntaxError) -> Kind {
        skipWhitespace()
        guard let byte = peek() else { throw fail("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"):
            try scanObject(into: &out, depth: depth + 1)
            return .object
        case UInt8(ascii: "["):
            try scanArray(into: &out, depth: depth + 1)
            return .array
        case UInt8(ascii: "\""):
            let start = position
            _ = try scanString()
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
            return .string
        case UInt8(ascii: "t"):
            try scanLiteral("true", into: &out)
            return .bool
        case UInt8(ascii: "f"):
            try scanLiteral("false", into: &out)
            return .bool
        case UInt8(ascii: "n"):
            try scanLiteral("null", into: &out)
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let start = position
            try scanNumber()
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
            return .number
        default:
            throw fail("unexpected character")
        }
    }

    /// Scans a value without keeping it.
    package mutating func skipValue(depth: Int = 0) throws(SyntaxError) -> Kind {
        var sink: [UInt8] = []
        return try scanValue(into: &sink, depth: depth)
    }

    private mutating func scanObject(into out: inout [UInt8], depth: Int) throws(SyntaxError) {
        guard depth <= Self.nestingDepthMax else { throw fail("nesting deeper than \(Self.nestingDepthMax)") }
        position += 1
        out.append(UInt8(ascii: "{"))
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            position += 1
            out.append(UInt8(ascii: "}"))
            return
        }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyStart = position
            _ = try scanString()
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[keyStart..<position]))
            try expect(UInt8(ascii: ":"), "':'")
            out.append(UInt8(ascii: ":"))
            try scanValue(into: &out, depth: depth)
            skipWhitespace()
            guard let next = peek() else { throw fail("unterminated object") }
            position += 1
            if next == UInt8(ascii: "}") {
                out.append(next)
                return
            }
            guard next == UInt8(ascii: ",") else {
                position -= 1
                throw fail("expected ',' or '}'")
            }
            out.append(next)
        }
    }

    private mutating func scanArray(into out: inout [UInt8], depth: Int) throws(SyntaxError) {
        guard depth <= Self.nestingDepthMax else { throw fail("nesting deeper than \(Self.nestingDepthMax)") }
        position += 1
        out.append(UInt8(ascii: "["))
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            position += 1
            out.append(UInt8(ascii: "]"))
            return
        }
        while true {
            try scanValue(into: &out, depth: depth)
            skipWhitespace()
            guard let next = peek() else { throw fail("unterminated array") }
            position += 1
            if next == UInt8(ascii: "]") {
                out.append(next)
                return
            }
            guard next == UInt8(ascii: ",") else {
                position -= 1
                throw fail("expected ',' or ']'")
            }
            out.append(next)
        }
    }

    private mutating func scanLiteral(_ literal: StaticString, into out: inout [UInt8]) throws(SyntaxError) {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw fail("unexpected end of input") }
        let matches = literal.withUTF8Buffer { expected in
            for index in 0..<count where bytes[position + index] != expected[index] { return false }
            return true
        }
        guard matches else { throw fail("invalid literal") }
        out.append(contentsOf: bytes[position..<position + count])
        position += count
    }

    private mutating func scanNumber() throws(SyntaxError) {
        if peek() == UInt8(ascii: "-") { position += 1 }
        guard let first = peek(), isDigit(first) else { throw fail("invalid number") }
        position += 1
        if first != UInt8(ascii: "0") {
            while let byte = peek(), isDigit(byte) { position += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            position += 1
            guard let byte = peek(), isDigit(byte) else { throw fail("invalid number: digits must follow '.'") }
            while let byte = peek(), isDigit(byte) { position += 1 }
        }
        if let byte = peek(), byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            position += 1
            if let sign = peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { position += 1 }
            guard let byte = peek(), isDigit(byte) else { throw fail("invalid number: exponent needs digits") }
            while let byte = peek(), isDigit(byte) { position += 1 }
        }
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    // MARK: Strings

    /// The raw span of a scanned string (between the quotes) and whether it holds escapes.
    package struct StringSpan {
        package var start: Int
        package var end: Int
        package var hasEscapes: Bool
        /// Unicode scalars in the decoded string.
        package var scalarCount: Int
        package init(start: Int, end: Int, hasEscapes: Bool, scalarCount: Int) {
            self.start = start
            self.end = end
            self.hasEscapes = hasEscapes
            self.scalarCount = scalarCount
        }
    }

    /// Scans a string starting at the opening quote; validates escapes and UTF-8.
    package mutating func scanString() throws(SyntaxError) -> StringSpan {
        position += 1  // opening quote
        let start = position
        var hasEscapes = false
        var scalars = 0
        while true {
            guard position < bytes.count else { throw fail("unterminated string") }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let span = StringSpan(start: start, end: position, hasEscapes: hasEscapes, scalarCount: scalars)
                position += 1
                return span
            }
            if byte == UInt8(ascii: "\\") {
                hasEscapes = true
                scalars += 1
                try scanEscape()
                continue
            }
            if byte < 0x20 { throw fail("control character in string") }
            if byte < 0x80 {
                position += 1
            } else {
                try scanUTF8Sequence()
            }
            scalars += 1
        }
    }

    private mutating func scanEscape() throws(SyntaxError) {
        position += 1
        guard let byte = peek() else { throw fail("unterminated escape") }
        position += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return
        case UInt8(ascii: "u"):
            let unit = try scanHex4()
            if (0xD800...0xDBFF).contains(unit) {
                // A high surrogate must be followed by an escaped low surrogate.
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                    bytes[position + 1] == UInt8(ascii: "u")
                else { throw fail("unpaired surrogate escape") }
                position += 2
                let low = try scanHex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw fail("unpaired surrogate escape") }
            } else if (0xDC00...0xDFFF).contains(unit) {
                throw fail("unpaired surrogate escape")
            }
        default:
            position -= 1
            throw fail("invalid escape")
        }
    }

    private mutating func scanHex4() throws(SyntaxError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = Self.hexValue(bytes[position]) else { throw fail("invalid \\u escape") }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    package static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Validates one multi-byte UTF-8 sequence (no overlongs, no surrogates, at most U+10FFFF).
    private mutating func scanUTF8Sequence() throws(SyntaxError) {
        let lead = bytes[position]
        let length: Int
        var lowerBound: UInt8 = 0x80
        var upperBound: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            lowerBound = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            upperBound = 0x9F
        case 0xF0:
            length = 4
            lowerBound = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            upperBound = 0x8F
        default: throw fail("invalid UTF-8")
        }
        guard position + length <= bytes.count else { throw fail("invalid UTF-8") }
        let second = bytes[position + 1]
        guard second >= lowerBound && second <= upperBound else { throw fail("invalid UTF-8") }
        for index in 2..<max(2, length) where bytes[position + index] & 0xC0 != 0x80 {
            throw fail("invalid UTF-8")
        }
        position += length
    }

    /// The decoded bytes of a scanned string (escapes resolved, as UTF-8).
    package func decodedString(_ span: StringSpan) -> [UInt8] {
        if !span.hasEscapes { return Array(bytes[span.start..<span.end]) }
        var out: [UInt8] = []
        out.reserveCapacity(span.end - span.start)
        var index = span.start
        while index < span.end {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                index += 1
                continue
            }
            let code = bytes[index + 1]
            index += 2
            switch code {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(at: index)
                index += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    let low = hex4(at: index + 2)
                    index += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                appendUTF8(scalar, to: &out)
            default: out.append(code)
            }
        }
        return out
    }

    private func hex4(at index: Int) -> UInt32 {
        var value: UInt32 = 0
        for offset in 0..<4 { value = value << 4 | UInt32(Self.hexValue(bytes[index + offset])!) }
        return value
    }

    private func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80: out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | scalar >> 6))
            out.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | scalar >> 12))
            out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        default:
            out.append(UInt8(0xF0 | scalar >> 18))
            out.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// Reads a JSON integer value (no fraction or exponent) that fits in Int64.
    /// A JSON number whose value is a whole number, written any way JSON allows (`211`, `211.0`,
    /// `2.11e2`): JSON Schema counts these all as integers, so the API does too.
    package static func integralValue(_ text: ArraySlice<UInt8>) -> Int64? {
        if let plain = integerValue(text) { return plain }
        var index = text.startIndex
        let negative = index < text.endIndex && text[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        var digits: [UInt8] = []
        var fraction = 0
        var seenPoint = false
        while index < text.endIndex {
            let byte = text[index]
            if byte == UInt8(ascii: ".") && !seenPoint {
                seenPoint = true
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                digits.append(byte)
                if seenPoint { fraction += 1 }
            } else {
                break
            }
            index += 1
        }
        var exponent = 0
        if index < text.endIndex, text[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            var exponentNegative = false
            if index < text.endIndex, text[index] == UInt8(ascii: "-") || text[index] == UInt8(ascii: "+") {
                exponentNegative = text[index] == UInt8(ascii: "-")
                index += 1
            }
            guard let magnitude = integerValue(text[index...]), magnitude <= 400 else { return nil }
            exponent = exponentNegative ? -Int(magnitude) : Int(magnitude)
            index = text.endIndex
        }
        guard index == text.endIndex, !digits.isEmpty else { return nil }
        exponent -= fraction
        while exponent < 0, digits.last == UInt8(ascii: "0") {
            digits.removeLast()
            exponent += 1
        }
        while digits.first == UInt8(ascii: "0") { digits.removeFirst() }
        if digits.isEmpty { return 0 }
        guard exponent >= 0, digits.count + exponent <= 19 else { return nil }
        var value = integerValue(digits[...]) ?? -1
        for _ in 0..<exponent {
            let (next, overflow) = value.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            value = next
        }
        guard value >= 0 else { return nil }
        return negative ? -value : value
    }

    package static func integerValue(_ text: ArraySlice<UInt8>) -> Int64? {
        var index = text.startIndex
        var negative = false
        if index < text.endIndex, text[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        guard index < text.endIndex else { return nil }
        var value: Int64 = 0
        while index < text.endIndex {
            let digit = text[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (multiplied, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (added, overflow2) = multiplied.addingReportingOverflow(Int64(digit))
            guard !overflow1, !overflow2 else { return nil }
            value = added
            index += 1
        }
        return negative ? -value : value
    }
}
