import CBerthShim
import Glibc
import Synchronization

/// An object exported on the bus: one path, one or more interfaces. Property values live here; `set` updates a
/// value from any thread and emits PropertiesChanged when it changed. Getters read the stored value on the bus
/// thread, so a property read never waits for plugin code.
///
/// The object owns its sd-bus slots: `remove()` takes it off the bus, and so does dropping the last reference
/// (the slots are unreferenced on the bus thread before the vtables they point at are freed). A plugin bug
/// (`set` of an undeclared property or of a value of the wrong type, `emit` of an undeclared signal) is logged and
/// ignored; it never stops the daemon.
public final class BusObject: Sendable {
    public let path: String
    public let connection: BusConnection
    let store: PropertyStore
    let registrations: [InterfaceRegistration]
    private let slots = Mutex<[UnsafeSendable<OpaquePointer>]>([])
    private let state = Mutex<(exported: Bool, removed: Bool)>((false, false))

    init(path: String, connection: BusConnection, interfaces: [BusInterface]) {
        self.path = path
        self.connection = connection
        let store = PropertyStore()
        self.store = store
        self.registrations = interfaces.map { InterfaceRegistration($0, store: store, connection: connection) }
        for interface in interfaces {
            for property in interface.properties {
                store.values.withLock { $0[PropertyStore.key(interface.name, property.name)] = property.initial }
            }
        }
    }

    /// The interface that declares `member`, for calls that do not name it.
    private func interfaceName(property name: String) -> String? {
        registrations.first { $0.properties[name] != nil }?.name
    }

    private func interfaceName(signal name: String) -> String? {
        registrations.first { $0.signals.contains(name) }?.name
    }

    /// The current value of a property.
    public func get(_ name: String, interface: String? = nil) -> DBusValue? {
        guard let iface = interface ?? interfaceName(property: name) else { return nil }
        return store.values.withLock { $0[PropertyStore.key(iface, name)] }
    }

    /// Sets one property; emits PropertiesChanged if the value changed and the property emits changes.
    public func set(_ name: String, _ value: DBusValue, interface: String? = nil) {
        set([(name, value)], interface: interface)
    }

    /// Sets several properties of one interface; one PropertiesChanged carries every changed one.
    public func set(_ changes: [(String, DBusValue)], interface: String? = nil) {
        guard let first = changes.first else { return }
        guard let iface = interface ?? interfaceName(property: first.0),
            let registration = registrations.first(where: { $0.name == iface })
        else {
            busLogger.error("\(path) has no property \(first.0)\(interface.map { " in \($0)" } ?? ""): not set (a bug in its plugin)")
            return
        }
        var changed: [String] = []
        store.values.withLock { values in
            for (name, value) in changes {
                let key = PropertyStore.key(iface, name)
                guard let declared = registration.properties[name] else {
                    busLogger.error("\(path) has no property \(iface).\(name): not set (a bug in its plugin)")
                    continue
                }
                guard values[key] != value else { continue }
                let expected = values[key]?.signature ?? declared.signature
                guard value.signature == expected else {
                    busLogger.error(
                        "\(path) \(iface).\(name) is '\(expected)', not '\(value.signature)': not set (a bug in its plugin)")
                    continue
                }
                values[key] = value
                if let property = registration.properties[name], property.change != .const { changed.append(name) }
            }
        }
        guard !changed.isEmpty, state.withLock({ $0.exported && !$0.removed }) else { return }
        let objectPath = self.path
        let names = changed
        connection.perform { [connection] in
            emitPropertiesChanged(connection.bus, path: objectPath, interface: iface, names: names)
        }
    }

    /// Emits a signal declared by one of this object's interfaces.
    public func emit(_ signal: String, _ arguments: [DBusValue], interface: String? = nil) {
        guard let iface = interface ?? interfaceName(signal: signal),
            registrations.contains(where: { $0.name == iface && $0.signals.contains(signal) })
        else {
            busLogger.error("\(path) declares no signal \(signal): not emitted (a bug in its plugin)")
            return
        }
        let path = self.path
        connection.perform { [connection] in
            var message: OpaquePointer? = nil
            guard sd_bus_message_new_signal(connection.bus, &message, path, iface, signal) >= 0, let message else {
                return
            }
            defer { sd_bus_message_unref(message) }
            do {
                try MessageCodec.append(message, arguments)
                let r = sd_bus_send(connection.bus, message, nil)
                if r < 0 {
                    busLogger.error("signal \(iface).\(signal) on \(path) not sent: \(systemErrorText(-r))")
                }
            } catch {
                busLogger.error("signal \(iface).\(signal) on \(path) not sent: \(error)")
            }
        }
    }

