import BerthKit

/// berthd's signals as uplink events. uplink listens as a client of the bus, like any desktop tool: it imports no
/// other plugin, so a plugin added later is routed by name (`<plugin>.<Signal>`) with no change here.
enum BusEvents {
    static let root = "/org/berth/Berth1"

    /// Argument names of the signals docs/api lists; any other signal's arguments are `arg0`, `arg1`...
    static let argumentNames: [String: [String]] = [
        "Deployed": ["id", "name", "target", "sha256"], "DeployFailed": ["id", "name", "target", "error"],
        "RecordingSaved": ["id", "path", "start_usec", "seconds"], "RecordingStarted": ["path", "start_usec"],
        "JobNew": ["id", "job", "plugin", "operation"], "JobRemoved": ["id", "job", "plugin", "result"],
    ]

    /// The interfaces whose `State` property changes are events: path element → (event plugin, interface).
    static let stateful: [String: String] = [
        "services": "org.berth.Berth1.Service", "instances": "org.berth.Berth1.Instance",
        "plugin": "org.berth.Berth1.Plugin",
    ]

    static func event(_ signal: BusSignalMessage) -> UplinkEvent? {
        guard signal.path == root || signal.path.hasPrefix(root + "/") else { return nil }
        let rest = signal.path.dropFirst(root.count + 1).split(separator: "/", maxSplits: 1).map(String.init)
        let plugin = rest.first ?? "manager"
        if plugin == "uplink" { return nil }  // never our own signals: no loops
        if signal.interface == "org.freedesktop.DBus.Properties" {
            return stateChange(signal, plugin: plugin, child: rest.count > 1 ? rest[1] : nil)
        }
        if signal.interface == "org.freedesktop.DBus.ObjectManager" { return nil }
        var fields: [(String, JSONValue)] = []
        if signal.member == "Heartbeat", signal.arguments.count == 1,
            case .object(let pairs) = JSONValue(signal.arguments[0])
        {
            fields = pairs
        } else {
            let names = argumentNames[signal.member] ?? []
            for (index, value) in signal.arguments.enumerated() {
                fields.append((index < names.count ? names[index] : "arg\(index)", JSONValue(value)))
            }
        }
        if rest.count > 1 { fields.insert(("object", .string(signal.path)), at: 0) }
        return UplinkEvent(plugin: plugin, event: signal.member, fields: fields)
    }

    /// `PropertiesChanged` with a `State` on a service, an instance or a plugin object: `<plugin>.StateChanged`
    /// with the object's name and every property that changed with it.
    private static func stateChange(_ signal: BusSignalMessage, plugin: String, child: String?) -> UplinkEvent? {
        guard signal.member == "PropertiesChanged", let child, let interface = stateful[plugin],
            signal.arguments.first?.string == interface, let changed = signal.arguments.dropFirst().first?.stringKeyed,
            changed["State"] != nil
        else { return nil }
        let name = BusPath.decode(signal.path, prefix: root + "/" + plugin) ?? child
        var fields: [(String, JSONValue)] = [("name", .string(name)), ("object", .string(signal.path))]
        for key in changed.keys.sorted() {
            fields.append((snake(key), JSONValue(changed[key]!)))
        }
        return UplinkEvent(plugin: plugin, event: "StateChanged", fields: fields)
    }

    /// `SubState` → `sub_state`, `MainPID` → `main_pid`.
    static func snake(_ name: String) -> String {
        var out = ""
        let chars = Array(name)
        for (i, c) in chars.enumerated() {
            if c.isUppercase, i > 0, chars[i - 1].isLowercase || (i + 1 < chars.count && chars[i + 1].isLowercase) {
                out += "_"
            }
            out += c.lowercased()
        }
        return out
    }
}
