public import EventLog
public import Foundation


extension LMDBEventStore {
    /// Events are read in chunks, one read transaction each, so a long scan never pins old pages.
    static let scanChunk = 8192

    /// Reads one stream from `version` (inclusive): forward from version 1 by default, backward
    /// from the stream's last version by default.
    public func readEvents(
        of stream: String,
        from version: UInt64?,
        direction: ReadDirection,
        limit: Int
    ) throws(EventStoreError) -> [RecordedEvent] {
        try EventLimits.validateStreamName(stream)
        guard limit > 0 else { return [] }
        return try read("read stream \(stream)") { txn in
            let prefix = Keys.streamPrefix(stream)
            let cursor = try txn.cursor(dbs.streams)
            var entry: LMDBCursor.Entry?
            switch direction {
            case .forward:
                entry = try Keys.stream(stream, version: max(1, version ?? 1)).withUnsafeBytes {
                    try cursor.seek(atLeast: $0)
                }
            case .backward:
                let start = version ?? .max
                if start == .max {
                    entry = try Keys.stream(stream, version: .max).withUnsafeBytes { try cursor.seek(atLeast: $0) }
                    if entry.map({ k, _ in !prefix.withUnsafeBytes { k.hasPrefix($0) } }) ?? true {
                        entry = entry == nil ? try cursor.last() : try cursor.previous()
                    }
                } else {
                    entry = try Keys.stream(stream, version: start + 1).withUnsafeBytes {
                        try cursor.seek(atLeast: $0)
                    }
                    entry = entry == nil ? try cursor.last() : try cursor.previous()
                }
            }
            var events: [RecordedEvent] = []
            while let (key, value) = entry, events.count < limit {
                guard prefix.withUnsafeBytes({ key.hasPrefix($0) }), key.count == prefix.count + 8,
                      let position = Keys.uint64(value)
                else { break }
                guard let view = try envelope(at: position, in: txn) else {
                    throw EventStoreError(.corrupted, "stream index points at missing position \(position)")
                }
                events.append(view.decode())
                entry = direction == .forward ? try cursor.next() : try cursor.previous()
            }
            return events
        }
    }

    /// The current version of `stream` (0 when it does not exist).
    public func streamVersion(_ stream: String) throws(EventStoreError) -> UInt64 {
        try EventLimits.validateStreamName(stream)
        return try read("read stream \(stream)") { txn in
            try Array(stream.utf8).withUnsafeBytes { try txn.get(dbs.streamHeads, $0) }.flatMap(Keys.uint64) ?? 0
        }
    }

    /// How many streams have a name that begins with `prefix` (a scan of the stream index over
    /// those names only).
    public func streamCount(prefix: String) throws(EventStoreError) -> Int {
        try read("count streams \(prefix)…") { txn in
            let prefix = Array(prefix.utf8)
            let cursor = try txn.cursor(dbs.streamHeads)
            var count = 0
            try prefix.withUnsafeBytes { prefix in
                // LMDB takes no empty key; every name begins with the empty prefix.
                var entry = prefix.isEmpty ? try cursor.first() : try cursor.seek(atLeast: prefix)
                while let (key, _) = entry, key.hasPrefix(prefix) {
                    count += 1
                    entry = try cursor.next()
                }
            }
            return count
        }
    }

