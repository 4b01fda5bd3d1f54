/// Sticky, reproducible rollout assignment: GrowthBook's hash version 2.
///
/// `bucket = fnv1a32(String(fnv1a32(seed + key))) % 10000 / 10000`, where `fnv1a32` runs over the
/// UTF-16 code units of the string (as JavaScript's `charCodeAt` does) and the inner hash is
/// written in decimal. A key is in treatment when `bucket < percentage / 100`, so raising the
/// percentage never moves a key out of treatment. Anyone can recompute it: see `docs/rollouts.md`.
public enum RolloutBucket {
    /// FNV-1a, 32 bits, over UTF-16 code units.
    public static func fnv1a32(_ string: String) -> UInt32 {
        var hash: UInt32 = 0x811c_9dc5
        for unit in string.utf16 {
            hash ^= UInt32(unit)
            hash = hash &* 0x0100_0193
        }
        return hash
    }

    /// The bucket of `key` in the rollout `seed`, in `[0, 1)` with four decimals.
    public static func bucket(seed: String, key: String) -> Double {
        Double(units(seed: seed, key: key)) / 10_000
    }

    /// The bucket as a whole number of ten-thousandths, `0 ..< 10000`.
    public static func units(seed: String, key: String) -> Int {
        Int(fnv1a32(String(fnv1a32(seed + key))) % 10_000)
    }

    /// Whether `key` is in treatment at `percentage` (0–100, two decimals).
    public static func inTreatment(seed: String, key: String, percentage: Double) -> Bool {
        // Compare in ten-thousandths so 12.34% is exact: bucket < p / 100 ⇔ units < p * 100.
        Double(units(seed: seed, key: key)) < (percentage * 100).rounded()
    }
}
