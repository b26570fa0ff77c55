// Layering of configuration files: berth.yaml first, then each conf.d/*.yaml in order.

extension ConfigNode {
    /// `overlay` laid over `base`. Two mappings merge key by key, recursively: a key of both takes the merge of
    /// the two values (at the overlay's key mark), a key of the base alone keeps its place and marks, a key of the
    /// overlay alone is appended. Anything else — a scalar, a list, null, or a mapping over a non-mapping — is
    /// replaced by the overlay whole, so lists are never concatenated. A nil side gives the other.
    public static func merge(_ base: ConfigNode?, _ overlay: ConfigNode?) -> ConfigNode? {
        guard let overlay else { return base }
        guard case .mapping(let baseEntries, _) = base, case .mapping(let overlayEntries, let mark) = overlay else {
            return overlay
        }
        var merged = baseEntries
        var positions: [String: Int] = [:]
        for (position, entry) in merged.enumerated() { positions[entry.key] = position }
        for entry in overlayEntries {
            if let position = positions[entry.key] {
                let value = merge(merged[position].value, entry.value) ?? entry.value
                merged[position] = ConfigEntry(key: entry.key, keyMark: entry.keyMark, value: value)
            } else {
                positions[entry.key] = merged.count
                merged.append(entry)
            }
        }
        return .mapping(merged, mark)
    }

    /// Several layers merged in order (for berth.yaml followed by conf.d/*.yaml); nil when all are nil.
    public static func merge(_ layers: [ConfigNode?]) -> ConfigNode? {
        layers.reduce(nil) { merge($0, $1) }
    }
}
