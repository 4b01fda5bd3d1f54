public import EventLog
public import WorkflowModel

extension StorageCause {
    /// The domain's reading of a store's error code.
    public init(_ code: EventStoreError.Code) {
        switch code {
        case .mapFull: self = .full
        case .readOnly: self = .readOnly
        case .closed: self = .shuttingDown
        case .corrupted: self = .corrupted
        default: self = .unavailable
        }
    }
}

extension WorkflowError {
    /// The store failed while doing `what`: `storage`, keeping what the store said as the cause.
    public init(storage error: EventStoreError, _ what: String) {
        self.init(.storage, "\(what): \(error.message)")
        cause = StorageCause(error.code)
    }

    /// The error of a failed append: `conflict` when a stream was not at its expected version
    /// (another command got there first), `tooLarge` or `invalid` when the input broke a limit of
    /// the store, `storage` otherwise (the store cannot serve: worth retrying later).
    public init(appending error: EventStoreError) {
        switch error.code {
        case .wrongExpectedVersion:
            self.init(.conflict, "changed concurrently: \(error.message)")
        case .payloadTooLarge:
            self.init(.tooLarge, error.message, issues: [FieldIssue(
                field: error.field ?? "payload", value: error.value,
                rule: "must fit the store's limit of 1 MiB per event (as recorded, after sealing)")])
        case .invalidArgument:
            self.init(.invalid, error.message,
                      issues: [FieldIssue(field: error.field ?? "payload", value: error.value, rule: error.message)])
        default:
            self.init(.storage, error.message)
            cause = StorageCause(error.code)
        }
    }
}
