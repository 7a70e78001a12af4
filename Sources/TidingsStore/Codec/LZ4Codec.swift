internal import CLZ4

/// LZ4 block compression, optionally primed with the store's dictionary.
///
/// Blocks are small (a few KiB) so a per-user replay decompresses little; the dictionary (64 KiB
/// of the store's own early records) gives small blocks the ratio of large ones. Debian's liblz4
/// does not export `LZ4_attach_dictionary`, so the compressor loads the dictionary once into a
/// pristine stream state and copies that state before each block.
package final class LZ4Compressor {
    private let pristine: UnsafeMutablePointer<LZ4_stream_t>
    private let working: UnsafeMutablePointer<LZ4_stream_t>
    /// The loaded stream points into this buffer, so it lives as long as the compressor.
    private let dictionary: UnsafeMutableRawBufferPointer?

    package init(dictionary bytes: [UInt8]?) {
        pristine = .allocate(capacity: 1)
        working = .allocate(capacity: 1)
        LZ4_initStream(pristine, MemoryLayout<LZ4_stream_t>.size)
        if let bytes, !bytes.isEmpty {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
            buffer.copyBytes(from: bytes)
            dictionary = buffer
            LZ4_loadDict(pristine, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        } else {
            dictionary = nil
        }
    }

    deinit {
        pristine.deallocate()
        working.deallocate()
        dictionary?.deallocate()
    }

    /// Compresses `input`, appending the compressed bytes to `out`.
    package func compress(_ input: [UInt8], into out: inout [UInt8]) {
        let bound = Int(LZ4_compressBound(Int32(input.count)))
        let start = out.count
        out += repeatElement(0, count: bound)
        let written = input.withUnsafeBytes { source in
            out.withUnsafeMutableBytes { destination in
                let target = destination.baseAddress!.advanced(by: start).assumingMemoryBound(to: CChar.self)
                let source = source.baseAddress?.assumingMemoryBound(to: CChar.self)
                if dictionary == nil {
                    return LZ4_compress_default(source, target, Int32(input.count), Int32(bound))
                }
                working.update(from: pristine, count: 1)
                return LZ4_compress_fast_continue(working, source, target, Int32(input.count), Int32(bound), 1)
            }
        }
        precondition(written > 0 || input.isEmpty, "LZ4 compression cannot fail with a bound-sized buffer")
        out.removeLast(bound - Int(written))
    }
}

package enum LZ4Decoder {
    /// Decompresses a block whose raw size is known; throws when the bytes are damaged.
    package static func decompress(
        _ source: UnsafeRawBufferPointer, rawCount: Int, dictionary: [UInt8]?
    ) throws(DecodeError) -> [UInt8] {
        guard rawCount >= 0, rawCount <= 64 * 1024 * 1024 else { throw DecodeError(reason: "bad block size") }
        // Decompressed straight into uninitialised storage: LZ4 writes every byte it reports,
        // and a block that produces fewer than `rawCount` is refused below.
        var produced: Int32 = 0
        let out = [UInt8](unsafeUninitializedCapacity: rawCount) { destination, initialized in
            let target = UnsafeMutableRawPointer(destination.baseAddress)?.assumingMemoryBound(to: CChar.self)
            let input = source.baseAddress?.assumingMemoryBound(to: CChar.self)
            if let dictionary, !dictionary.isEmpty {
                produced = dictionary.withUnsafeBytes { dict in
                    LZ4_decompress_safe_usingDict(
                        input, target, Int32(source.count), Int32(rawCount),
                        dict.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(dict.count))
                }
            } else {
                produced = LZ4_decompress_safe(input, target, Int32(source.count), Int32(rawCount))
            }
            initialized = produced == Int32(rawCount) ? rawCount : 0
        }
        guard produced == Int32(rawCount) else {
            throw DecodeError(reason: "block does not decompress (LZ4 returned \(produced), expected \(rawCount))")
        }
        return out
    }
}
