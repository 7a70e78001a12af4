import ArgumentParser
import Foundation
import TidingsStore

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the whole hash chain and every block; optionally a recorded head and the projection.",
        discussion: """
            Recomputes the SHA-256 chain over every event and checks every block. On damage it names \
            the first bad seq and exits with status 1.

            An auditor records the head (seq and hash) printed today; later, --seq and --hash check \
            that the log still holds exactly that prefix:
              tidings verify --data ./data
              tidings verify --data ./data --seq 1042 --hash 9f2c...e1
              tidings verify --data ./data --projections
            """
    )

    @OptionGroup var store: StoreLocation

    @Option(help: "The seq of a head recorded earlier (with --hash).")
    var seq: Int64?

    @Option(help: "The hash of that head: 64 lowercase hex digits.")
    var hash: String?

    @Flag(help: "Also rebuild the projection in memory and compare it with the live one.")
    var projections = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if (seq == nil) != (hash == nil) { throw ValidationError("--seq and --hash go together") }
        if let hash, HashChain.parseHex(hash) == nil {
            throw ValidationError("--hash must be 64 lowercase hex digits")
        }
        if let seq, seq < 0 { throw ValidationError("--seq must not be negative") }
    }

    func run() async throws {
        let store = try await store.open()
        defer { store.close() }
        let bar = ProgressBar("verifying")
        let checkpoint = seq.flatMap { seq in hash.flatMap(HashChain.parseHex).map { (seq: seq, hash: $0) } }
        let result = try await store.verifyLog(checkpoint: checkpoint) { done, total in bar.update(done, of: total) }
        bar.finish()
        let projection = projections ? try await store.verifyProjections() : nil
        if json {
            var object: [String: Any] = [
                "ok": result.ok, "events": result.events, "blocks": result.blocks, "head_seq": result.headSeq,
                "head_hash": result.headHash,
            ]
            if let bad = result.firstBadSeq { object["first_bad_seq"] = bad }
            if let problem = result.problem { object["problem"] = problem }
            if let ok = result.checkpointOK { object["checkpoint_ok"] = ok }
            if let projection {
                object["projections"] = [
                    "ok": projection.ok, "users_checked": projection.usersChecked,
                    "mismatches": projection.mismatches.map {
                        ["user_id": $0.userID, "field": $0.field, "live": $0.live, "rebuilt": $0.rebuilt]
                    },
                ]
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            if result.ok {
                print(
                    "ok: \(result.events) events in \(result.blocks) blocks; head seq \(result.headSeq) hash \(result.headHash)"
                )
            } else {
                print("DAMAGED at seq \(result.firstBadSeq ?? 0): \(result.problem ?? "unknown damage")")
                print("recorded head seq \(result.headSeq) hash \(result.headHash) (not to be trusted)")
            }
            if let ok = result.checkpointOK {
                print(
                    ok
                        ? "checkpoint ok: the log still holds seq \(seq!) with hash \(hash!)"
                        : "checkpoint MISMATCH: the log does not hold seq \(seq!) with hash \(hash!)")
            }
            if let projection {
                print(
                    projection.ok
                        ? "projection ok: \(projection.usersChecked) users match a rebuild from the log"
                        : "projection MISMATCH in \(projection.mismatches.count) places:")
                for mismatch in projection.mismatches {
                    print("  \(mismatch.userID) \(mismatch.field): live \(mismatch.live), rebuilt \(mismatch.rebuilt)")
                }
            }
        }
        if !result.ok || result.checkpointOK == false || projection?.ok == false { throw ExitCode(1) }
    }
}
