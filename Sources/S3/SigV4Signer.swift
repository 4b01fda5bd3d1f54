import Crypto
public import Foundation

/// AWS Signature Version 4 for requests signed in the `Authorization` header, written from AWS's description of the
/// algorithm: canonical request → string to sign → signing key derived from the secret → HMAC-SHA256 signature.
///
/// Pure: the same request, credentials and date give the same headers, so it is tested against AWS's published
/// examples. The path is encoded once, as S3 requires (other services normalise and encode it twice; this signer is
/// for S3 and S3-compatible stores).
public struct SigV4Signer: Sendable {
    /// The payload hash that tells S3 the body is not signed (it is then protected by TLS only).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// The SHA-256 of no bytes, the payload hash of a request without a body.
    public static let emptyPayloadSHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    static let algorithm = "AWS4-HMAC-SHA256"

    /// The key that signs.
    public var credentials: S3Credentials
    /// The region in the credential scope, such as `us-east-1`.
    public var region: String
    /// The service in the credential scope: `s3`.
    public var service: String
    /// Whether `x-amz-content-sha256` is sent and signed: S3 requires it; the generic test suite has no such header.
    public var signsContentHash: Bool

    /// A signer for `service` in `region`; `signsContentHash` defaults to whether the service is S3.
    public init(credentials: S3Credentials, region: String, service: String = "s3", signsContentHash: Bool? = nil) {
        self.credentials = credentials
        self.region = region
        self.service = service
        self.signsContentHash = signsContentHash ?? (service == "s3")
    }

    /// The parts of a request that are signed.
    public struct Request: Sendable {
        /// The HTTP method, such as `GET`.
        public var method: String
        /// The path as characters, not yet percent-encoded: `/bucket/dir/a b.csv`.
        public var path: String
        /// The query parameters, not yet percent-encoded, in any order.
        public var query: [(name: String, value: String)]
        /// The headers to sign besides those the signer adds (`x-amz-date`, `x-amz-content-sha256`,
        /// `x-amz-security-token`); `host` must be among them.
        public var headers: [(name: String, value: String)]
        /// The lower-case hex SHA-256 of the body, or ``SigV4Signer/unsignedPayload``.
        public var payloadHash: String

        /// A request; the payload hash defaults to that of an empty body.
        public init(method: String, path: String, query: [(name: String, value: String)] = [],
                    headers: [(name: String, value: String)], payloadHash: String = SigV4Signer.emptyPayloadSHA256) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    /// A signed request: every header to send, and the steps that led to the signature (for tests and debugging).
    public struct Signed: Sendable {
        /// The request's headers, the ones the signer added and `Authorization`, in that order.
        public var headers: [(name: String, value: String)]
        /// The value of the `Authorization` header.
        public var authorization: String
        /// The canonical request that was hashed.
        public var canonicalRequest: String
        /// The string that was signed.
        public var stringToSign: String
        /// The hex signature.
        public var signature: String
    }

