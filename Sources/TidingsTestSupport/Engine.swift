/// The storage engines; a test that takes one as an argument runs against each.
public enum Engine: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite, postgres
    public var description: String { rawValue }
}
