import ArgumentParser
import Foundation
import Synchronization

/// Writes to standard output in large chunks (stdout is block-buffered into a pipe anyway).
final class OutputWriter: @unchecked Sendable {
    // @unchecked: used from one thread at a time (the export's reader thread), then flushed.
    private var buffer: [UInt8] = []
    private let handle: FileHandle
    static let flushBytes = 1 << 20

    init(path: String?) throws {
        if let path, path != "-" {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            guard let handle = FileHandle(forWritingAtPath: path) else {
                throw ValidationError("cannot write to \(path)")
            }
            self.handle = handle
        } else {
            handle = FileHandle.standardOutput
        }
        buffer.reserveCapacity(Self.flushBytes + 65_536)
    }

    func write(_ bytes: [UInt8]) {
        buffer += bytes
        if buffer.count >= Self.flushBytes { flush() }
    }

    func write(_ text: String) { write(Array(text.utf8)) }

    func withBuffer(_ body: (inout [UInt8]) -> Void) {
        body(&buffer)
        if buffer.count >= Self.flushBytes { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        handle.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}

/// A progress bar on standard error, drawn only when standard error is a terminal, redrawn at
/// most ten times a second.
final class ProgressBar: Sendable {
    private let label: String
    private let enabled: Bool
    private let state = Mutex((lastDraw: ContinuousClock.now - .seconds(1), started: ContinuousClock.now))

    init(_ label: String) {
        self.label = label
        enabled = isatty(STDERR_FILENO) == 1
    }

    func update(_ done: Int64, of total: Int64) {
        guard enabled else { return }
        let now = ContinuousClock.now
        let draw = state.withLock { state -> Duration? in
            guard now - state.lastDraw >= .milliseconds(100) || done >= total else { return nil }
            state.lastDraw = now
            return now - state.started
        }
        guard let elapsed = draw else { return }
        let fraction = total > 0 ? min(Double(done) / Double(total), 1) : 0
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let line = String(
            format: "\r%@ [%@] %3d%% %lld/%lld %.1fs", label, bar, Int(fraction * 100), done, total, seconds)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

enum Console {
    static func error(_ message: String) {
        FileHandle.standardError.write(Data(("tidings: " + message + "\n").utf8))
    }

    static func note(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}
