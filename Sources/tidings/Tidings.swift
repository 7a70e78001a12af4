import ArgumentParser
import TidingsBench

@main
struct Tidings: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tidings", subcommands: [CorpusCommand.self])
}

struct CorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "corpus")
    @Option var events = 1000
    func run() throws {
        var generator = CorpusGenerator()
        var out: [UInt8] = []
        for _ in 0..<events {
            out += generator.next().json
            out.append(10)
            if out.count > 1 << 20 {
                print(String(decoding: out, as: UTF8.self), terminator: "")
                out.removeAll(keepingCapacity: true)
            }
        }
        print(String(decoding: out, as: UTF8.self), terminator: "")
    }
}
