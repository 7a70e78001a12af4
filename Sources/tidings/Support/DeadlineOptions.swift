import ArgumentParser
import TidingsServer

/// How long each phase of an HTTP connection may last before `tidings serve` closes it, in
/// seconds: the answer to clients that open connections and then trickle, stall or go silent.
struct DeadlineOptions: ParsableArguments {
    private static let defaults = HTTPDeadlines()

    @Option(
        help: ArgumentHelp(
            "Time for a request's whole head, from the accept or the request's first byte; bytes that trickle in do not extend it.",
            valueName: "seconds"))
    var headTimeout = Self.defaults.head.seconds

    @Option(help: ArgumentHelp("Time for a request's whole body, from the end of its head.", valueName: "seconds"))
    var bodyTimeout = Self.defaults.body.seconds

    @Option(
        help: ArgumentHelp(
            "Time a kept-alive connection may wait for its next request; keep it above a proxy's own (nginx: 60).",
            valueName: "seconds"))
    var idleTimeout = Self.defaults.idle.seconds

    @Option(
        help: ArgumentHelp(
            "Time a response or export may wait on a client that reads nothing; a client that reads, however slowly, is not cut off.",
            valueName: "seconds"))
    var writeTimeout = Self.defaults.write.seconds

    func validate() throws {
        let values = [
            ("--head-timeout", headTimeout), ("--body-timeout", bodyTimeout), ("--idle-timeout", idleTimeout),
            ("--write-timeout", writeTimeout),
        ]
        for (name, value) in values where !(value > 0 && value <= 86_400) {
            throw ValidationError("\(name) must be more than 0 and at most 86400 seconds, got \(value)")
        }
    }

    func apply(to configuration: inout ServerConfiguration) {
        configuration.httpDeadlines.head = .seconds(headTimeout)
        configuration.httpDeadlines.body = .seconds(bodyTimeout)
        configuration.httpDeadlines.idle = .seconds(idleTimeout)
        configuration.httpDeadlines.write = .seconds(writeTimeout)
    }
}
