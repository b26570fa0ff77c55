import CBerthShim
import Glibc

let busLogger = Logger(label: "berth.bus")

/// One interface of one exported object as sd-bus sees it: the vtable (built from the `BusInterface` description)
/// and the C strings it points to, which must live as long as the registration. sd-bus calls the trampolines
/// below with a pointer to this object as userdata; they dispatch by member name.
final class InterfaceRegistration: @unchecked Sendable {
    let name: String
    let methods: [String: BusMethod]
    let properties: [String: BusProperty]
    let signals: Set<String>
    let store: PropertyStore
    /// Strong: a registration may outlive its object (until the bus thread has released the slots).
    let connection: BusConnection
    /// The vtable array and the strings it references, freed in deinit (after the slot is gone).
    private(set) var vtable: UnsafeMutablePointer<sd_bus_vtable>
    private var strings: [UnsafeMutableRawPointer] = []

    init(_ interface: BusInterface, store: PropertyStore, connection: BusConnection) {
        name = interface.name
        methods = Dictionary(interface.methods.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        properties = Dictionary(interface.properties.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        signals = Set(interface.signals.map(\.name))
        self.store = store
        self.connection = connection
        let count = interface.methods.count + interface.properties.count + interface.signals.count + 2
        vtable = .allocate(capacity: count)
        var entries: [sd_bus_vtable] = [cberth_vtable_start(0)]
        for method in interface.methods {
            entries.append(
                cberth_vtable_method(
                    keep(method.name), keep(method.inputs.map(\.signature).joined()),
                    keep(method.outputs.map(\.signature).joined()),
                    keepNames((method.inputs + method.outputs).map(\.name)), methodTrampoline,
                    CBERTH_VT_UNPRIVILEGED))
        }
        for property in interface.properties {
            let flags: UInt64
            switch property.change {
            case .const: flags = CBERTH_VT_CONST
            case .emitsChange: flags = CBERTH_VT_EMITS_CHANGE
            case .invalidates: flags = CBERTH_VT_EMITS_INVALIDATION
            }
            entries.append(
                cberth_vtable_property(
                    keep(property.name), keep(property.signature), propertyGetTrampoline,
                    property.setter == nil ? nil : propertySetTrampoline,
                    flags | (property.setter == nil ? 0 : CBERTH_VT_UNPRIVILEGED)))
        }
        for signal in interface.signals {
            entries.append(
                cberth_vtable_signal(
                    keep(signal.name), keep(signal.arguments.map(\.signature).joined()),
                    keepNames(signal.arguments.map(\.name)), 0))
        }
        entries.append(cberth_vtable_end())
        vtable.initialize(from: entries, count: entries.count)
    }

    deinit {
        vtable.deallocate()
        for pointer in strings { free(pointer) }
    }

    private func keep(_ text: String) -> UnsafePointer<CChar> {
        let copy = strdup(text)!
        strings.append(copy)
        return UnsafePointer(copy)
    }

    /// sd-bus argument names: each name NUL-terminated, then one more NUL.
    private func keepNames(_ names: [String]) -> UnsafePointer<CChar> {
        var bytes: [UInt8] = []
        for name in names { bytes += Array(name.utf8) + [0] }
        bytes.append(0)
        let buffer = malloc(bytes.count)!
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        strings.append(buffer)
        return UnsafePointer(buffer.assumingMemoryBound(to: CChar.self))
    }

    // MARK: Dispatch (bus thread)

    func dispatch(_ m: OpaquePointer, _ retError: UnsafeMutablePointer<sd_bus_error>?) -> Int32 {
        let member = sd_bus_message_get_member(m).map { String(cString: $0) } ?? ""
        let path = sd_bus_message_get_path(m).map { String(cString: $0) } ?? ""
        guard let method = methods[member] else {
            return setError(retError, .notSupported("\(name) has no method \(BerthError.quote(member))"))
        }
        let call: BusCall
        do {
            call = BusCall(
                arguments: try MessageCodec.readAll(m),
                sender: sd_bus_message_get_sender(m).map { String(cString: $0) } ?? "", path: path, member: member)
        } catch {
            let argument = method.inputs.indices.contains(error.index)
                ? "argument \(error.index + 1) '\(method.inputs[error.index].name)' (\(method.inputs[error.index].signature))"
                : "argument \(error.index + 1)"
            return setError(retError, .invalidArgument("\(name).\(member) on \(path): cannot read \(argument): \(error.reason)"))
        }
        let outputs = method.outputs
        let what = "\(name).\(member) on \(path)"
        switch method.handler {
        case .sync(let body):
            do {
                sendReply(to: m, try body(call), outputs: outputs, what: what)
                return 1
            } catch {
                return setError(retError, describe(error, call))
            }
        case .async(let body):
            sd_bus_message_ref(m)
            let message = UnsafeSendable(m)
            let connection = self.connection
            let describe = self.describe
            Task {
                let result: Result<[DBusValue], BerthError>
                do { result = .success(try await body(call)) } catch { result = .failure(describe(error, call)) }
                // `release`: the message is unreferenced even when the connection has ended meanwhile.
                connection.release {
                    if !connection.busReleased.load(ordering: .sequentiallyConsistent) {
                        switch result {
                        case .success(let values): sendReply(to: message.value, values, outputs: outputs, what: what)
                        case .failure(let failure): sendErrorReply(to: message.value, failure)
                        }
                    }
                    sd_bus_message_unref(message.value)
                }
            }
            return 1
        }
    }

    /// A handler's error as the reply's error: a BerthError keeps its code; anything else is `Failed`.
    private var describe: @Sendable (any Error, BusCall) -> BerthError {
        { [name] error, call in
            if let error = error as? BerthError { return error }
            busLogger.error("\(name).\(call.member) on \(call.path) failed: \(error)")
            return .failed("\(call.member) on \(call.path) failed: \(error)")
        }
    }

    func getProperty(_ property: String, into reply: OpaquePointer, _ retError: UnsafeMutablePointer<sd_bus_error>?) -> Int32 {
        guard let value = store.values.withLock({ $0[PropertyStore.key(name, property)] }) else {
            return setError(retError, .notFound("\(name) has no property \(property)"))
        }
        do {
            try MessageCodec.append(reply, value)
            return 1
        } catch {
            return setError(retError, .failed("cannot send \(name).\(property): \(error)"))
        }
    }

    func setProperty(
        _ property: String, path: String, from m: OpaquePointer, _ retError: UnsafeMutablePointer<sd_bus_error>?
    ) -> Int32 {
        guard let declared = properties[property], let setter = declared.setter else {
            return setError(retError, .accessDenied("\(name).\(property) on \(path) is read-only"))
        }
        let value: DBusValue
        do { value = try MessageCodec.readValue(m) } catch {
            return setError(
                retError, .invalidArgument("cannot read the new value of \(name).\(property) on \(path): \(error.reason)"))
        }
        do {
            let sender = sd_bus_message_get_sender(m).map { String(cString: $0) } ?? ""
            try setter(value, sender)
            let changed = store.values.withLock { values -> Bool in
                let key = PropertyStore.key(name, property)
                defer { values[key] = value }
                return values[key] != value
            }
            if changed && declared.change != .const {
                _ = property.withCString { p in
                    var names: [UnsafeMutablePointer<CChar>?] = [UnsafeMutablePointer(mutating: p), nil]
                    return sd_bus_emit_properties_changed_strv(connection.bus, path, name, &names)
                }
            }
            return 1
        } catch {
            if !(error is BerthError) {
                busLogger.error("setting \(name).\(property) on \(path) failed: \(error)")
            }
            return setError(retError, BerthError.wrapping(error))
        }
    }
}

extension BerthError {
    static func accessDenied(_ message: String) -> BerthError { .init(.accessDenied, message) }
}

// MARK: - Replies

/// Sends the method return of `call`; a value sd-bus refuses (a string with NUL or U+10FFFF, a bad object path,
/// a wrong type) turns into an error reply naming the output argument, so the caller always gets an answer.
func sendReply(to call: OpaquePointer, _ values: [DBusValue], outputs: [BusArg] = [], what: String = "the method") {
    var reply: OpaquePointer? = nil
    var r = sd_bus_message_new_method_return(call, &reply)
    guard r >= 0, let reply else {
        sendErrorReply(to: call, .failed("cannot reply to \(what): \(systemErrorText(-r))"))
        return
    }
    defer { sd_bus_message_unref(reply) }
    do {
        try MessageCodec.append(reply, values)
    } catch {
        let argument = outputs.indices.contains(error.index)
            ? "its output \(error.index + 1) '\(outputs[error.index].name)' (\(outputs[error.index].signature))"
            : "its output \(error.index + 1)"
        busLogger.error("cannot reply to \(what): \(argument): \(error.reason)")
        sendErrorReply(to: call, .failed("cannot reply to \(what): \(argument): \(error.reason)"))
        return
    }
    r = sd_bus_send(nil, reply, nil)
    if r < 0 {
        busLogger.error("cannot send the reply of \(what): \(systemErrorText(-r))")
        // Too big for the bus, most likely: the caller still gets an answer.
        sendErrorReply(to: call, .failed("cannot send the reply of \(what): \(systemErrorText(-r))"))
    }
}

/// Every error reply goes through here or `setError`: the message is capped and made acceptable to sd-bus
/// (`BerthError.busMessage`).
func sendErrorReply(to call: OpaquePointer, _ failure: BerthError) {
    var error = sd_bus_error()
    _ = sd_bus_error_set(&error, failure.code.dbusName, failure.busMessage)
    let r = sd_bus_reply_method_error(call, &error)
    if r < 0 { busLogger.error("cannot send the error reply \(failure.code.dbusName): \(systemErrorText(-r))") }
    sd_bus_error_free(&error)
}

@discardableResult
private func setError(_ error: UnsafeMutablePointer<sd_bus_error>?, _ failure: BerthError) -> Int32 {
    sd_bus_error_set(error, failure.code.dbusName, failure.busMessage)
}

// MARK: - Trampolines (C function pointers; userdata is the InterfaceRegistration)

private func registration(_ userdata: UnsafeMutableRawPointer) -> InterfaceRegistration {
    Unmanaged<InterfaceRegistration>.fromOpaque(userdata).takeUnretainedValue()
}

private let methodTrampoline: sd_bus_message_handler_t = { m, userdata, error in
    guard let m, let userdata else { return -EINVAL }
    return registration(userdata).dispatch(m, error)
}

private let propertyGetTrampoline: sd_bus_property_get_t = { _, _, _, property, reply, userdata, error in
    guard let property, let reply, let userdata else { return -EINVAL }
    return registration(userdata).getProperty(String(cString: property), into: reply, error)
}

private let propertySetTrampoline: sd_bus_property_set_t = { _, path, _, property, value, userdata, error in
    guard let property, let value, let userdata else { return -EINVAL }
    return registration(userdata).setProperty(
        String(cString: property), path: path.map { String(cString: $0) } ?? "", from: value, error)
}
