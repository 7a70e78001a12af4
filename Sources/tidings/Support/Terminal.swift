import ArgumentParser
import Foundation
import Synchronization
import TidingsStore

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
    private let state = Mutex(
        (lastDraw: ContinuousClock.now - .seconds(1), started: ContinuousClock.now, step: "", drawn: false))

    init(_ label: String) {
        self.label = label
        enabled = isatty(STDERR_FILENO) == 1
    }

    /// Draws `done` of `total`, at most ten times a second. Work in steps names each `step`:
    /// a new step ends the previous one's line, so every step gets its own bar from 0 to 100%.
    func update(_ done: Int64, of total: Int64, step: String = "") {
        guard enabled else { return }
        let now = ContinuousClock.now
        let draw = state.withLock { state -> (elapsed: Duration, newLine: Bool)? in
            let newStep = step != state.step
            guard newStep || now - state.lastDraw >= .milliseconds(100) || done >= total else { return nil }
            let newLine = newStep && state.drawn
            state.step = step
            state.lastDraw = now
            state.drawn = true
            return (now - state.started, newLine)
        }
        guard let draw else { return }
        let fraction = total > 0 ? min(Double(done) / Double(total), 1) : 0
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let seconds = Double(draw.elapsed.components.seconds) + Double(draw.elapsed.components.attoseconds) / 1e18
        let title = step.isEmpty ? label : "\(label): \(step)"
        let line = String(
            format: "%@\r%@ [%@] %3d%% %lld/%lld %.1fs", draw.newLine ? "\n" : "", title, bar, Int(fraction * 100),
            done,
            total, seconds)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

extension RebuildProgress.Phase {
    /// What the step does, for progress lines.
    var description: String {
        switch self {
        case .reading: "reading the log (events)"
        case .writing: "writing the new tables (rows)"
        case .swapping: "swapping them in (events)"
        }
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
