import WorkflowModel
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Encrypts account secrets at rest: AES-256-GCM under the server's master key, bound to what the
/// secret is (`context`, authenticated but not encrypted), so a ciphertext copied onto another
/// account or field does not open.
///
/// The key comes from `RUNLOG_SECRET_KEY` (32 bytes as base64 or hex), else from
/// `<data directory>/secret.key`, created on first start with permissions 0600. Losing the key
/// loses the account secrets (nothing else).
public struct SecretBox: Sendable {
    public static let environmentVariable = "RUNLOG_SECRET_KEY"
    public static let keyFileName = "secret.key"
    private let key: SymmetricKey

    public init(key bytes: [UInt8]) {
        precondition(bytes.count == 32, "a secret key is 32 bytes")
        key = SymmetricKey(data: bytes)
    }

    /// A box with a new random key (tests).
    public static func random() -> SecretBox {
        SecretBox(key: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    /// Base64 of nonce ‖ ciphertext ‖ tag.
    public func seal(_ text: String, context: String) -> String {
        // Sealing with a valid 256-bit key and a fresh random nonce cannot fail.
        let box = try! AES.GCM.seal(Array(text.utf8), using: key, authenticating: Array(context.utf8))
        return box.combined!.base64EncodedString()
    }

    /// The text sealed with `context`; throws when the key or the context differs.
    public func open(_ sealed: String, context: String) throws -> String {
        guard let data = Data(base64Encoded: sealed) else { throw SecretKeyError("not base64") }
        let box = try AES.GCM.SealedBox(combined: data)
        return String(decoding: try AES.GCM.open(box, using: key, authenticating: Array(context.utf8)), as: UTF8.self)
    }

    /// The server's box: from `environmentValue` (the value of `RUNLOG_SECRET_KEY`) when set, else
    /// from the key file in `dataDirectory`, created when missing. A key file readable or
    /// writable by group or others is refused.
    public static func load(environmentValue: String?, dataDirectory: String) throws(SecretKeyError) -> SecretBox {
        if let value = environmentValue {
            guard let bytes = parseKey(value) else {
                throw SecretKeyError("\(environmentVariable) must be 32 bytes written as base64 (44 characters) or hex "
                                     + "(64 characters); the value set is neither (it is not shown)")
            }
            return SecretBox(key: bytes)
        }
        let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent(keyFileName).path
        if let box = try readKeyFile(path) { return box }
        try createKeyFile(path, dataDirectory: dataDirectory)
        guard let box = try readKeyFile(path) else { throw SecretKeyError("\(path) could not be created") }
        return box
    }

    /// 32 bytes from base64 (standard or URL-safe, padded or not) or hex.
    static func parseKey(_ text: String) -> [UInt8]? {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.utf8.count == 64, text.utf8.allSatisfy({ $0.isHexDigit }) {
            var bytes: [UInt8] = []
            var iterator = text.utf8.makeIterator()
            while let high = iterator.next(), let low = iterator.next() {
                bytes.append(UInt8(high.hexValue << 4 | low.hexValue))
            }
            return bytes
        }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), data.count == 32 else { return nil }
        return Array(data)
    }

    private static func readKeyFile(_ path: String) throws(SecretKeyError) -> SecretBox? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw SecretKeyError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw SecretKeyError("\(path) is readable or writable by group or others (mode "
                                 + String(mode, radix: 8) + "); it holds the key of the account secrets: "
                                 + "run chmod 600 on it, then start again")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), let bytes = parseKey(text) else {
            throw SecretKeyError("\(path) does not hold a secret key (32 bytes as base64 or hex)")
        }
        return SecretBox(key: bytes)
    }

    /// Writes a new key to a temporary file (0600) and links it into place: two processes starting
    /// at once both end up with the one key that won.
    private static func createKeyFile(_ path: String, dataDirectory: String) throws(SecretKeyError) {
        do {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        } catch {
            throw SecretKeyError("cannot create \(dataDirectory): \(error)")
        }
        let text = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
        let temporary = path + ".\(UUID().uuidString).tmp"
        let fd = createExclusive(temporary)
        guard fd >= 0 else { throw SecretKeyError("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        defer { unlink(temporary) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0 else {
            throw SecretKeyError("cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        if link(temporary, path) != 0 && errno != EEXIST {
            throw SecretKeyError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// `open(2)` with `O_CREAT | O_EXCL`, mode 0600.
private func createExclusive(_ path: String) -> Int32 {
    #if canImport(Glibc)
    Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
    #else
    Darwin.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
    #endif
}

/// Why the secret key cannot be loaded (never shows the key).
public struct SecretKeyError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

private extension UInt8 {
    var isHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }

    var hexValue: Int {
        switch self {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(self - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(self - UInt8(ascii: "a") + 10)
        default: Int(self - UInt8(ascii: "A") + 10)
        }
    }
}
