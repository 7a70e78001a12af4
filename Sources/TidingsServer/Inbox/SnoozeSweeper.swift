import Foundation
import Logging
import ServiceLifecycle
import TidingsStore

/// Ends snoozes whose time has come by appending their `notification.unsnoozed`: no state
/// changes by the clock alone (docs/PROTOCOL.md), so counts as of any cursor stay exact.
///
/// Every process and node of a store runs one. Each event's id is derived from the snooze it
/// ends (`DueSnooze.unsnoozeEvent`), so two sweepers that notice the same snooze append it
/// once, and its `until` makes it a `noop` when the user moved or ended the snooze meanwhile.
struct SnoozeSweeper: Service {
    let store: any EventStore
    let interval: Duration
    let metrics: ServerMetrics
    let logger: Logger
    /// Snoozes ended per append; more due are ended at once, a batch at a time.
    static let batchMax = 500

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var failing = false
            while !Task.isCancelled {
                do {
                    while try await sweep() >= Self.batchMax, !Task.isCancelled {}
                    if failing { logger.info("snooze sweeper recovered") }
                    failing = false
                } catch is CancellationError {
                    return
                } catch {
                    // Logged once per run of failures; the next round retries.
                    if !failing { logger.warning("snooze sweeper failed", metadata: ["error": "\(error)"]) }
                    failing = true
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Ends the snoozes due now; returns how many it found.
    func sweep() async throws -> Int {
        let now = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        let due = try await store.dueSnoozes(asOf: now, limit: Self.batchMax).prefix(Self.batchMax)
        guard !due.isEmpty else { return 0 }
        let results = try await store.append(due.map(\.unsnoozeEvent))
        metrics.snoozesEnded(results.count { $0.status == .appended })
        return due.count
    }
}
