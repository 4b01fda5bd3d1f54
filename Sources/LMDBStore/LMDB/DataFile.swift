import EventLog
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks of an LMDB data file made without LMDB, so that a damaged file ends with an error
/// instead of a signal.
///
/// LMDB maps the file and trusts it: a file shorter than its last committed page faults with
/// SIGBUS when that page is read, and a page whose header was zeroed or overwritten trips an
/// assertion that aborts the process. `inspect` reads the two meta pages with `pread` and checks
/// the file's size against the newest one before LMDB maps anything; `checkPages` walks every
/// B-tree page of one committed snapshot and checks its header, its node offsets and the page
/// numbers it points to before LMDB follows them.
enum DataFile {
    static let name = "data.mdb"

    /// What the newest meta page says.
    struct Meta: Sendable, Hashable {
        var pageSize: Int
        var lastPage: UInt64
        var txnid: UInt64
        var freeRoot: UInt64
        var mainRoot: UInt64
    }

    // The on-disk layout of LMDB 0.9 (mdb.c) on a 64-bit machine.
    static let pageHeaderSize = 16
    static let metaBytes = 152
    static let magic: UInt32 = 0xBEEF_C0DE
    static let dataVersion: UInt32 = 1
    static let invalidPage = UInt64.max
    static let branchFlag: UInt16 = 0x01
    static let leafFlag: UInt16 = 0x02
    static let overflowFlag: UInt16 = 0x04
    static let metaFlag: UInt16 = 0x08
    static let leaf2Flag: UInt16 = 0x20
    static let bigDataNode: UInt16 = 0x01
    static let subDatabaseNode: UInt16 = 0x02
    static let nodeHeaderSize = 8
    static let databaseRecordSize = 48
    static let maxDepth = 32

    /// A damaged data file: the error names the file and what is wrong with it.
    static func damaged(_ path: String, _ what: String) -> EventStoreError {
        EventStoreError(
            .corrupted,
            "\(path) is damaged: \(what); the log cannot be read safely. Restore the data directory from a "
                + "backup (docs/operations.md, \"Backup\") and run `runlog log verify` on it"
        )
    }

    /// Parses one meta page, or says why it is not one.
    static func parseMeta(_ bytes: UnsafeRawBufferPointer) -> Result<Meta, MetaProblem> {
        guard bytes.count >= metaBytes else { return .failure(MetaProblem("is cut short")) }
        func u16(_ at: Int) -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        guard u16(10) & metaFlag != 0 else {
            return .failure(MetaProblem("is not a meta page (zeroed or overwritten)"))
        }
        guard u32(16) == magic else { return .failure(MetaProblem("does not carry LMDB's magic number")) }
        guard u32(20) == dataVersion else {
            return .failure(MetaProblem("is LMDB file format version \(u32(20)), not \(dataVersion)"))
        }
        let pageSize = Int(u32(40))
        guard (512...65_536).contains(pageSize), pageSize & (pageSize - 1) == 0 else {
            return .failure(MetaProblem("names an impossible page size (\(pageSize))"))
        }
        return .success(Meta(pageSize: pageSize, lastPage: u64(136), txnid: u64(144), freeRoot: u64(80),
                             mainRoot: u64(128)))
    }

    struct MetaProblem: Error {
        let text: String
        init(_ text: String) { self.text = text }
    }

