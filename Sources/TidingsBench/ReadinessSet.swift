import CEpoll
import Glibc

/// Which of many sockets are readable, through epoll(7). A wait costs in proportion to the
/// sockets that are ready, where poll(2) scans every one it is given: at 10,000 clients that
/// scan took about 85% of the load generator's time, so the storm and fan-out workloads
/// measured the generator instead of the server (and of Redis). Level-triggered: a socket
/// read only in part is reported again. One thread uses a set.
final class ReadinessSet {
    private let descriptor: Int32
    private var ready: [epoll_event]

    init(batch: Int = 1_024) {
        descriptor = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(descriptor >= 0, "epoll_create1 failed: errno \(errno)")
        ready = Array(repeating: epoll_event(), count: batch)
    }

    deinit { close(descriptor) }

    /// Watches `socket` for input; `token` is what `wait` reports for it. Closing the socket
    /// stops the watch.
    func add(_ socket: Int32, token: Int) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = UInt64(token)
        let status = epoll_ctl(descriptor, EPOLL_CTL_ADD, socket, &event)
        precondition(status == 0, "epoll_ctl failed: errno \(errno)")
    }

    /// Waits up to `milliseconds` and calls `body` with the token of each readable socket.
    func wait(milliseconds: Int32, _ body: (Int) -> Void) {
        let count = ready.withUnsafeMutableBufferPointer { buffer in
            epoll_wait(descriptor, buffer.baseAddress, Int32(buffer.count), milliseconds)
        }
        guard count > 0 else { return }
        for index in 0..<Int(count) { body(Int(ready[index].data.u64)) }
    }
}
