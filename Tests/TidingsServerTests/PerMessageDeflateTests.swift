import NIOCore
import Testing

@testable import TidingsServer

/// The `permessage-deflate` offer the server accepts, and the shared codec's round trip and
/// bounds.
struct PerMessageDeflateTests {
    static let answer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

    @Test func offersItCanHonourAreAnsweredWithoutContextTakeover() {
        #expect(PerMessageDeflate.response(toOffers: ["permessage-deflate"]) == Self.answer)
        #expect(PerMessageDeflate.response(toOffers: ["permessage-deflate; client_max_window_bits"]) == Self.answer)
        #expect(
            PerMessageDeflate.response(toOffers: [#"permessage-deflate; client_max_window_bits="10""#]) == Self.answer)
        #expect(PerMessageDeflate.response(toOffers: ["permessage-deflate; server_max_window_bits=15"]) == Self.answer)
        // The first acceptable offer of several wins.
        #expect(
            PerMessageDeflate.response(toOffers: ["permessage-deflate; server_max_window_bits=10, permessage-deflate"])
                == Self.answer)
    }

    @Test func offersItCannotHonourAreDeclined() {
        #expect(PerMessageDeflate.response(toOffers: []) == nil)
        #expect(PerMessageDeflate.response(toOffers: ["x-webkit-deflate-frame"]) == nil)
        #expect(PerMessageDeflate.response(toOffers: ["permessage-deflate; server_max_window_bits=10"]) == nil)
        #expect(PerMessageDeflate.response(toOffers: ["permessage-deflate; client_max_window_bits=16"]) == nil)
        #expect(PerMessageDeflate.response(toOffers: ["permessage-deflate; mystery"]) == nil)
        #expect(PerMessageDeflate.response(toOffers: ["permessage-deflate; server_no_context_takeover=1"]) == nil)
    }

    @Test func messagesRoundTripEachOnItsOwn() throws {
        let codec = DeflateCodec()
        let messages = [
            Array(String(repeating: #"{"type":"event","title":"Build failed"}"#, count: 40).utf8),
            Array("short".utf8),
            (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) },
        ]
        for message in messages {
            let compressed = codec.compress(message, allocator: ByteBufferAllocator())
            #expect(try codec.decompress(compressed, limit: 1 << 20) == message)
        }
        let repetitive = codec.compress(messages[0], allocator: ByteBufferAllocator())
        #expect(repetitive.readableBytes < messages[0].count / 10)
    }

    @Test func inflatingPastTheBoundOrGarbageFails() {
        let codec = DeflateCodec()
        let bomb = codec.compress([UInt8](repeating: 0, count: 2 << 20), allocator: ByteBufferAllocator())
        #expect(bomb.readableBytes < 10_000)
        #expect(throws: DeflateCodec.Failure.tooLarge) { try codec.decompress(bomb, limit: 1 << 20) }
        #expect(throws: DeflateCodec.Failure.malformed) {
            try codec.decompress(ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0x00, 0x13]), limit: 1 << 20)
        }
        // The codec is reset after a failure: the next message still inflates.
        let fine = codec.compress(Array("after".utf8), allocator: ByteBufferAllocator())
        #expect((try? codec.decompress(fine, limit: 100)) == Array("after".utf8))
    }
}