    /// Reads the meta pages of the data file at `path` and checks the file's size against the
    /// newest: nil when there is no file; throws `corrupted` when it is empty, cut short, or its
    /// meta pages are not valid.
    static func inspect(path: String) throws(EventStoreError) -> Meta? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw EventStoreError(.storage, "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        let size = Int(info.st_size)
        guard size > 0 else {
            throw EventStoreError(
                .corrupted,
                "\(path) is empty (0 bytes): the log it held is gone. Restore the data directory from a backup "
                    + "(docs/operations.md, \"Backup\"); to start a new, empty log in this directory instead, "
                    + "remove \(name) and lock.mdb"
            )
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw EventStoreError(.storage, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: metaBytes)
        func readMeta(at offset: Int, index: Int) throws(EventStoreError) -> Result<Meta, MetaProblem> {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, metaBytes, off_t(offset)) }
            guard n >= 0 else {
                throw EventStoreError(.storage, "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            guard n == metaBytes else {
                throw damaged(path, "it is \(size) bytes, too short to hold meta page \(index) "
                              + "(the file was cut short)")
            }
            return buffer.withUnsafeBytes { parseMeta($0) }
        }
        let first = try readMeta(at: 0, index: 0)
        // The second meta page is one page in; the first names the page size.
        let pageSize = (try? first.get().pageSize) ?? Int(getpagesize())
        let second = try readMeta(at: pageSize, index: 1)
        let newest: Meta
        switch (first, second) {
        case (.success(let a), .success(let b)):
            guard a.pageSize == b.pageSize else {
                throw damaged(path, "its meta pages name different page sizes (\(a.pageSize) and \(b.pageSize))")
            }
            newest = b.txnid > a.txnid ? b : a
        case (.failure(let problem), _):
            throw damaged(path, "meta page 0 \(problem.text)")
        case (_, .failure(let problem)):
            throw damaged(path, "meta page 1 \(problem.text)")
        }
        let needed = (newest.lastPage &+ 1).multipliedReportingOverflow(by: UInt64(newest.pageSize))
        guard !needed.overflow, newest.lastPage < UInt64(Int.max / newest.pageSize) else {
            throw damaged(path, "its newest meta page names an impossible last page (\(newest.lastPage))")
        }
        // The size now, after the meta pages were read: a live writer may have committed since the
        // first look, growing the file and then writing a newer meta page (LMDB writes a commit's
        // pages before its meta page and never shrinks the file).
        var current = stat()
        let sizeNow = fstat(fd, &current) == 0 ? max(size, Int(current.st_size)) : size
        guard UInt64(sizeNow) >= needed.partialValue else {
            throw damaged(
                path,
                "it is \(sizeNow) bytes, but its last commit (transaction \(newest.txnid)) uses pages up to "
                    + "\(newest.lastPage), \(needed.partialValue) bytes: the file was cut short"
            )
        }
        return newest
    }

    /// The outcome of a page walk.
    enum Walk {
        /// Every page reachable from the snapshot checked out; the number of pages.
        case checked(pages: Int)
        /// Neither meta page holds the snapshot any more (a writer committed twice since): try
        /// again in a newer read transaction.
        case snapshotGone
    }