    /// Reads the whole log from `position` (inclusive): forward from 1 by default, backward from
    /// the head by default; only events that `filter` selects count towards `limit`.
    public func readLog(
        from position: UInt64?,
        direction: ReadDirection,
        filter: EventFilter,
        limit: Int
    ) throws(EventStoreError) -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        guard limit > 0 else { return events }
        let start = position ?? (direction == .forward ? 1 : .max)
        _ = try scan(from: start, direction: direction, filter: filter) { view in
            events.append(view.decode())
            return events.count < limit
        }
        return events
    }

    /// Calls `body` with a view of every stored envelope from `position` (inclusive), without
    /// copying it out of the map: the fastest replay, for projections that decode payloads
    /// themselves. The view and its buffers are valid only during the call. An error `body`
    /// throws ends the scan and is rethrown as it is.
    public func forEachView(from position: UInt64, _ body: (EventView) throws -> Bool) throws {
        var bodyError: (any Error)?
        try scan(from: position, direction: .forward, filter: .all) { view in
            do {
                return try body(EventView(view: view))
            } catch {
                bodyError = error
                return false
            }
        }
        if let bodyError { throw bodyError }
    }

    /// Calls `body` with every event from `position` (inclusive) in log order; `body` returns
    /// false to stop. The replay path: one copy out of the map per event, read in chunks. An
    /// error `body` throws ends the scan and is rethrown as it is; store failures throw
    /// `EventStoreError`.
    public func forEach(
        from position: UInt64,
        filter: EventFilter,
        _ body: (RecordedEvent) throws -> Bool
    ) throws {
        var bodyError: (any Error)?
        try scan(from: position, direction: .forward, filter: filter) { view in
            do {
                return try body(view.decode())
            } catch {
                bodyError = error
                return false
            }
        }
        if let bodyError { throw bodyError }
    }

    /// Visits envelopes in order from `position`, calling `body` for those `filter` selects.
    /// Returns the position after the last one examined (forward) or before it (backward),
    /// so a caller can resume past events the filter skipped.
    @discardableResult
    func scan(
        from position: UInt64,
        direction: ReadDirection,
        filter: EventFilter,
        maxExamined: Int = .max,
        _ body: (Envelope.View) throws -> Bool
    ) throws(EventStoreError) -> UInt64 {
        let compiled = filter.isAll ? nil : EventFilter.Compiled(filter)
        var next = position
        var examined = 0
        var stopped = false
        while !stopped && examined < maxExamined {
            if direction == .forward && next == 0 { next = 1 }
            if direction == .backward && next == 0 { break }
            let startOfChunk = next
            try Self.wrap("read the log") {
                try env.read { txn in
                    let cursor = try txn.cursor(dbs.events)
                    var entry = try Keys.withUInt64(next) { try cursor.seek(atLeast: $0) }
                    if direction == .backward {
                        if let (key, _) = entry, Keys.uint64(key) == next {
                            // exactly there
                        } else {
                            entry = entry == nil ? try cursor.last() : try cursor.previous()
                        }
                    }
                    var inChunk = 0
                    while let (key, value) = entry {
                        guard let p = Keys.uint64(key) else {
                            throw EventStoreError(.corrupted, "the events database holds a key that is not a position")
                        }
                        let view = try Envelope.View(value)
                        examined += 1
                        inChunk += 1
                        next = direction == .forward ? p + 1 : p - 1
                        if compiled?.matches(view) ?? true {
                            if try !body(view) {
                                stopped = true
                                return
                            }
                        }
                        if inChunk >= Self.scanChunk || examined >= maxExamined || (direction == .backward && p == 1) {
                            return
                        }
                        entry = direction == .forward ? try cursor.next() : try cursor.previous()
                    }
                    stopped = true // end of the log
                }
            }
            if next == startOfChunk { break }
        }
        return next
    }

    /// The event at `position`, or nil.
    public func event(at position: UInt64) throws(EventStoreError) -> RecordedEvent? {
        try read("read position \(position)") { txn in try envelope(at: position, in: txn)?.decode() }
    }

    /// The position of the event with `id`, or nil.
    public func position(ofEventId id: UUID) throws(EventStoreError) -> UInt64? {
        try read("look up event \(id)") { txn in
            try withUnsafeBytes(of: id.uuid) { try txn.get(dbs.eventIds, $0) }.flatMap(Keys.uint64)
        }
    }

    /// The head of the log as it was at `timestamp` (UTC ms): the last event recorded at or before
    /// it; `LogHead.empty` when the log had no event yet.
    public func head(asOf timestamp: Int64) throws(EventStoreError) -> LogHead {
        try read("find the position at \(timestamp)") { txn in
            let head = try LogHead.read(txn, dbs)
            // recorded-at never decreases, so the positions recorded by `timestamp` are a prefix.
            var low: UInt64 = 0
            var high = head.position
            while low < high {
                let mid = low + (high - low + 1) / 2
                guard let view = try envelope(at: mid, in: txn) else {
                    throw EventStoreError(.corrupted, "position \(mid) is missing from the log")
                }
                if view.recordedAt <= timestamp { low = mid } else { high = mid - 1 }
            }
            guard low > 0, let view = try envelope(at: low, in: txn) else { return .empty }
            return LogHead(position: low, hash: view.hash, recordedAt: view.recordedAt)
        }
    }

    // MARK: Statistics


    public func stats() throws(EventStoreError) -> LogStats {
        let (count, streams, head) = try read("read statistics") { txn in
            (try txn.count(dbs.events), try txn.count(dbs.streamHeads), try LogHead.read(txn, dbs))
        }
        let (info, stat) = try Self.wrap("read statistics") { (try env.info(), try env.stat()) }
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: directory + "/data.mdb")[.size] as? Int) ?? 0
        return LogStats(
            eventCount: UInt64(count), streamCount: streams, head: head, fileBytes: fileBytes,
            usedBytes: (Int(info.me_last_pgno) + 1) * Int(stat.ms_psize), mapBytes: info.me_mapsize
        )
    }
}

