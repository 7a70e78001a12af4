/// Little building blocks of the binary formats: LEB128 varints and a bounds-checked reader.
/// Every read of stored bytes goes through `ByteReader`, so a corrupted record fails with
/// `DecodeError` instead of reading out of bounds.
package struct DecodeError: Error, CustomStringConvertible {
    package var reason: String

    @inlinable
    package init(reason: String) {
        self.reason = reason
    }

    package var description: String { reason }
}

package enum Varint {
    @inline(__always)
    package static func append(_ value: UInt64, to out: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        out.append(UInt8(rest))
    }

    @inline(__always)
    package static func append(_ value: Int64, to out: inout [UInt8]) {
        precondition(value >= 0, "varints hold non-negative values")
        append(UInt64(value), to: &out)
    }

    @inline(__always)
    package static func append(_ value: Int, to out: inout [UInt8]) {
        append(Int64(value), to: &out)
    }

    /// A value of either sign, zigzag-encoded: small magnitudes take one byte.
    @inline(__always)
    package static func appendSigned(_ value: Int64, to out: inout [UInt8]) {
        append(UInt64(bitPattern: (value << 1) ^ (value >> 63)), to: &out)
    }
}

package struct ByteReader {
    package let bytes: UnsafeRawBufferPointer
    package var position: Int

    @inlinable
    package init(_ bytes: UnsafeRawBufferPointer, position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    @inlinable package var isAtEnd: Bool { position >= bytes.count }
    @inlinable package var remaining: Int { bytes.count - position }

    @inlinable @inline(__always)
    package mutating func byte() throws(DecodeError) -> UInt8 {
        guard position < bytes.count else { throw DecodeError(reason: "truncated record") }
        let value = bytes[position]
        position += 1
        return value
    }

    @inlinable @inline(__always)
    package mutating func varint() throws(DecodeError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.count else { throw DecodeError(reason: "truncated varint") }
            let byte = bytes[position]
            position += 1
            guard shift < 64 else { throw DecodeError(reason: "varint too long") }
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
    }

    @inlinable
    package mutating func int64() throws(DecodeError) -> Int64 {
        let value = try varint()
        guard value <= UInt64(Int64.max) else { throw DecodeError(reason: "varint out of range") }
        return Int64(value)
    }

    /// A value written by `Varint.appendSigned`.
    @inlinable
    package mutating func signedInt64() throws(DecodeError) -> Int64 {
        let value = try varint()
        return Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1)
    }

    @inlinable
    package mutating func int() throws(DecodeError) -> Int {
        Int(try int64())
    }

    /// The next `count` bytes, as a view into the buffer.
    @inlinable
    package mutating func slice(_ count: Int) throws(DecodeError) -> UnsafeRawBufferPointer {
        guard count >= 0, count <= remaining else { throw DecodeError(reason: "truncated field") }
        let view = UnsafeRawBufferPointer(rebasing: bytes[position..<position + count])
        position += count
        return view
    }
}

/// Big-endian fixed-width integers, for the hash chain's canonical bytes.
package enum BigEndian {
    @inline(__always)
    package static func append(_ value: UInt64, to out: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) {
            out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }

    @inline(__always)
    package static func append(_ value: UInt32, to out: inout [UInt8]) {
        for shift in stride(from: 24, through: 0, by: -8) {
            out.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }

    @inline(__always)
    package static func append(_ value: UInt16, to out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: value >> 8))
        out.append(UInt8(truncatingIfNeeded: value))
    }
}
