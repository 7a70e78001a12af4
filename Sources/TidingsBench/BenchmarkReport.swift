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
    /// What the plan asks of this figure.
    public var floor: Floor?

    /// A floor: on the ratio to the peer (ours / peer for higher-is-better figures, ours / peer
    /// too for lower-is-better ones, where it must stay under the bound), or on our figure.
    public enum Floor: Sendable, Codable, Equatable {
        case ratioAtLeast(Double)
        case ratioAtMost(Double)
        case atLeast(Double)
        case atMost(Double)

        var text: String {
            switch self {
            case .ratioAtLeast(let value): ">= \(value)x peer"
            case .ratioAtMost(let value): "<= \(value)x peer"
            case .atLeast(let value): ">= \(BenchmarkReport.compact(value))"
            case .atMost(let value): "<= \(BenchmarkReport.compact(value))"
            }
        }
    }

    /// Ours divided by the peer's.
    public var plainRatio: Double? {
        guard let peer, peer > 0 else { return nil }
        return tidings / peer
    }

    public var meetsFloor: Bool? {
        guard let floor else { return nil }
        switch floor {
        case .ratioAtLeast(let bound): return plainRatio.map { $0 >= bound }
        case .ratioAtMost(let bound): return plainRatio.map { $0 <= bound }
        case .atLeast(let bound): return tidings >= bound
        case .atMost(let bound): return tidings <= bound
        }
    }

    var summary: String {
        var text = "\(workload) \(metric): \(BenchmarkReport.format(tidings, unit))"
        if let peer { text += " vs \(BenchmarkReport.format(peer, unit)) (\(peerName ?? "peer"))" }
        if let ratio = plainRatio { text += String(format: ", %.2fx", ratio) }
        if let floor { text += " [floor \(floor.text): \(meetsFloor == true ? "met" : "NOT met")]" }
        return text
    }

    public init(
        workload: String, metric: String, unit: String, tidings: Double, peer: Double? = nil, peerName: String? = nil,
        lowerIsBetter: Bool = false, floor: Floor? = nil
    ) {
        self.floor = floor
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
        var rows: [[String]] = [["workload", "metric", "tidings", "peer", "ours/peer", "floor", "met"]]
        for figure in figures {
            rows.append([
                figure.workload, figure.metric, Self.format(figure.tidings, figure.unit),
                figure.peer.map { Self.format($0, figure.unit) + " (\(figure.peerName ?? "peer"))" } ?? "-",
                figure.plainRatio.map { String(format: "%.2fx", $0) } ?? "-",
                figure.floor?.text ?? "-",
                figure.meetsFloor.map { $0 ? "yes" : "NO" } ?? "-",
            ])
        }
        let widths = (0..<7).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(
                separator: "  ")
        }.joined(separator: "\n")
    }

    static func compact(_ value: Double) -> String {
        value >= 1_000_000
            ? String(format: "%.0fM", value / 1_000_000)
            : value >= 10_000
                ? String(format: "%.0fk", value / 1_000)
                : String(format: "%g", value)
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

/// Percentiles of a set of samples.
struct Percentiles {
    let sorted: [Double]
    init(_ samples: [Double]) { sorted = samples.sorted() }
    func at(_ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
    }
}
