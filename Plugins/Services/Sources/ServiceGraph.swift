import BerthKit

/// The dependency graph of the services (`after:` and `requires:`), systemd's way: both order starts (a service
/// starts once the ones it waits for are ready), `requires` also pulls the required service in and stops the
/// dependent with it. Stops go in reverse order.
enum ServiceGraph {
    /// Every `after`/`requires` name must be a defined service and the graph must have no cycle; otherwise
    /// `InvalidConfig` at the line of the key that names the unknown service or closes the cycle
    /// (`berth.yaml:9: services.units.a.after: "a" -> "b" -> "a" is a cycle ...`).
    static func check(_ definitions: [String: ServiceDefinition]) throws {
        for name in definitions.keys.sorted() {
            let definition = definitions[name]!
            for (key, names) in [("requires", definition.requires), ("after", definition.after)] {
                for other in names where definitions[other] == nil {
                    throw definition.origin.error(
                        key, "\"\(other)\" is not a defined service (service \"\(name)\" cannot wait for it)")
                }
            }
        }
        var done: Set<String> = []
        var path: [String] = []
        func visit(_ name: String) throws {
            path.append(name)
            let definition = definitions[name]!
            for other in definition.dependencies where !done.contains(other) {
                if let start = path.firstIndex(of: other) {
                    // Told from the service whose key closes the cycle: "b" -> "a" -> "c" -> "b".
                    let cycle = ([name] + path[start..<(path.count - 1)] + [name]).map { "\"\($0)\"" }
                        .joined(separator: " -> ")
                    let key = definition.requires.contains(other) ? "requires" : "after"
                    throw definition.origin.error(
                        key, "\(cycle) is a cycle: services cannot wait for each other (remove one after/requires)")
                }
                try visit(other)
            }
            path.removeLast()
            done.insert(name)
        }
        for name in definitions.keys.sorted() where !done.contains(name) { try visit(name) }
    }

    /// How deep each service sits: 0 without dependencies, else one more than its deepest dependency. Starting
    /// level by level upwards, or stopping downwards, respects every edge. Unknown names count as absent.
    static func depths(_ definitions: [String: ServiceDefinition]) -> [String: Int] {
        var depth: [String: Int] = [:]
        func measure(_ name: String, _ seen: Set<String>) -> Int {
            if let known = depth[name] { return known }
            guard let definition = definitions[name], !seen.contains(name) else { return 0 }
            let deps = definition.dependencies.filter { definitions[$0] != nil }
            let value = deps.map { measure($0, seen.union([name])) + 1 }.max() ?? 0
            depth[name] = value
            return value
        }
        for name in definitions.keys { _ = measure(name, []) }
        return depth
    }

    /// The services that require `name` directly.
    static func requirers(of name: String, in definitions: [String: ServiceDefinition]) -> [String] {
        definitions.values.filter { $0.requires.contains(name) }.map(\.name).sorted()
    }

    /// Groups `names` into stop levels: services that wait for others first (deepest first), so nothing stops
    /// before a service that waits for it.
    static func stopLevels(_ names: [String], _ definitions: [String: ServiceDefinition]) -> [[String]] {
        let depth = depths(definitions)
        let byDepth = Dictionary(grouping: names, by: { depth[$0] ?? 0 })
        return byDepth.keys.sorted(by: >).map { byDepth[$0]!.sorted() }
    }
}
