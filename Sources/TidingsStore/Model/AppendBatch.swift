import Dispatch
import Foundation
import Synchronization

/// What every engine does with an append request before its writer sees it, and the requests a
/// read (`POST /v1/users/{user_id}/read`) turns into.
package enum AppendBatch {
    /// Batches at least this long are validated on all cores.
    package static let parallelValidationEvents = 128

    package static func validate(_ events: [NewEvent]) throws -> [ValidatedEvent] {
        guard !events.isEmpty else { throw StoreError(.badRequest, "events must not be empty") }
        guard events.count <= Limits.batchEventsMax else {
            throw StoreError(
                .payloadTooLarge, "a batch holds at most \(Limits.batchEventsMax) events, not \(events.count)")
        }
        for (index, event) in events.enumerated() {
            if let error = EventValidator.checkSize(event) { throw error.at(index: index) }
        }
        // Validation (JSON scanning, the data transform) is most of an append's work outside
        // the writer: a large batch is split across the cores. A small one (every single-event
        // request) is validated where it is, without handing work to other threads.
        guard events.count >= Self.parallelValidationEvents else {
            var validated: [ValidatedEvent] = []
            validated.reserveCapacity(events.count)
            for (index, event) in events.enumerated() {
                do throws(StoreError) {
                    validated.append(try EventValidator.validate(event))
                } catch {
                    throw error.at(index: index)
                }
            }
            return validated
        }
        let chunks = ProcessInfo.processInfo.activeProcessorCount
        let chunkSize = (events.count + chunks - 1) / chunks
        let outcomes = Mutex<[Int: Result<[ValidatedEvent], StoreError>]>([:])
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let range = chunk * chunkSize..<min((chunk + 1) * chunkSize, events.count)
            var validated: [ValidatedEvent] = []
            validated.reserveCapacity(range.count)
            for index in range {
                do throws(StoreError) {
                    validated.append(try EventValidator.validate(events[index]))
                } catch {
                    outcomes.withLock { $0[chunk] = .failure(error.at(index: index)) }
                    return
                }
            }
            outcomes.withLock { $0[chunk] = .success(validated) }
        }
        // The first failing event, in request order, is the one reported.
        return try outcomes.withLock { outcomes in
            var all: [ValidatedEvent] = []
            all.reserveCapacity(events.count)
            for chunk in 0..<chunks { all += try outcomes[chunk]!.get() }
            return all
        }
    }
}
