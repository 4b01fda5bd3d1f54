import Foundation
import RunlogTestSupport
import Testing

/// `runlog serve` and the key of the launch API's account secrets.
@Suite("runlog serve: the secret key (real processes)", .serialized)
struct SecretKeyProcessTests {
    @Test("a bad RUNLOG_SECRET_KEY stops the server at start, naming the variable and not showing the value")
    func badEnvironmentKey() async throws {
        let dir = TemporaryDirectory()
        var environment = ProcessInfo.processInfo.environment
        environment["RUNLOG_SECRET_KEY"] = "not-a-key-VALUE-42"
        let child = try ChildProcess(["serve", "--data-dir", dir.data, "--port", "0"], environment: environment)
        let status = await child.wait()
        #expect(status != 0)
        #expect(child.errorOutput.contains("RUNLOG_SECRET_KEY"), "\(child.errorOutput)")
        #expect(!child.errorOutput.contains("VALUE-42"))
        #expect(!FileManager.default.fileExists(atPath: dir.data + "/secret.key"))
    }

    @Test("the first start makes secret.key with mode 0600; a group-readable one stops the next start")
    func keyFile() async throws {
        let dir = TemporaryDirectory()
        var environment = ProcessInfo.processInfo.environment
        environment["RUNLOG_SECRET_KEY"] = nil
        let first = try ChildProcess(["serve", "--data-dir", dir.data, "--port", "0"], environment: environment)
        try await first.waitFor { $0.contains { $0.hasPrefix("listening on") } }
        first.kill(SIGTERM)
        #expect(await first.wait() == 0)
        let path = dir.data + "/secret.key"
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        let second = try ChildProcess(["serve", "--data-dir", dir.data, "--port", "0"], environment: environment)
        #expect(await second.wait() != 0)
        #expect(second.errorOutput.contains("chmod 600"), "\(second.errorOutput)")
    }
}
