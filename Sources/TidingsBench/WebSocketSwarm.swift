import Foundation
import Synchronization
import TidingsTestSupport

/// Many WebSocket clients on raw sockets, all read by one thread through epoll, the way the
/// Redis peer reads its hiredis subscribers: per client about as cheap, so the fan-out workloads
/// measure the server rather than the load generator. Speaks just enough of RFC 6455 for `/v1/stream`:
/// the upgrade, one masked text frame (the hello), unmasked frames from the server, pong for
/// ping, and close.
final class WebSocketSwarm: @unchecked Sendable {
    // @unchecked: `clients` belongs to the reader thread, which also makes the connections
    // asked for through `connect`; everything else shared is a Mutex or an atomic.

    /// Called on the reader thread with a client's index and each text message.
    typealias TextHandler = @Sendable (Int, UnsafeRawBufferPointer) -> Void

    private struct Client {
        var descriptor: Int32
        var hello: [UInt8]
        var upgraded = false
        var buffer: [UInt8] = []
        var offset = 0
    }

    private let port: Int
    private let onText: TextHandler
    /// A closed client's descriptor is -1.
    private var clients: [Client] = []
    /// Reports clients by their index in `clients`.
    private let readiness = ReadinessSet()
    private let running = Atomic<Bool>(true)
    private let stopped = Atomic<Bool>(false)
    /// Connections asked for and not yet opened: the port, source address and hello of each.
    private let pending = Mutex<[(port: Int, source: String?, hello: String)]>([])
    /// Clients whose connection ended (close frame, end of stream, or a failed connect).
    let closed = Atomic<Int>(0)
    /// Clients whose connect failed.
    let failed = Atomic<Int>(0)

