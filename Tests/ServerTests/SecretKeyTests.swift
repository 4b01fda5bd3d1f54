// Tests of the server's secret key: from RUNLOG_SECRET_KEY or from its key file.
import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import RunlogTestSupport
import Synchronization
import Testing
@testable import RunlogHTTP
@testable import WorkflowModel
@testable import Workflows


@Suite("Secret key")
struct SecretKeyTests {
    func directory() -> String {
        TemporaryDirectory.uniquePath("runlog-key")
    }

    @Test("RUNLOG_SECRET_KEY: 32 bytes as base64 or hex; anything else is refused, naming the variable")
    func environment() throws {
        let bytes = (0..<32).map { UInt8($0) }
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let base64 = Data(bytes).base64EncodedString()
        let sealed = SecretBox(key: bytes).seal("hello", context: "c")
        for text in [hex, base64, hex.uppercased()] {
            let box = try SecretBox.load(environmentValue: text, dataDirectory: directory())
            #expect(try box.open(sealed, context: "c") == "hello")
            #expect(throws: (any Error).self) { try box.open(sealed, context: "other") }
        }
        for bad in ["", "short", String(hex.dropLast(2)), "not a key at all, just text of some length!!"] {
            do {
                _ = try SecretBox.load(environmentValue: bad, dataDirectory: directory())
                Issue.record("accepted \(bad)")
            } catch {
                #expect(error.description.contains("RUNLOG_SECRET_KEY"))
                if !bad.isEmpty { #expect(!error.description.contains(bad)) }
            }
        }
    }

    @Test("the key file is created 0600 once and reused; a group-readable one is refused")
    func keyFile() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try SecretBox.load(environmentValue: nil, dataDirectory: dir)
        let path = dir + "/secret.key"
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        let again = try SecretBox.load(environmentValue: nil, dataDirectory: dir)
        #expect(try again.open(first.seal("x", context: "c"), context: "c") == "x")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["secret.key"])
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: path)
        do {
            _ = try SecretBox.load(environmentValue: nil, dataDirectory: dir)
            Issue.record("a group-readable key file was accepted")
        } catch {
            #expect(error.description.contains("chmod 600"))
        }
    }
}
