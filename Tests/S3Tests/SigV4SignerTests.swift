import Foundation
import S3
import Testing

/// The signer against AWS's published examples. Every expected value below is copied from AWS's documentation, not
/// from this signer's output: the Signature Version 4 test suite ("get-vanilla", "get-vanilla-query-order-key-case",
/// credentials AKIDEXAMPLE, service "service", 2015-08-30T12:36:00Z) and the S3 guide's "Signature Calculations for
/// the Authorization Header" examples (AKIAIOSFODNN7EXAMPLE, examplebucket, 2013-05-24T00:00:00Z).
@Suite("SigV4 signing")
struct SigV4SignerTests {
    static let suiteSigner = SigV4Signer(
        credentials: S3Credentials(accessKeyId: "AKIDEXAMPLE",
                                   secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1", service: "service")
    /// 2015-08-30T12:36:00Z.
    static let suiteDate = Date(timeIntervalSince1970: 1_440_938_160)

    static let s3Signer = SigV4Signer(
        credentials: S3Credentials(accessKeyId: "AKIAIOSFODNN7EXAMPLE",
                                   secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1")
    /// 2013-05-24T00:00:00Z.
    static let s3Date = Date(timeIntervalSince1970: 1_369_353_600)
    static let s3Host = ("host", "examplebucket.s3.amazonaws.com")

    @Test("get-vanilla: canonical request, string to sign and Authorization as published")
    func getVanilla() {
        let signed = Self.suiteSigner.sign(
            .init(method: "GET", path: "/", headers: [("Host", "example.amazonaws.com")]), date: Self.suiteDate)
        #expect(signed.canonicalRequest == """
            GET
            /

            host:example.amazonaws.com
            x-amz-date:20150830T123600Z

            host;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        #expect(signed.stringToSign == """
            AWS4-HMAC-SHA256
            20150830T123600Z
            20150830/us-east-1/service/aws4_request
            bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63
            """)
        #expect(signed.authorization == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
            + "aws4_request, SignedHeaders=host;x-amz-date, "
            + "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        #expect(signed.headers.map(\.name) == ["Host", "x-amz-date", "Authorization"])
    }

    @Test("get-vanilla-query-order-key-case: the query is sorted before it is signed")
    func getVanillaQueryOrder() {
        let signed = Self.suiteSigner.sign(
            .init(method: "GET", path: "/", query: [("Param2", "value2"), ("Param1", "value1")],
                  headers: [("Host", "example.amazonaws.com")]),
            date: Self.suiteDate)
        #expect(signed.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[2]
            == "Param1=value1&Param2=value2")
        #expect(signed.signature == "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
    }

    @Test("S3 GET Object with a Range header, as in the S3 guide")
    func s3GetObject() {
        let signed = Self.s3Signer.sign(
            .init(method: "GET", path: "/test.txt", headers: [Self.s3Host, ("Range", "bytes=0-9")]),
            date: Self.s3Date)
        #expect(signed.canonicalRequest == """
            GET
            /test.txt

            host:examplebucket.s3.amazonaws.com
            range:bytes=0-9
            x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            x-amz-date:20130524T000000Z

            host;range;x-amz-content-sha256;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        #expect(signed.stringToSign == """
            AWS4-HMAC-SHA256
            20130524T000000Z
            20130524/us-east-1/s3/aws4_request
            7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972
            """)
        #expect(signed.authorization == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
            + "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test("S3 PUT Object: a key with `$` is encoded once, and the body's SHA-256 is signed")
    func s3PutObject() {
        let body = Array("Welcome to Amazon S3.".utf8)
        let payloadHash = SigV4Signer.sha256Hex(body)
        #expect(payloadHash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        let signed = Self.s3Signer.sign(
            .init(method: "PUT", path: "/test$file.text",
                  headers: [Self.s3Host, ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                            ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
                  payloadHash: payloadHash),
            date: Self.s3Date)
        #expect(signed.canonicalRequest.split(separator: "\n")[1] == "/test%24file.text")
        #expect(signed.stringToSign.hasSuffix("9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d"))
        #expect(signed.authorization.contains(
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"))
        #expect(signed.signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test("S3 GET Bucket (List Objects) with max-keys and prefix, as in the S3 guide")
    func s3ListObjects() {
        let signed = Self.s3Signer.sign(
            .init(method: "GET", path: "/", query: [("prefix", "J"), ("max-keys", "2")], headers: [Self.s3Host]),
            date: Self.s3Date)
        #expect(signed.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test("S3 GET Bucket lifecycle: a parameter without a value is signed as `lifecycle=`")
    func s3Lifecycle() {
        let signed = Self.s3Signer.sign(
            .init(method: "GET", path: "/", query: [("lifecycle", "")], headers: [Self.s3Host]), date: Self.s3Date)
        #expect(signed.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[2] == "lifecycle=")
        #expect(signed.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
    }

    @Test("URI encoding: unreserved characters stay, every other byte is %XX, `/` stays only in a path")
    func uriEncoding() {
        #expect(SigV4Signer.uriEncode("AZaz09-._~", keepSlash: false) == "AZaz09-._~")
        #expect(SigV4Signer.uriEncode("a b+c=d&e*(f)!'", keepSlash: false) == "a%20b%2Bc%3Dd%26e%2A%28f%29%21%27")
        #expect(SigV4Signer.uriEncode("exports/2026/ü.csv", keepSlash: true) == "exports/2026/%C3%BC.csv")
        #expect(SigV4Signer.uriEncode("exports/2026/", keepSlash: false) == "exports%2F2026%2F")
        // S3 does not encode twice: a `%` in a key is itself encoded, once.
        #expect(SigV4Signer.canonicalURI("/bucket/100%.csv") == "/bucket/100%25.csv")
        #expect(SigV4Signer.canonicalURI("") == "/")
        #expect(SigV4Signer.canonicalQuery([("prefix", "a/b c"), ("list-type", "2"), ("a", "2"), ("a", "1")])
            == "a=1&a=2&list-type=2&prefix=a%2Fb%20c")
    }

    @Test("header values are trimmed and inner runs of spaces folded; repeated names are joined by commas")
    func headerCanonicalForm() {
        let signer = SigV4Signer(credentials: S3Credentials(accessKeyId: "AKID", secretAccessKey: "secret"),
                                 region: "eu-west-1")
        let signed = signer.sign(
            .init(method: "GET", path: "/k", headers: [("Host", "h"), ("X-Meta", "  a   b \t c  "), ("x-meta", "d")],
                  payloadHash: SigV4Signer.unsignedPayload),
            date: Self.s3Date)
        let lines = signed.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.contains("x-meta:a b c,d"))
        #expect(lines.last == "UNSIGNED-PAYLOAD")
        #expect(signed.headers.contains { $0.name == "x-amz-content-sha256" && $0.value == "UNSIGNED-PAYLOAD" })
    }

    @Test("a session token is sent and signed as x-amz-security-token")
    func sessionToken() {
        let signer = SigV4Signer(credentials: S3Credentials(accessKeyId: "ASIAEXAMPLE", secretAccessKey: "s",
                                                            sessionToken: "token/with+chars"),
                                 region: "us-east-1")
        let signed = signer.sign(.init(method: "GET", path: "/", headers: [("host", "h")]), date: Self.s3Date)
        #expect(signed.headers.contains { $0.name == "x-amz-security-token" && $0.value == "token/with+chars" })
        #expect(signed.authorization.contains(
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"))
    }

    @Test("x-amz-date is UTC YYYYMMDD'T'HHMMSS'Z', across leap days and before 1970")
    func amzDates() {
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: 0)) == "19700101T000000Z")
        #expect(SigV4Signer.amzDate(Self.suiteDate) == "20150830T123600Z")
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: 951_868_799)) == "20000229T235959Z")
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: -1)) == "19691231T235959Z")
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: 4_102_444_799.9)) == "20991231T235959Z")
    }

    @Test("credentials never print their secret")
    func credentialsRedacted() {
        let credentials = S3Credentials(accessKeyId: "AKIAVISIBLE", secretAccessKey: "SECRETVALUE",
                                        sessionToken: "TOKENVALUE")
        var dumped = ""
        dump(credentials, to: &dumped)
        for text in ["\(credentials)", String(reflecting: credentials), dumped] {
            #expect(text.contains("AKIAVISIBLE"))
            #expect(!text.contains("SECRETVALUE"))
            #expect(!text.contains("TOKENVALUE"))
        }
    }
}
