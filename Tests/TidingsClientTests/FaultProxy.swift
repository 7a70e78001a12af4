import Foundation
import Synchronization
import TidingsTestSupport

/// clients/testing/fault_proxy.py in front of a server: it fails the first requests on purpose
/// and writes a line per request (`503`, `dropped <status>`, `relayed <status>`).
///
/// The proxy's output is read on a thread of its own: a blocking read on Swift's cooperative
/// pool (two threads on a two-core machine) would starve the client it waits for.
final class FaultProxy: Sendable {
    let url: String
    private let process: Process
    private let lines = Mutex<[String]>([])

    init(target port: Int, dropAnswers: Int = 0, answer503: Int = 0) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("clients/testing/fault_proxy.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-u", script, "--target", "127.0.0.1:\(port)", "--drop-answers", String(dropAnswers),
            "--answer-503", String(answer503),
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        self.process = process
        let handle = output.fileHandleForReading
        var first = ""
        while !first.hasSuffix("\n") {
            let byte = handle.readData(ofLength: 1)
            guard !byte.isEmpty else { throw HarnessError("the fault proxy exited before listening") }
            first += String(decoding: byte, as: UTF8.self)
        }
        guard let url = first.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines),
            url.hasPrefix("http://")
        else { throw HarnessError("unexpected first line from the fault proxy: \(first)") }
        self.url = url
        let thread = Thread { [self] in
            var partial = ""
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { return }
                partial += String(decoding: chunk, as: UTF8.self)
                while let end = partial.firstIndex(of: "\n") {
                    let line = String(partial[..<end])
                    partial = String(partial[partial.index(after: end)...])
                    self.lines.withLock { $0.append(line) }
                }
            }
        }
        thread.start()
    }

    /// The lines read so far, one per request. The proxy writes each before its client gets an
    /// answer, but this process may read it a moment later: wait for the count.
    var log: [String] { lines.withLock { $0 } }

    /// SIGKILL: the test process's runner blocks SIGTERM, and a child inherits the mask.
    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
