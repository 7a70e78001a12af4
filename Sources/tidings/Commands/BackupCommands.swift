import ArgumentParser
import Foundation
import TidingsSQLite
import TidingsStore

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy an embedded store to one file while it is served, and verify the copy.",
        discussion: """
            The copy is the store as of one commit: every event appended before the backup began is in \
            it, and nothing half written. Servers and appends go on meanwhile. The copy is verified (the \
            whole hash chain, every block, the projection against a rebuild) before the command says it \
            is done and prints its head; record the head to check the store against later \
            (tidings verify --seq --hash). A PostgreSQL store is backed up with PostgreSQL's own tools \
            (pg_basebackup, pg_dump).
              tidings backup --data ./data --to /backups/tidings-2026-12-06.sqlite
              tidings restore --from /backups/tidings-2026-12-06.sqlite --data ./data --replace
            """
    )

    @Option(help: ArgumentHelp("The embedded store's directory.", valueName: "dir"))
    var data = "./data"

    @Option(help: ArgumentHelp("The backup file to write; it must not exist yet.", valueName: "file"))
    var to: String

    func run() async throws {
        let report = try await withProgress("backing up") { progress in
            try await SQLiteStore.backup(directory: data, to: to, progress: progress)
        }
        print("backed up and verified: \(report.events) events; head seq \(report.headSeq) hash \(report.headHash)")
        print("to \(to)")
    }
}

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Put a backup in place as an embedded store, under a new epoch.",
        discussion: """
            Verifies the backup first and refuses a truncated or damaged one. Refuses while any process \
            has the store open: stop its servers first. The restored store gets a new epoch, so every \
            cursor made before the restore is told apart: clients get a reset (PROTOCOL.md) and reload, \
            never a silent gap. An existing store is replaced only with --replace, and is then kept beside \
            it as tidings.sqlite.before-restore-TIME.
              tidings restore --from /backups/tidings-2026-12-06.sqlite --data ./data --replace
            """
    )

    @Option(help: ArgumentHelp("The backup file (from tidings backup).", valueName: "file"))
    var from: String

    @Option(help: ArgumentHelp("The embedded store's directory to restore into.", valueName: "dir"))
    var data = "./data"

    @Flag(help: "Set an existing store in the directory aside and restore over it.")
    var replace = false

    func run() async throws {
        let report = try await withProgress("restoring") { progress in
            try await SQLiteStore.restore(from: from, into: data, replace: replace, progress: progress)
        }
        print("restored and verified: \(report.events) events; head seq \(report.headSeq) hash \(report.headHash)")
        print("new epoch \(String(format: "%016llx", report.epoch)): clients holding older cursors get a reset")
        if let aside = report.setAside { print("the store it replaced is kept as \(aside)") }
    }
}

/// Runs a backup or a restore with a progress bar on a terminal; its refusal is one line on
/// standard error and exit status 1.
private func withProgress(
    _ label: String,
    _ body: (@escaping @Sendable (String, Int64, Int64) -> Void) async throws -> BackupReport
) async throws -> BackupReport {
    let bar = ProgressBar(label)
    do {
        let report = try await body { step, done, total in bar.update(done, of: total, step: step) }
        bar.finish()
        return report
    } catch let error as StoreError {
        bar.finish()
        Console.error(error.message)
        throw ExitCode(1)
    }
}