    /// Starts the reader thread. Client `i` is the `i`-th hello passed to `connect`.
    init(port: Int, onText: @escaping TextHandler) throws {
        self.port = port
        self.onText = onText
        let thread = Thread { [self] in
            readLoop()
            stopped.store(true, ordering: .releasing)
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Asks for connections, one per hello, to `port` (the swarm's own when nil); the reader
    /// thread opens them, sends the upgrade and, after the server's 101, the hello.
    /// `source`: the loopback address to connect from (127.0.0.1 when nil).
    func connect(hellos: [String], port: Int? = nil, source: String? = nil) {
        let port = port ?? self.port
        pending.withLock { $0 += hellos.map { (port, source, $0) } }
    }

    /// Stops the reader thread and closes every connection.
    func stop() {
        running.store(false, ordering: .relaxed)
        while !stopped.load(ordering: .acquiring) { usleep(1_000) }
        for client in clients where client.descriptor >= 0 { Glibc.close(client.descriptor) }
        clients.removeAll()
    }

    /// Opens a connection and sends the upgrade request; the hello follows the server's 101.
    private func open(port: Int, source: String?, hello: String) throws {
        let descriptor = try LoopbackSocket.connect(port: port, source: source)
        try LoopbackSocket.writeAll(descriptor, LoopbackSocket.webSocketUpgrade(port: port))
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        readiness.add(descriptor, token: clients.count)
        clients.append(
            Client(descriptor: descriptor, hello: LoopbackSocket.clientFrame(opcode: 0x1, payload: Array(hello.utf8))))
    }

    private func readLoop() {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while running.load(ordering: .relaxed) {
            // A wave of new connections at a time, so reading goes on while they open.
            let opening = pending.withLock { hellos -> [(port: Int, source: String?, hello: String)] in
                let wave = Array(hellos.prefix(250))
                hellos.removeFirst(wave.count)
                return wave
            }
            for (port, source, hello) in opening {
                do {
                    try open(port: port, source: source, hello: hello)
                } catch {
                    clients.append(Client(descriptor: -1, hello: []))
                    failed.add(1, ordering: .relaxed)
                    closed.add(1, ordering: .relaxed)
                }
            }
            readiness.wait(milliseconds: opening.isEmpty ? 50 : 0) { index in
                guard clients[index].descriptor >= 0 else { return }
                while true {
                    let count = chunk.withUnsafeMutableBytes {
                        read(clients[index].descriptor, $0.baseAddress, $0.count)
                    }
                    if count > 0 {
                        clients[index].buffer += chunk[0..<count]
                        process(index)
                        if count < chunk.count || clients[index].descriptor < 0 { break }
                    } else if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                        break
                    } else {
                        finish(index)
                        break
                    }
                }
            }
        }
    }

    private func finish(_ index: Int) {
        guard clients[index].descriptor >= 0 else { return }
        Glibc.close(clients[index].descriptor)
        clients[index].descriptor = -1
        closed.add(1, ordering: .relaxed)
    }

    /// Handles whatever complete messages the client's buffer holds.
    private func process(_ index: Int) {
        if !clients[index].upgraded {
            guard let end = Self.headerEnd(clients[index].buffer) else { return }
            guard clients[index].buffer.starts(with: Array("HTTP/1.1 101".utf8)) else {
                finish(index)
                return
            }
            clients[index].buffer.removeFirst(end)
            clients[index].upgraded = true
            try? LoopbackSocket.writeAll(clients[index].descriptor, clients[index].hello)
        }
        while clients[index].descriptor >= 0 {
            let available = clients[index].buffer.count - clients[index].offset
            guard available >= 2 else { break }
            let start = clients[index].offset
            let (opcode, headerBytes, length) = clients[index].buffer.withUnsafeBytes { bytes in
                Self.header(UnsafeRawBufferPointer(rebasing: bytes[start...]))
            }
            guard headerBytes > 0, available >= headerBytes + length else { break }
            let payload = start + headerBytes..<start + headerBytes + length
            switch opcode {
            case 0x1:
                clients[index].buffer.withUnsafeBytes { onText(index, UnsafeRawBufferPointer(rebasing: $0[payload])) }
            case 0x8:
                finish(index)
            case 0x9:
                let pong = LoopbackSocket.clientFrame(opcode: 0xA, payload: Array(clients[index].buffer[payload]))
                try? LoopbackSocket.writeAll(clients[index].descriptor, pong)
            default:
                break
            }
            clients[index].offset = payload.upperBound
        }
        if clients[index].offset > 0 && clients[index].offset * 2 >= clients[index].buffer.count {
            clients[index].buffer.removeFirst(clients[index].offset)
            clients[index].offset = 0
        }
    }

    /// Opcode, header length and payload length of the frame at the start of `bytes`; a header
    /// length of 0 when the header is not complete yet.
    private static func header(_ bytes: UnsafeRawBufferPointer) -> (UInt8, Int, Int) {
        let opcode = bytes[0] & 0x0F
        let short = Int(bytes[1] & 0x7F)
        switch short {
        case 126:
            guard bytes.count >= 4 else { return (opcode, 0, 0) }
            return (opcode, 4, Int(bytes[2]) << 8 | Int(bytes[3]))
        case 127:
            guard bytes.count >= 10 else { return (opcode, 0, 0) }
            var length = 0
            for position in 2..<10 { length = length << 8 | Int(bytes[position]) }
            return (opcode, 10, length)
        default:
            return (opcode, 2, short)
        }
    }

    private static func headerEnd(_ buffer: [UInt8]) -> Int? {
        guard buffer.count >= 4 else { return nil }
        for index in 3..<buffer.count
        where buffer[index] == 10 && buffer[index - 1] == 13 && buffer[index - 2] == 10 && buffer[index - 3] == 13 {
            return index + 1
        }
        return nil
    }
}

extension UnsafeRawBufferPointer {
    /// Whether the bytes start with `prefix`.
    func hasPrefix(_ prefix: StaticString) -> Bool {
        guard count >= prefix.utf8CodeUnitCount else { return false }
        return memcmp(baseAddress!, prefix.utf8Start, prefix.utf8CodeUnitCount) == 0
    }

    /// The decimal number right after the first occurrence of `marker`, if any.
    func number(after marker: StaticString) -> Int? {
        let length = marker.utf8CodeUnitCount
        guard count > length else { return nil }
        var index = 0
        while index + length <= count {
            if memcmp(baseAddress! + index, marker.utf8Start, length) == 0 {
                var value = 0
                var position = index + length
                var digits = 0
                while position < count, self[position] >= 48, self[position] <= 57 {
                    value = value * 10 + Int(self[position] - 48)
                    position += 1
                    digits += 1
                }
                return digits > 0 ? value : nil
            }
            index += 1
        }
        return nil
    }
}
