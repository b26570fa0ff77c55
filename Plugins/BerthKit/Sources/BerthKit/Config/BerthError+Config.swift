extension BerthError {
    /// A configuration error in berth's one format, `FILE:LINE: KEY.PATH: problem` (no path part at the root).
    ///
    /// Plugins use it to report a value that parsed but makes no sense, at the line of that value:
    /// `.invalidConfig(at: node.mark, path: "services.laser.exec", "\"/usr/bin/pyhton3\" does not exist")`.
    public static func invalidConfig(at mark: ConfigMark, path: String, _ problem: String) -> BerthError {
        .invalidConfig(path.isEmpty ? "\(mark): \(problem)" : "\(mark): \(path): \(problem)")
    }
}
