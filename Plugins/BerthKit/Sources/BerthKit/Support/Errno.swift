import Glibc

/// strerror's text for an errno value (glibc's strerror is thread-safe for known codes since 2.32).
public func systemErrorText(_ code: Int32) -> String {
    String(cString: strerror(code))
}
