import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// An element of an S3 XML answer: its name without namespace prefix, its text and its child elements.
///
/// S3's answers are small documents of nested elements with text (a list page is ~300 bytes per object), so they are
/// read whole into this tree with Foundation's `XMLParser` and then looked up by name.
final class XMLNode {
    let name: String
    var text = ""
    var children: [XMLNode] = []

    init(name: String) { self.name = name }

    /// The first child element called `name`.
    func child(_ name: String) -> XMLNode? { children.first { $0.name == name } }

    /// The text of the first child element called `name`.
    func text(_ name: String) -> String? { child(name)?.text }

    /// Every child element called `name`.
    func all(_ name: String) -> [XMLNode] { children.filter { $0.name == name } }

    /// Parses `bytes`; `nil` when they are not well-formed XML.
    static func parse(_ bytes: [UInt8]) -> XMLNode? {
        let builder = TreeBuilder()
        let parser = XMLParser(data: Data(bytes))
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else { return nil }
        return root
    }
}

private final class TreeBuilder: NSObject, XMLParserDelegate {
    var root: XMLNode?
    var open: [XMLNode] = []

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        let local = elementName.split(separator: ":").last.map(String.init) ?? elementName
        let node = XMLNode(name: local)
        if let parent = open.last { parent.children.append(node) } else if root == nil { root = node }
        open.append(node)
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?) {
        _ = open.popLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        open.last?.text += string
    }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        open.last?.text += String(decoding: CDATABlock, as: UTF8.self)
    }
}

/// One page of a ListObjectsV2 answer.
struct ListPage {
    var objects: [S3Object]
    var isTruncated: Bool
    var nextContinuationToken: String?

    /// Reads `<ListBucketResult>`; `nil` when the body is not one.
    init?(xml bytes: [UInt8]) {
        guard let root = XMLNode.parse(bytes), root.name == "ListBucketResult" else { return nil }
        var objects: [S3Object] = []
        for entry in root.all("Contents") {
            guard let key = entry.text("Key") else { return nil }
            objects.append(S3Object(key: key, size: entry.text("Size").flatMap { Int($0) } ?? 0,
                                    lastModified: entry.text("LastModified") ?? "",
                                    eTag: entry.text("ETag") ?? ""))
        }
        self.objects = objects
        isTruncated = root.text("IsTruncated") == "true"
        nextContinuationToken = root.text("NextContinuationToken").flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// The parts of an `<Error>` body.
struct ErrorBody {
    var code: String
    var message: String
    var requestId: String?

    /// Reads `<Error>` (S3's form; `<ErrorResponse><Error>` is accepted too); `nil` when the body is not one.
    init?(xml bytes: [UInt8]) {
        guard var root = XMLNode.parse(bytes) else { return nil }
        if root.name == "ErrorResponse", let inner = root.child("Error") { root = inner }
        guard root.name == "Error", let code = root.text("Code"), !code.isEmpty else { return nil }
        self.code = code
        message = root.text("Message") ?? ""
        requestId = root.text("RequestId") ?? root.text("RequestID")
    }
}
