import Foundation

/// A fresh directory under the system's temporary directory, removed when the last reference goes.
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init(prefix: String = "runlog-test") {
        path = Self.uniquePath(prefix)
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// The data directory inside it (not created).
    public var data: String { path + "/data" }

    /// A path under the system's temporary directory that nothing uses yet: `<prefix>-<8 hex digits>`. Nothing is
    /// created; the caller removes what it makes there.
    public static func uniquePath(_ prefix: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))").path
    }
}
