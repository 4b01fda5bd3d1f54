import Foundation
import Testing

@Suite("Test hygiene")
struct TestHygieneTests {
    /// A teardown started in a `Task` from a `defer` is awaited by nothing: the test ends, and the next one starts,
    /// while the server or fixture may still be closing. Tests close with `closing`/`with` (RunlogTestSupport) or an
    /// awaited `close()` instead.
    @Test("no test tears down in a Task started by a defer (issue 24)")
    func noUnawaitedTeardown() throws {
        let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path
        let pattern = try Regex(#"defer\s*\{\s*Task(\.detached)?\s*(\(|\{)"#)
        var found: [String] = []
        for file in try FileManager.default.subpathsOfDirectory(atPath: tests).sorted() where file.hasSuffix(".swift") {
            let text = try String(contentsOfFile: tests + "/" + file, encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where line.contains(pattern) {
                found.append("Tests/\(file):\(number + 1): \(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        #expect(found.isEmpty, "unawaited teardown:\n\(found.joined(separator: "\n"))")
    }

    /// A child started outside `Spawning.locked` can inherit another child's pipe or Foundation's
    /// termination socket while that one is being made, and a long-lived child holding it makes
    /// the other's wait never end (a full run hung that way).
    @Test("every child process is started inside Spawning.locked")
    func spawnsAreLocked() throws {
        let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path
        let start = try Regex(#"\b\w*[pP]rocess\.run\(\)"#)
        var found: [String] = []
        for file in try FileManager.default.subpathsOfDirectory(atPath: tests).sorted() where file.hasSuffix(".swift") {
            let lines = try String(contentsOfFile: tests + "/" + file, encoding: .utf8)
                .split(separator: "\n", omittingEmptySubsequences: false)
            for (number, line) in lines.enumerated() where line.contains(start) {
                let before = lines[max(0, number - 6)...number]
                if !before.contains(where: { $0.contains("Spawning.locked") }) {
                    found.append("Tests/\(file):\(number + 1): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        #expect(found.isEmpty, "children started outside Spawning.locked:\n\(found.joined(separator: "\n"))")
    }
}