    /// Walks every page reachable from the meta page of transaction `txnid` (which a read
    /// transaction of the caller must keep alive) and checks each one LMDB would follow.
    static func checkPages(path: String, txnid: UInt64) throws(EventStoreError) -> Walk {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw EventStoreError(.storage, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw EventStoreError(.storage, "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        let size = Int(info.st_size)
        guard size >= 2 * 512 else { throw damaged(path, "it is \(size) bytes, too short to hold its meta pages") }
        guard let map = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else {
            throw EventStoreError(.storage, "cannot map \(path): \(String(cString: strerror(errno)))")
        }
        defer { munmap(map, size) }
        let file = UnsafeRawBufferPointer(start: map, count: size)
        guard case .success(let first) = parseMeta(UnsafeRawBufferPointer(rebasing: file[0..<metaBytes])) else {
            throw damaged(path, "meta page 0 is not valid")
        }
        let pageSize = first.pageSize
        guard size >= 2 * pageSize,
              case .success(let second) = parseMeta(
                  UnsafeRawBufferPointer(rebasing: file[pageSize..<pageSize + metaBytes]))
        else {
            throw damaged(path, "meta page 1 is not valid")
        }
        guard let meta = [first, second].first(where: { $0.txnid == txnid }) else { return .snapshotGone }
        guard meta.lastPage < UInt64(size / pageSize) else {
            throw damaged(path, "it is \(size) bytes, but transaction \(meta.txnid) uses pages up to \(meta.lastPage)")
        }
        var walker = PageWalker(path: path, file: file, pageSize: pageSize, lastPage: meta.lastPage)
        try walker.walk(root: meta.freeRoot, tree: "the free-page list", isFreeList: true)
        try walker.walk(root: meta.mainRoot, tree: "the table of databases", isMain: true)
        return .checked(pages: walker.pages)
    }
}

/// A depth-first walk of the B-trees of one snapshot, over a read-only map of the file.
private struct PageWalker {
    let path: String
    let file: UnsafeRawBufferPointer
    let pageSize: Int
    let lastPage: UInt64
    var seen: [UInt64]
    var pages = 0

    init(path: String, file: UnsafeRawBufferPointer, pageSize: Int, lastPage: UInt64) {
        self.path = path
        self.file = file
        self.pageSize = pageSize
        self.lastPage = lastPage
        seen = [UInt64](repeating: 0, count: Int(lastPage / 64) + 1)
        seen[0] = 0b11  // the meta pages
    }

    func u16(_ page: Int, _ at: Int) -> UInt16 {
        UInt16(littleEndian: file.loadUnaligned(fromByteOffset: page + at, as: UInt16.self))
    }

    func u64(_ page: Int, _ at: Int) -> UInt64 {
        UInt64(littleEndian: file.loadUnaligned(fromByteOffset: page + at, as: UInt64.self))
    }

    func damaged(_ what: String) -> EventStoreError { DataFile.damaged(path, what) }

    /// Marks `count` pages from `pgno` as reached; each page of a snapshot is reached once.
    mutating func claim(_ pgno: UInt64, count: UInt64 = 1, tree: String) throws(EventStoreError) {
        guard pgno >= 2, count >= 1, pgno <= lastPage, count - 1 <= lastPage - pgno else {
            throw damaged("\(tree) points to page \(pgno)\(count > 1 ? " (\(count) pages)" : ""), "
                          + "outside the file's pages 2…\(lastPage)")
        }
        for p in pgno..<(pgno + count) {
            let (word, bit) = (Int(p / 64), UInt64(1) << (p % 64))
            guard seen[word] & bit == 0 else { throw damaged("page \(p) of \(tree) is reached twice") }
            seen[word] |= bit
        }
        pages += Int(count)
    }

    mutating func walk(root: UInt64, tree: String, isFreeList: Bool = false, isMain: Bool = false)
        throws(EventStoreError) {
        guard root != DataFile.invalidPage else { return }
        try visit(root, tree: tree, depth: 0, isFreeList: isFreeList, isMain: isMain)
    }

    private mutating func visit(_ pgno: UInt64, tree: String, depth: Int, isFreeList: Bool, isMain: Bool)
        throws(EventStoreError) {
        guard depth < DataFile.maxDepth else { throw damaged("\(tree) is deeper than \(DataFile.maxDepth) levels") }
        try claim(pgno, tree: tree)
        let page = Int(pgno) * pageSize
        let storedNumber = u64(page, 0)
        guard storedNumber == pgno else {
            throw damaged("page \(pgno) of \(tree) is not what it should be (its header names page "
                          + "\(storedNumber); the page was zeroed or overwritten)")
        }
        let flags = u16(page, 10) & (DataFile.branchFlag | DataFile.leafFlag | DataFile.overflowFlag
                                     | DataFile.metaFlag | DataFile.leaf2Flag)
        let lower = Int(u16(page, 12))
        let upper = Int(u16(page, 14))
        guard lower >= DataFile.pageHeaderSize, lower <= upper, upper <= pageSize,
              (lower - DataFile.pageHeaderSize) % 2 == 0 else {
            throw damaged("page \(pgno) of \(tree) has impossible bounds (lower \(lower), upper \(upper))")
        }
        let count = (lower - DataFile.pageHeaderSize) / 2
        switch flags {
        case DataFile.branchFlag:
            guard count >= (isFreeList ? 1 : 2) else {
                throw damaged("branch page \(pgno) of \(tree) has \(count) entries")
            }
            for i in 0..<count {
                let node = try nodeOffset(page: page, pgno: pgno, index: i, upper: upper, tree: tree)
                let ksize = Int(u16(node, 6))
                guard node + DataFile.nodeHeaderSize + ksize <= page + pageSize else {
                    throw damaged("entry \(i) of branch page \(pgno) of \(tree) runs past the page")
                }
                let child = UInt64(u16(node, 0)) | UInt64(u16(node, 2)) << 16 | UInt64(u16(node, 4)) << 32
                try visit(child, tree: tree, depth: depth + 1, isFreeList: isFreeList, isMain: isMain)
            }
        case DataFile.leafFlag:
            for i in 0..<count {
                let node = try nodeOffset(page: page, pgno: pgno, index: i, upper: upper, tree: tree)
                let dataSize = Int(u16(node, 0)) | Int(u16(node, 2)) << 16
                let nodeFlags = u16(node, 4)
                let ksize = Int(u16(node, 6))
                let data = node + DataFile.nodeHeaderSize + ksize
                if nodeFlags & DataFile.bigDataNode != 0 {
                    guard data + 8 <= page + pageSize else {
                        throw damaged("entry \(i) of leaf page \(pgno) of \(tree) runs past the page")
                    }
                    try overflow(u64(data, 0), dataSize: dataSize, tree: tree)
                    continue
                }
                guard data + dataSize <= page + pageSize else {
                    throw damaged("entry \(i) of leaf page \(pgno) of \(tree) runs past the page")
                }
                if isMain && nodeFlags & DataFile.subDatabaseNode != 0 {
                    guard dataSize == DataFile.databaseRecordSize else {
                        throw damaged("the record of a database on page \(pgno) is \(dataSize) bytes")
                    }
                    let name = String(decoding: UnsafeRawBufferPointer(rebasing: file[(node + 8)..<(node + 8 + ksize)]),
                                      as: UTF8.self)
                    try walk(root: u64(data, 40), tree: "the \(name) database")
                }
            }
        case DataFile.leafFlag | DataFile.leaf2Flag:
            break  // fixed-size keys only, no nodes to follow (Runlog has no such database)
        default:
            throw damaged("page \(pgno) of \(tree) is neither a branch nor a leaf page (flags "
                          + "0x\(String(u16(page, 10), radix: 16)); the page was zeroed or overwritten)")
        }
    }

    private func nodeOffset(page: Int, pgno: UInt64, index: Int, upper: Int, tree: String)
        throws(EventStoreError) -> Int {
        let offset = Int(u16(page, DataFile.pageHeaderSize + 2 * index))
        guard offset >= upper, offset % 2 == 0, offset + DataFile.nodeHeaderSize <= pageSize else {
            throw damaged("entry \(index) of page \(pgno) of \(tree) is at an impossible offset (\(offset))")
        }
        return page + offset
    }

    private mutating func overflow(_ pgno: UInt64, dataSize: Int, tree: String) throws(EventStoreError) {
        guard pgno >= 2, pgno <= lastPage else {
            throw damaged("\(tree) points to overflow page \(pgno), outside the file's pages 2…\(lastPage)")
        }
        let page = Int(pgno) * pageSize
        let storedNumber = u64(page, 0)
        let count = UInt64(UInt32(littleEndian: file.loadUnaligned(fromByteOffset: page + 12, as: UInt32.self)))
        guard storedNumber == pgno, u16(page, 10) & DataFile.overflowFlag != 0,
              Int(count) * pageSize >= dataSize + DataFile.pageHeaderSize else {
            throw damaged("overflow page \(pgno) of \(tree) is not what it should be (the page was zeroed or "
                          + "overwritten)")
        }
        try claim(pgno, count: count, tree: tree)
    }
}
