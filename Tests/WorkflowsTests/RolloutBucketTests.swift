import Testing
@testable import RunlogJSON
@testable import WorkflowModel
@testable import Workflows

@Suite("Rollout bucketing")
struct RolloutBucketTests {
    @Test("FNV-1a 32 matches the published test vectors")
    func fnvVectors() {
        #expect(RolloutBucket.fnv1a32("") == 0x811c_9dc5)
        #expect(RolloutBucket.fnv1a32("a") == 0xe40c_292c)
        #expect(RolloutBucket.fnv1a32("foobar") == 0xbf9c_f968)
    }

    @Test("buckets match GrowthBook's hash v2 (JavaScript reference, UTF-16 code units)",
          arguments: [
            ("", "", 0.2305), ("", "a", 0.0216), ("rollout-1", "user-42", 0.2919),
            ("seed", "é€😀", 0.5904), ("r_0d2f", "inq_ABC123", 0.1401), ("b", "a", 0.665), ("a", "b", 0.6912),
          ])
    func growthBookVectors(seed: String, key: String, expected: Double) {
        #expect(RolloutBucket.bucket(seed: seed, key: key) == expected)
    }

    @Test("over 10,000 keys: share within 1 point of p, sticky, and raising p never leaves treatment")
    func stickyAndMonotonic() {
        let seed = "rollout-7f3a"
        let keys = (0..<10_000).map { "inq_\($0)" }
        var previous = Set<String>()
        for p in [0.0, 5.0, 12.34, 25.0, 50.0, 75.5, 99.99, 100.0] {
            let treated = Set(keys.filter { RolloutBucket.inTreatment(seed: seed, key: $0, percentage: p) })
            let share = Double(treated.count) / Double(keys.count) * 100
            #expect(abs(share - p) <= 1.0, "p=\(p) share=\(share)")
            #expect(previous.isSubset(of: treated), "raising to \(p)% moved keys out of treatment")
            // Sticky: the same inputs give the same answer.
            #expect(treated == Set(keys.filter { RolloutBucket.inTreatment(seed: seed, key: $0, percentage: p) }))
            previous = treated
        }
        #expect(previous.count == keys.count) // 100%: everyone
        #expect(!keys.contains { RolloutBucket.inTreatment(seed: seed, key: $0, percentage: 0) })
        // Another seed assigns independently.
        let a = Set(keys.filter { RolloutBucket.inTreatment(seed: "other", key: $0, percentage: 50) })
        let b = Set(keys.filter { RolloutBucket.inTreatment(seed: seed, key: $0, percentage: 50) })
        #expect(a != b)
    }
}
