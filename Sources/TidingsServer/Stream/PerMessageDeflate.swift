import CZlib
import Foundation
import NIOCore

/// `permessage-deflate` (RFC 7692) for the stream, when the client offers it (browsers and
/// Python `websockets` do).
///
/// The server answers every acceptable offer with `server_no_context_takeover` and
/// `client_no_context_takeover`: each message is compressed on its own, in both directions. So
/// no connection keeps a compression window: one deflater and one inflater per event loop serve
/// all of its connections, reset after each message, and compression costs a connection no
/// memory at all (about 300 KiB per event loop instead of about 300 KiB per connection with
/// context takeover). The price is the ratio: a message cannot refer to the one before it.
enum PerMessageDeflate {
    /// The response header for the request's `Sec-WebSocket-Extensions` values, or nil when it
    /// offers nothing this server accepts.
    static func response(toOffers values: [String]) -> String? {
        for offer in values.flatMap({ $0.split(separator: ",") }) {
            var parameters = offer.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard parameters.first == "permessage-deflate" else { continue }
            parameters.removeFirst()
            if parameters.allSatisfy(acceptable) {
                return "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
            }
        }
        return nil
    }

    /// A parameter of an offer this server can honour: it compresses with the full 32 KiB
    /// window, and inflates whatever window the client uses.
    private static func acceptable(_ parameter: String) -> Bool {
        let parts = parameter.split(separator: "=", maxSplits: 1).map {
            $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        switch parts[0] {
        case "server_no_context_takeover", "client_no_context_takeover":
            return parts.count == 1
        case "client_max_window_bits":
            return parts.count == 1 || Int(parts[1]).map { (8...15).contains($0) } == true
        case "server_max_window_bits":
            return parts.count == 2 && parts[1] == "15"
        default:
            return false
        }
    }

    /// Messages shorter than this go uncompressed (the extension allows either per message):
    /// deflate's own framing would make them longer.
    static let smallestCompressed = 96
}

/// One event loop's deflater and inflater, reset after every message. Touched only on its loop.
final class DeflateCodec {
    enum Failure: Error, Equatable {
        /// The inflated message would pass the message bound (close 1009).
        case tooLarge
        /// Not a valid deflate stream (close 1007).
        case malformed
    }

    private var deflater = z_stream()
    private var inflater = z_stream()
    private var scratch = [UInt8](repeating: 0, count: 16 * 1024)

    init() {
        // Level 6, a 32 KiB window, memLevel 8: deflate's defaults, about 268 KiB.
        precondition(tidings_deflate_init_raw(&deflater, 6, 15, 8) == Z_OK, "zlib's deflater did not start")
        precondition(tidings_inflate_init_raw(&inflater, 15) == Z_OK, "zlib's inflater did not start")
    }

    deinit {
        deflateEnd(&deflater)
        inflateEnd(&inflater)
    }

    /// One message compressed on its own: deflate with a sync flush, without the flush's
    /// trailing 00 00 FF FF (RFC 7692, 7.2.1).
    func compress(_ message: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var output = allocator.buffer(capacity: message.count / 2 + 64)
        message.withUnsafeBytes { input in
            deflater.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self))
            deflater.avail_in = uInt(input.count)
            repeat {
                scratch.withUnsafeMutableBytes { out in
                    deflater.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    deflater.avail_out = uInt(out.count)
                    _ = deflate(&deflater, Z_SYNC_FLUSH)
                    output.writeBytes(UnsafeRawBufferPointer(rebasing: out[..<(out.count - Int(deflater.avail_out))]))
                }
            } while deflater.avail_out == 0
        }
        deflateReset(&deflater)
        output.moveWriterIndex(to: output.writerIndex - 4)  // 00 00 FF FF
        return output
    }

    /// One compressed message back, at most `limit` bytes.
    func decompress(_ payload: ByteBuffer, limit: Int) throws(Failure) -> [UInt8] {
        defer { inflateReset(&inflater) }
        var message: [UInt8] = []
        var input = Array(payload.readableBytesView)
        input += [0x00, 0x00, 0xFF, 0xFF]
        var failure: Failure?
        input.withUnsafeMutableBytes { bytes in
            inflater.next_in = bytes.baseAddress!.assumingMemoryBound(to: Bytef.self)
            inflater.avail_in = uInt(bytes.count)
            while failure == nil {
                let produced = scratch.withUnsafeMutableBytes { out -> Int in
                    inflater.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    inflater.avail_out = uInt(out.count)
                    let status = inflate(&inflater, Z_SYNC_FLUSH)
                    if status != Z_OK && status != Z_BUF_ERROR && status != Z_STREAM_END { failure = .malformed }
                    return out.count - Int(inflater.avail_out)
                }
                message += scratch[..<produced]
                if message.count > limit { failure = .tooLarge }
                if inflater.avail_in == 0 && produced < scratch.count { break }
                if produced == 0 { break }
            }
        }
        if let failure { throw failure }
        return message
    }
}