    /// Signs `request` at `date`: adds `x-amz-date` (and `x-amz-content-sha256`, `x-amz-security-token` where they
    /// apply) to its headers, signs them all, and returns them with `Authorization`.
    public func sign(_ request: Request, date: Date) -> Signed {
        let amzDate = Self.amzDate(date)
        var headers = request.headers
        headers.append((name: "x-amz-date", value: amzDate))
        if signsContentHash { headers.append((name: "x-amz-content-sha256", value: request.payloadHash)) }
        if let token = credentials.sessionToken { headers.append((name: "x-amz-security-token", value: token)) }

        let canonical = Self.canonicalHeaders(headers)
        let canonicalRequest = [
            request.method,
            Self.canonicalURI(request.path),
            Self.canonicalQuery(request.query),
            canonical.block,
            canonical.signedHeaders,
            request.payloadHash,
        ].joined(separator: "\n")
        let day = String(amzDate.prefix(8))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = [Self.algorithm, amzDate, scope, Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8)))]
            .joined(separator: "\n")
        let signature = Self.hex(Self.hmac(signingKey(day: day), stringToSign))
        let authorization = "\(Self.algorithm) Credential=\(credentials.accessKeyId)/\(scope), "
            + "SignedHeaders=\(canonical.signedHeaders), Signature=\(signature)"
        headers.append((name: "Authorization", value: authorization))
        return Signed(headers: headers, authorization: authorization, canonicalRequest: canonicalRequest,
                      stringToSign: stringToSign, signature: signature)
    }

    /// The key for one day, region and service: HMACs chained from `"AWS4" + secret` over each part of the scope.
    public func signingKey(day: String) -> [UInt8] {
        var key = Self.hmac(Array("AWS4\(credentials.secretAccessKey)".utf8), day)
        for part in [region, service, "aws4_request"] { key = Self.hmac(key, part) }
        return key
    }

    // MARK: - Canonical forms

    /// The path percent-encoded once: each byte outside `A–Z a–z 0–9 - . _ ~ /` as `%XX`; empty becomes `/`.
    public static func canonicalURI(_ path: String) -> String {
        path.isEmpty ? "/" : uriEncode(path, keepSlash: true)
    }

    /// The query encoded (a `/` too) and sorted by name, then value: `a=1&b=x%2Fy`; the same string is sent.
    public static func canonicalQuery(_ items: [(name: String, value: String)]) -> String {
        let encoded: [(name: String, value: String)] = items.map { item in
            (uriEncode(item.name, keepSlash: false), uriEncode(item.value, keepSlash: false))
        }
        let sorted = encoded.sorted { a, b in a.name == b.name ? a.value < b.value : a.name < b.name }
        return sorted.map { item in item.name + "=" + item.value }.joined(separator: "&")
    }

    /// The header block (`name:value\n` each, names lower-cased and sorted, values trimmed with inner runs of spaces
    /// folded, repeated names joined by commas) and the signed header list (`host;x-amz-date`).
    static func canonicalHeaders(_ headers: [(name: String, value: String)]) -> (block: String, signedHeaders: String) {
        var byName: [String: [String]] = [:]
        for (name, value) in headers { byName[name.lowercased(), default: []].append(trimmed(value)) }
        let names = byName.keys.sorted()
        let block = names.map { "\($0):\(byName[$0]!.joined(separator: ","))\n" }.joined()
        return (block, names.joined(separator: ";"))
    }

    /// `value` without leading and trailing spaces and tabs, each inner run of them folded to one space.
    static func trimmed(_ value: String) -> String {
        var out = ""
        var pendingSpace = false
        for character in value {
            if character == " " || character == "\t" {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(" ") }
                pendingSpace = false
                out.append(character)
            }
        }
        return out
    }

    /// Percent-encodes the UTF-8 bytes of `string` as AWS's `UriEncode` does: unreserved characters stay, every other
    /// byte becomes `%XX` with upper-case digits, and `/` stays only when `keepSlash` (in an object key's path).
    public static func uriEncode(_ string: String, keepSlash: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(string.utf8.count)
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where keepSlash:
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(upperHexDigits[Int(byte >> 4)])
                out.append(upperHexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Dates, hashes, hex

    /// `date` in UTC as `YYYYMMDD'T'HHMMSS'Z'`, the form of `x-amz-date`.
    public static func amzDate(_ date: Date) -> String {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(year)\(two(month))\(two(day))T\(two(secondOfDay / 3600))\(two(secondOfDay / 60 % 60))"
            + "\(two(secondOfDay % 60))Z"
    }

    /// The proleptic Gregorian date of a day counted from 1970-01-01, by whole 400-year eras (146,097 days each),
    /// with years taken to start on March 1st so that the leap day falls at the end of a year.
    static func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = daysSinceEpoch + 719_468  // days from 0000-03-01 to 1970-01-01
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let marchMonth = (5 * dayOfYear + 2) / 153  // 0 is March
        let day = dayOfYear - (153 * marchMonth + 2) / 5 + 1
        let month = marchMonth < 10 ? marchMonth + 3 : marchMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    /// The lower-case hex SHA-256 of `bytes`, for a payload hash.
    public static func sha256Hex(_ bytes: some DataProtocol) -> String {
        hex(SHA256.hash(data: bytes))
    }

    static func hmac(_ key: [UInt8], _ message: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: key)))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        for byte in bytes {
            out.append(lowerHexDigits[Int(byte >> 4)])
            out.append(lowerHexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let upperHexDigits = Array("0123456789ABCDEF".utf8)
    private static let lowerHexDigits = Array("0123456789abcdef".utf8)
}
