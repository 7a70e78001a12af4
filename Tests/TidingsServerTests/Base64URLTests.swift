import Foundation
import Testing
import TidingsStore
import TidingsTestSupport

@testable import TidingsServer

@Suite struct Base64URLTests {
    @Test func agreesWithFoundationAndRoundTrips() {
        var random = SeededGenerator(seed: 3)
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let expected = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            #expect(Base64URL.encode(bytes) == expected)
            #expect(Base64URL.decode(expected) == bytes)
        }
    }

    @Test func refusesWhatIsNotUnpaddedBase64URL() {
        for text in ["a", "abcde", "ab", "ab==", "ab+c", "ab/c", "a b c", "abc\u{e9}", "abc="] {
            #expect(Base64URL.decode(text) == nil, "\(text)")
        }
        #expect(Base64URL.decode("") == [])
    }
}
