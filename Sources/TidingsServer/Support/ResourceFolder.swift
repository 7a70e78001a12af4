import Foundation

/// A folder of the binary's resources (`Sources/TidingsServer/Resources/<name>`), read whole
/// into memory once: the schemas and the browser pages are served from it.
enum ResourceFolder {
    /// Every file of the folder whose name `keep` accepts, by file name; empty when the build
    /// carries no such folder.
    static func files(_ folder: String, keep: (String) -> Bool) -> [String: [UInt8]] {
        guard let directory = Bundle.module.url(forResource: folder, withExtension: nil, subdirectory: "Resources"),
            let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path)
        else { return [:] }
        var files: [String: [UInt8]] = [:]
        for name in names where keep(name) {
            if let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) {
                files[name] = Array(data)
            }
        }
        return files
    }
}
