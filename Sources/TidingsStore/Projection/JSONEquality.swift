/// "Equal as JSON values", for deciding whether a retried append is a duplicate: member order,
/// insignificant whitespace, string escapes and number spelling (`1.0` vs `1e0`) do not matter.
/// Byte-equal compact text is the fast path; otherwise both sides are parsed.
package enum JSONEquality {
    package static func equal(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        if left == right { return true }
        guard let leftValue = try? JSONValue.parse(left), let rightValue = try? JSONValue.parse(right) else {
            return false
        }
        return equal(leftValue, rightValue)
    }

    package static func equal(_ left: JSONValue, _ right: JSONValue) -> Bool {
        switch (left, right) {
        case (.object(let a), .object(let b)):
            return a.count == b.count && a.allSatisfy { key, value in b[key].map { equal(value, $0) } ?? false }
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { equal($0, $1) }
        case (.number(let a), .number(let b)):
            return Number(a) == Number(b)
        default:
            return left == right
        }
    }

    /// A JSON number as sign, significant digits and decimal exponent.
    package struct Number: Equatable {
        package var negative = false
        package var digits: [UInt8] = []
        package var exponent = 0

        package init(_ text: String) {
            let bytes = Array(text.utf8)
            var index = 0
            negative = bytes.first == UInt8(ascii: "-")
            if negative { index += 1 }
            var seenPoint = false
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: ".") {
                    seenPoint = true
                } else if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                    var sign = 1
                    index += 1
                    if bytes[index] == UInt8(ascii: "-") {
                        sign = -1
                        index += 1
                    } else if bytes[index] == UInt8(ascii: "+") {
                        index += 1
                    }
                    var value = 0
                    while index < bytes.count {
                        value = min(value * 10 + Int(bytes[index] - UInt8(ascii: "0")), 1_000_000_000)
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
            if digits.isEmpty {
                negative = false
                exponent = 0
            }
        }
    }
}
