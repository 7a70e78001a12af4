import ArgumentParser
import Foundation

/// Reads a file or standard input line by line, in 1 MiB chunks, without loading it whole.
struct LineReader {
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    private var finished = false
    /// Bytes handed out so far (for progress).
    private(set) var consumed: Int64 = 0
    let totalBytes: Int64?

    init(path: String?) throws {
        if let path, path != "-" {
            descriptor = Foundation.open(path, O_RDONLY)
            guard descriptor >= 0 else {
                throw ValidationError("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            var info = stat()
            totalBytes = fstat(descriptor, &info) == 0 ? Int64(info.st_size) : nil
        } else {
            descriptor = STDIN_FILENO
            totalBytes = nil
        }
    }

    /// The next line without its newline; nil at the end.
    mutating func next() -> ArraySlice<UInt8>? {
        while true {
            if let newline = buffer[start...].firstIndex(of: 10) {
                let line = buffer[start..<newline]
                consumed += Int64(newline - start + 1)
                start = newline + 1
                return line
            }
            if finished {
                guard start < buffer.count else { return nil }
                let line = buffer[start...]
                consumed += Int64(buffer.count - start)
                start = buffer.count
                return line
            }
            buffer.removeSubrange(0..<start)
            start = 0
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            let count = chunk.withUnsafeMutableBytes { Foundation.read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 {
                finished = true
            } else {
                buffer += chunk[0..<count]
            }
        }
    }
}
