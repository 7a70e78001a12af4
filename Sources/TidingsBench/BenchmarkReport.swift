import Foundation

/// One figure of a benchmark run, with the peer's figure beside ours when there is one.
public struct BenchmarkFigure: Sendable, Codable {
    public var workload: String
    public var metric: String
    public var unit: String
    public var tidings: Double
    public var peer: Double?
    public var peerName: String?
    /// Our figure divided by the peer's (for "lower is better" units, the peer's by ours).
    public var ratio: Double? {
        guard let peer, peer > 0, tidings > 0 else { return nil }
        return lowerIsBetter ? peer / tidings : tidings / peer
    }
    public var lowerIsBetter: Bool

    public init(
        workload: String, metric: String, unit: String, tidings: Double, peer: Double? = nil, peerName: String? = nil,
        lowerIsBetter: Bool = false
    ) {
        self.workload = workload
        self.metric = metric
        self.unit = unit
        self.tidings = tidings
        self.peer = peer
        self.peerName = peerName
        self.lowerIsBetter = lowerIsBetter
    }
}

/// The machine a run happened on, recorded with every result.
public struct MachineDescription: Sendable, Codable {
    public var cores: Int
    public var memoryBytes: UInt64
    public var buildMode: String
    public var date: String

    public static func current() -> MachineDescription {
        #if DEBUG
            let mode = "debug"
        #else
            let mode = "release"
        #endif
        return MachineDescription(
            cores: ProcessInfo.processInfo.activeProcessorCount, memoryBytes: ProcessInfo.processInfo.physicalMemory,
            buildMode: mode, date: ISO8601DateFormatter().string(from: Date()))
    }
}

public struct BenchmarkReport: Sendable, Codable {
    public var machine: MachineDescription
    public var events: Int
    public var figures: [BenchmarkFigure]

    public init(machine: MachineDescription, events: Int, figures: [BenchmarkFigure]) {
        self.machine = machine
        self.events = events
        self.figures = figures
    }

    /// A plain-text table, one figure per row.
    public var table: String {
        var rows: [[String]] = [["workload", "metric", "tidings", "peer", "ratio"]]
        for figure in figures {
            rows.append([
                figure.workload, figure.metric, Self.format(figure.tidings, figure.unit),
                figure.peer.map { Self.format($0, figure.unit) + " (\(figure.peerName ?? "peer"))" } ?? "-",
                figure.ratio.map { String(format: "%.2fx", $0) } ?? "-",
            ])
        }
        let widths = (0..<5).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(
                separator: "  ")
        }.joined(separator: "\n")
    }

    static func format(_ value: Double, _ unit: String) -> String {
        let number: String
        if value >= 100 {
            number = String(format: "%.0f", value)
        } else if value >= 10 {
            number = String(format: "%.1f", value)
        } else {
            number = String(format: "%.2f", value)
        }
        return "\(number) \(unit)"
    }

    public func json() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try encoder.encode(self))
    }
}
