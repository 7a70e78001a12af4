/// Small readings of header values over their UTF-8 bytes.
enum HeaderBytes {
    /// Drops spaces and tabs at both ends.
    static func trimmed(_ value: Substring.UTF8View) -> Substring.UTF8View {
        var value = value
        while let first = value.first, first == 0x20 || first == 0x09 { value = value.dropFirst() }
        while let last = value.last, last == 0x20 || last == 0x09 { value = value.dropLast() }
        return value
    }

    /// Equal to `lowercase` (ASCII letters and punctuation) without regard to ASCII case.
    static func equalIgnoringASCIICase(_ value: Substring.UTF8View, _ lowercase: StaticString) -> Bool {
        let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        guard value.count == expected.count else { return false }
        // `| 0x20` lowers an ASCII capital; it is tried only where a lowercase letter is
        // expected (no other byte lowers onto one), so everything else must match exactly.
        return zip(value, expected).allSatisfy { $0 == $1 || ($0 | 0x20 == $1 && $1 >= 0x61 && $1 <= 0x7A) }
    }

    /// Whether a `Content-Type` value names `application/json` (parameters such as a charset
    /// allowed).
    static func isJSON(_ contentType: String) -> Bool {
        let bytes = contentType.utf8[...]
        let mediaType = bytes[..<(bytes.firstIndex(of: UInt8(ascii: ";")) ?? bytes.endIndex)]
        return equalIgnoringASCIICase(trimmed(mediaType), "application/json")
    }
}