    /// Registers the vtables (bus thread). Announces the object through ObjectManager when `announce` is set.
    func register(announce: Bool) throws {
        for registration in registrations {
            var slot: OpaquePointer? = nil
            let r = sd_bus_add_object_vtable(
                connection.bus, &slot, path, registration.name, registration.vtable,
                Unmanaged.passUnretained(registration).toOpaque())
            guard r >= 0, let slot else {
                unregister()
                throw BerthError.failed("cannot export \(registration.name) at \(path): \(systemErrorText(-r))")
            }
            slots.withLock { $0.append(UnsafeSendable(slot)) }
        }
        state.withLock { $0.exported = true }
        if announce { _ = sd_bus_emit_object_added(connection.bus, path) }
    }

    private func unregister() {
        for slot in takeSlots() { sd_bus_slot_unref(slot.value) }
    }

    private func takeSlots() -> [UnsafeSendable<OpaquePointer>] {
        slots.withLock { s in
            defer { s.removeAll() }
            return s
        }
    }

    /// Takes the object off the bus (InterfacesRemoved first). Safe to call more than once.
    public func remove() {
        let wasExported = state.withLock { s -> Bool in
            defer { s.removed = true }
            return s.exported && !s.removed
        }
        guard wasExported else { return }
        let slots = takeSlots()
        let (connection, path, registrations) = (self.connection, self.path, self.registrations)
        connection.release {
            if !connection.busReleased.load(ordering: .sequentiallyConsistent) {
                _ = sd_bus_emit_object_removed(connection.bus, path)
            }
            for slot in slots { sd_bus_slot_unref(slot.value) }
            _ = registrations  // the vtables outlive the slots that point at them
        }
    }

    /// Dropped without `remove()`: taken off the bus as `remove()` does (InterfacesRemoved, then the slots on the
    /// bus thread, then the vtables they point at).
    deinit {
        let slots = takeSlots()
        guard !slots.isEmpty else { return }
        let announce = state.withLock { $0.exported && !$0.removed }
        let (connection, path, registrations) = (self.connection, self.path, self.registrations)
        connection.release {
            if announce && !connection.busReleased.load(ordering: .sequentiallyConsistent) {
                _ = sd_bus_emit_object_removed(connection.bus, path)
            }
            for slot in slots { sd_bus_slot_unref(slot.value) }
            _ = registrations
        }
    }
}

/// Property values of one object, keyed by interface and name.
final class PropertyStore: Sendable {
    let values = Mutex<[String: DBusValue]>([:])
    static func key(_ interface: String, _ name: String) -> String { interface + "\u{1}" + name }
}

private func emitPropertiesChanged(_ bus: OpaquePointer, path: String, interface: String, names: [String]) {
    var cNames: [UnsafeMutablePointer<CChar>?] = names.map { strdup($0) }
    cNames.append(nil)
    defer { for p in cNames { free(p) } }
    _ = cNames.withUnsafeMutableBufferPointer { sd_bus_emit_properties_changed_strv(bus, path, interface, $0.baseAddress) }
}

extension BusConnection {
    /// Exports an object with the given interfaces. With `announce`, clients of ObjectManager see InterfacesAdded.
    public func export(path: String, interfaces: [BusInterface], announce: Bool = true) async throws -> BusObject {
        guard BusPath.isValid(path) else { throw BerthError.invalidArgument("\"\(path)\" is not a valid object path") }
        let object = BusObject(path: path, connection: self, interfaces: interfaces)
        try await run { try object.register(announce: announce) }
        return object
    }

    /// Serves org.freedesktop.DBus.ObjectManager at `path` for every object below it.
    public func addObjectManager(path: String) async throws {
        try await run {
            let r = sd_bus_add_object_manager(self.bus, nil, path)
            if r < 0 { throw BerthError.failed("cannot add an object manager at \(path): \(systemErrorText(-r))") }
        }
    }
}
