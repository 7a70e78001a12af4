import Foundation
import TidingsStore

/// Builds the JSON of responses and WebSocket messages byte by byte: envelopes are copied, not
/// re-encoded, and field order follows PROTOCOL.md.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    private var needsComma = false

    init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
        bytes.append(UInt8(ascii: "{"))
    }

    static func appendString(_ text: String, to out: inout [UInt8]) {
        JSONText.appendQuoted(text, to: &out)
    }

    private mutating func key(_ name: String) {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
        needsComma = true
        Self.appendString(name, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func field(_ name: String, _ value: String) {
        key(name)
        Self.appendString(value, to: &bytes)
    }

    mutating func field(_ name: String, _ value: Int64) {
        key(name)
        bytes += Array(String(value).utf8)
    }

    mutating func field(_ name: String, _ value: Int) { field(name, Int64(value)) }

    mutating func field(_ name: String, _ value: Bool) {
        key(name)
        bytes += Array((value ? "true" : "false").utf8)
    }

    mutating func field(_ name: String, _ value: Double) {
        key(name)
        bytes += Array((value.isFinite ? String(value) : "null").utf8)
    }

    mutating func nullField(_ name: String) {
        key(name)
        bytes += Array("null".utf8)
    }

    /// A field whose value is already JSON.
    mutating func rawField(_ name: String, _ json: [UInt8]) {
        key(name)
        bytes += json
    }

    mutating func arrayField(_ name: String, _ elements: [[UInt8]]) {
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (index, element) in elements.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += element
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func stringArrayField(_ name: String, _ values: [String]) {
        arrayField(
            name,
            values.map { value in
                var out: [UInt8] = []
                Self.appendString(value, to: &out)
                return out
            })
    }

    /// The finished object.
    mutating func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }
}
