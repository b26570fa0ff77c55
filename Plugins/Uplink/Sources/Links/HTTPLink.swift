import BerthKit
import CCurl
import Glibc

/// An HTTP destination through libcurl: each message is one POST of its JSON, delivered when the answer is 2xx.
/// One easy handle per destination, reused (keep-alive), owned by its delivery worker thread.
final class HTTPLink: Link, @unchecked Sendable {
    let config: DestinationConfig
    private var curl: UnsafeMutableRawPointer?
    private var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    private var connected = false
    private let baseHeaders: [String]

    static let initialized: Bool = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        return true
    }()

    init(_ config: DestinationConfig, credentials: Credentials) {
        _ = Self.initialized
        self.config = config
        self.baseHeaders = ["Content-Type: application/json", "Expect:"] + credentials.headers
    }

    deinit { close() }

    var isConnected: Bool { connected }

    func open() throws {
        if curl != nil { return }
        guard let handle = curl_easy_init() else { throw LinkError("cannot create an HTTP client (curl_easy_init)") }
        curl = handle
        _ = berth_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        _ = berth_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(config.timeout.microsecondsClamped / 1000))
        _ = berth_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(config.timeout.microsecondsClamped / 1000))
        _ = berth_curl_setopt_long(handle, CURLOPT_POST, 1)
        _ = berth_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
        _ = berth_curl_setopt_pointer(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = berth_curl_discard_body(handle)
        errorBuffer.withUnsafeMutableBufferPointer {
            _ = berth_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, $0.baseAddress)
        }
        _ = berth_curl_setopt_pointer(handle, CURLOPT_URL, config.url)
        if let ca = config.tlsCA { _ = berth_curl_setopt_pointer(handle, CURLOPT_CAINFO, ca) }
    }

    func send(_ rows: [Outbox.Row]) -> (confirmed: Int, error: String?) {
        guard let handle = curl else { return (0, "no HTTP client for \(config.url)") }
        for (index, row) in rows.enumerated() {
            var list: UnsafeMutablePointer<curl_slist>? = nil
            for header in baseHeaders + ["Idempotency-Key: \(row.id)"] { list = curl_slist_append(list, header) }
            defer { curl_slist_free_all(list) }
            _ = berth_curl_setopt_pointer(handle, CURLOPT_HTTPHEADER, list)
            errorBuffer[0] = 0
            let rc = row.payload.withCString { body -> CURLcode in
                _ = berth_curl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, strlen(body))
                _ = berth_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS, body)
                return curl_easy_perform(handle)
            }
            _ = berth_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS, nil)
            guard rc == CURLE_OK else {
                connected = false
                let detail =
                    errorBuffer[0] != 0
                    ? errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                    : String(cString: curl_easy_strerror(rc))
                return (index, "POST \(config.url) failed: \(detail)")
            }
            var code = 0
            _ = berth_curl_response_code(handle, &code)
            guard (200..<300).contains(code) else {
                connected = false
                return (index, "POST \(config.url) answered HTTP \(code)")
            }
            connected = true
        }
        return (rows.count, nil)
    }

    func close() {
        if let curl { curl_easy_cleanup(curl) }
        curl = nil
        connected = false
    }
}
