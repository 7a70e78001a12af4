/// Appending to byte arrays a piece at a time rather than a byte at a time. Every
/// `Array.append` of one byte checks uniqueness and capacity; on the export and envelope
/// paths, which write a few hundred bytes per event, those checks cost more than the bytes.
/// Small pieces are written into a stack buffer and appended with one copy; literals are
/// appended from their static storage without touching a reference count.
extension Array where Element == UInt8 {
    @inline(__always)
    package mutating func appendLiteral(_ text: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    @inline(__always)
    package mutating func appendRaw(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        append(contentsOf: UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: bytes.count))
    }

    /// Appends what `body` writes into a stack buffer of `capacity` bytes; `body` returns
    /// how many bytes it wrote.
    @inline(__always)
    package mutating func appendWritten(capacity: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buffer in
            let base = buffer.baseAddress!
            append(contentsOf: UnsafeBufferPointer(start: base, count: body(base)))
        }
    }
}

package enum HexDigit {
    /// The lowercase hex digit of a nibble (0-15).
    @inline(__always)
    package static func lower(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "a") &- 10 &+ nibble
    }
}
