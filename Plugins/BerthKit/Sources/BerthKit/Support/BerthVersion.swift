/// berth's version, shown by `berthd --version`, `berthctl --version` and the Manager's `Version` property.
public enum BerthVersion {
    public static let string = "0.1.0"
    /// The D-Bus API version (`ApiVersion`): bumped when a published member changes incompatibly.
    public static let api: UInt32 = 1
}
