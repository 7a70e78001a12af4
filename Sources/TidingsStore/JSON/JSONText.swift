/// Writing JSON text by hand, for the envelopes and pages the store renders byte by byte.
public enum JSONText {
    /// The length of `text` as a JSON string literal, quotes included.
    package static func quotedCount(_ text: String) -> Int {
        var count = 2
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x08, 0x0C, 0x0A, 0x0D, 0x09: count += 2
            case 0..<0x20: count += 6
            default: count += 1
            }
        }
        return count
    }

    /// Appends `text` as a JSON string literal.
    package static func appendQuoted(_ text: some Collection<UInt8>, to out: inout [UInt8]) {
        let done: Void? = text.withContiguousStorageIfAvailable { bytes in
            appendQuoted(UnsafeRawBufferPointer(bytes), to: &out)
        }
        if done != nil { return }
        appendQuoted(Array(text), to: &out)
    }

    /// Runs of bytes that need no escape are copied whole.
    package static func appendQuoted(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var start = 0
        for index in 0..<bytes.count {
            let byte = bytes[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            out.appendRaw(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
            start = index + 1
            switch byte {
            case UInt8(ascii: "\""): out.appendLiteral(#"\""#)
            case UInt8(ascii: "\\"): out.appendLiteral(#"\\"#)
            case 0x0A: out.appendLiteral(#"\n"#)
            case 0x0D: out.appendLiteral(#"\r"#)
            case 0x09: out.appendLiteral(#"\t"#)
            default:
                out.appendLiteral(#"\u00"#)
                out.append(HexDigit.lower(byte >> 4))
                out.append(HexDigit.lower(byte & 0xF))
            }
        }
        out.appendRaw(UnsafeRawBufferPointer(rebasing: bytes[start..<bytes.count]))
        out.append(UInt8(ascii: "\""))
    }

    public static func appendQuoted(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { appendQuoted(UnsafeRawBufferPointer($0), to: &out) }
    }

    /// Appends a decimal integer without allocating.
    package static func appendInteger(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
            if value == .min {
                out += Array("9223372036854775808".utf8)
                return
            }
            appendInteger(-value, to: &out)
            return
        }
        if value < 10 {
            out.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            while rest > 0 {
                buffer[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            }
            for index in stride(from: count - 1, through: 0, by: -1) { out.append(buffer[index]) }
        }
    }

    package static func appendInteger(_ value: Int, to out: inout [UInt8]) {
        appendInteger(Int64(value), to: &out)
    }
}
