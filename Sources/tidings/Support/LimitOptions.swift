import ArgumentParser
import TidingsServer

/// The bounds `tidings serve` keeps, each with the default a single server needs.
struct LimitOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Largest request body; larger ones get 413.", valueName: "bytes"))
    var maxBodyBytes = ServerConfiguration.Defaults.requestBodyBytesMax

    @Option(
        help: ArgumentHelp("Largest request head, all header fields together; larger ones get 431.", valueName: "bytes")
    )
    var maxHeaderBytes = ServerConfiguration.Defaults.requestHeaderBytesMax

    @Option(help: ArgumentHelp("Most header fields in one request; more get 431.", valueName: "n"))
    var maxHeaderFields = ServerConfiguration.Defaults.requestHeaderFieldsMax

    @Option(
        help: ArgumentHelp(
            "Largest WebSocket message or frame from a client; larger ones close with 1009.", valueName: "bytes"))
    var maxMessageBytes = ServerConfiguration.Defaults.webSocketMessageBytesMax

    @Option(
        help: ArgumentHelp(
            "Open connections from one IP address; more are closed on accept. Behind a proxy every client shares its address: size this to the proxy's.",
            valueName: "n"))
    var maxConnectionsPerAddress = ServerConfiguration.Defaults.connectionsPerAddressMax

    @Option(
        help: ArgumentHelp(
            "Open streams of one token subject (a user's devices and tabs); one more closes with 1013.", valueName: "n")
    )
    var maxStreamsPerSubject = ServerConfiguration.Defaults.streamsPerSubjectMax

    func validate() throws {
        let bounds: [(String, Int)] = [
            ("--max-body-bytes", maxBodyBytes), ("--max-header-bytes", maxHeaderBytes),
            ("--max-header-fields", maxHeaderFields), ("--max-message-bytes", maxMessageBytes),
            ("--max-connections-per-address", maxConnectionsPerAddress),
            ("--max-streams-per-subject", maxStreamsPerSubject),
        ]
        for (name, value) in bounds where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
        guard maxHeaderBytes >= 1_024 else { throw ValidationError("--max-header-bytes must be at least 1024") }
        guard maxMessageBytes >= 1_024 else { throw ValidationError("--max-message-bytes must be at least 1024") }
    }

    func apply(to configuration: inout ServerConfiguration) {
        configuration.requestBodyBytesMax = maxBodyBytes
        configuration.requestHeaderBytesMax = maxHeaderBytes
        configuration.requestHeaderFieldsMax = maxHeaderFields
        configuration.webSocketMessageBytesMax = maxMessageBytes
        configuration.connectionsPerAddressMax = maxConnectionsPerAddress
        configuration.streamsPerSubjectMax = maxStreamsPerSubject
    }
}
