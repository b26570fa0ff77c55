import CBerthShim
import Glibc

/// Object paths: validation and the escaping of names into path elements (`sd_bus_path_encode`).
public enum BusPath {
    /// `prefix/<escaped name>`: any string becomes a valid path element (`web-1` → `web_2d1`).
    public static func encode(_ prefix: String, _ name: String) -> String {
        var result: UnsafeMutablePointer<CChar>? = nil
        guard sd_bus_path_encode(prefix, name, &result) >= 0, let result else { return prefix + "/_" }
        defer { free(result) }
        return String(cString: result)
    }

    /// The name encoded in the last element of `path` under `prefix`, or nil.
    public static func decode(_ path: String, prefix: String) -> String? {
        var result: UnsafeMutablePointer<CChar>? = nil
        guard sd_bus_path_decode(path, prefix, &result) > 0, let result else { return nil }
        defer { free(result) }
        return String(cString: result)
    }

    public static func isValid(_ path: String) -> Bool { sd_bus_object_path_is_valid(path) != 0 }
}
