public import EventLog

extension LMDBEventStore {
    /// The selected events from `position` on, at most `limit` of them, examining at most
    /// four pages' worth of positions; `next` is where the following page starts.
    public func readPage(from position: UInt64, filter: EventFilter, limit: Int) throws(EventStoreError) -> LogPage {
        var events: [RecordedEvent] = []
        let reached = try scan(from: position, direction: .forward, filter: filter, maxExamined: 4 * limit) { view in
            events.append(view.decode())
            return events.count < limit
        }
        return LogPage(events: events, next: reached)
    }

    /// Waits until the committed head reaches `position`: woken by this process's writer, or,
    /// open read-only while another process writes, by looking again every `pollInterval`.
    /// False when the store closed.
    public func waitForCommit(reaching position: UInt64) async throws -> Bool {
        if writer != nil { return try await notifier.wait(for: position) }
        let head: UInt64
        do {
            head = try self.head().position
        } catch where error.code == .closed {
            return false
        }
        if head < position { try await Task.sleep(for: options.pollInterval) }
        return true
    }
}
