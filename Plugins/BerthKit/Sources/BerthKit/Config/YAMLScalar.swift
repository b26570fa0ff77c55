/// How the text of a plain (unquoted) YAML scalar reads: null, boolean, integer or float. The parser, the strict
/// reader and the emitter share these rules so that what one writes the others read the same way.
enum YAMLScalar {
    /// The result of reading an integer: its sign and magnitude, or why it is not one.
    enum Integer: Equatable {
        case valid(negative: Bool, magnitude: UInt64)
        case tooLarge
        case invalid
    }

    static let nullForms: Set<String> = ["", "~", "null", "Null", "NULL"]

    /// `~`, `null` and the empty value.
    static func isNull(_ text: String) -> Bool { nullForms.contains(text) }

    /// The booleans the reader accepts: true/false, yes/no, on/off, in lower, Title or UPPER case.
    static func bool(_ text: String) -> Bool? {
        switch text {
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": false
        default: nil
        }
    }

    /// Every text some YAML reader takes for a boolean (YAML 1.1 also has y and n): such strings get quotes.
    static func readsAsBool(_ text: String) -> Bool {
        bool(text) != nil || ["y", "Y", "n", "N"].contains(text)
    }

    /// Decimal (`-12`, `1_000`), hexadecimal (`0x1F`), octal (`0o17`) or binary (`0b101`), with an optional sign.
    static func integer(_ text: String) -> Integer {
        var digits = Substring(text)
        var negative = false
        if let sign = digits.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        var radix: UInt64 = 10
        if let (_, base) = [("0x", UInt64(16)), ("0o", 8), ("0b", 2)].first(where: { digits.hasPrefix($0.0) }) {
            radix = base
            digits = digits.dropFirst(2)
        }
        guard let first = digits.first, first != "_" else { return .invalid }
        var magnitude: UInt64 = 0
        var overflow = false
        for character in digits where character != "_" {
            guard character.isASCII, let digit = character.hexDigitValue, UInt64(digit) < radix else { return .invalid }
            let (shifted, o1) = magnitude.multipliedReportingOverflow(by: radix)
            let (sum, o2) = shifted.addingReportingOverflow(UInt64(digit))
            overflow = overflow || o1 || o2
            magnitude = sum
        }
        return overflow ? .tooLarge : .valid(negative: negative, magnitude: magnitude)
    }

    /// The integer as an `Int`, nil when it is not an integer or does not fit.
    static func int(_ text: String) -> Int? {
        guard case .valid(let negative, let magnitude) = integer(text) else { return nil }
        if negative {
            return magnitude <= UInt64(Int.max) + 1 ? Int(truncatingIfNeeded: 0 &- magnitude) : nil
        }
        return magnitude <= UInt64(Int.max) ? Int(magnitude) : nil
    }

    /// `1.5`, `-2`, `.5`, `1e3`, `6.02E+23`, `1_000.5`: a finite decimal number (integers included).
    static func isDecimal(_ text: String) -> Bool {
        var rest = Substring(text)
        if rest.first == "-" || rest.first == "+" { rest = rest.dropFirst() }
        let mantissa = rest.prefix(while: { $0.isASCII && ($0.isNumber || $0 == "_" || $0 == ".") })
        guard mantissa.first != "_", mantissa.contains(where: \.isNumber), mantissa.filter({ $0 == "." }).count <= 1
        else { return false }
        rest = rest.dropFirst(mantissa.count)
        if rest.isEmpty { return true }
        guard rest.first == "e" || rest.first == "E" else { return false }
        rest = rest.dropFirst()
        if rest.first == "-" || rest.first == "+" { rest = rest.dropFirst() }
        return !rest.isEmpty && rest.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// The infinities and not-a-number of YAML (`.inf`, `-.Inf`, `.NaN`).
    static func isSpecialFloat(_ text: String) -> Bool {
        var rest = Substring(text)
        if rest.first == "-" || rest.first == "+" { rest = rest.dropFirst() }
        return [".inf", ".Inf", ".INF"].contains(rest) || [".nan", ".NaN", ".NAN"].contains(text)
    }

    /// The number a decimal text denotes, nil when it is not one (or not finite).
    static func double(_ text: String) -> Double? {
        guard isDecimal(text), let value = Double(text.filter { $0 != "_" }), value.isFinite else { return nil }
        return value
    }

    /// `true`, `false`, `null` or a number as JSON writes it (`-0.5`, `1e3`; no `+`, no leading zeros).
    static func isJSONLiteral(_ text: String) -> Bool {
        if ["true", "false", "null"].contains(text) { return true }
        var rest = Substring(text)
        if rest.first == "-" { rest = rest.dropFirst() }
        let whole = rest.prefix(while: { $0.isASCII && $0.isNumber })
        guard !whole.isEmpty, whole == "0" || whole.first != "0" else { return false }
        rest = rest.dropFirst(whole.count)
        if rest.first == "." {
            let fraction = rest.dropFirst().prefix(while: { $0.isASCII && $0.isNumber })
            guard !fraction.isEmpty else { return false }
            rest = rest.dropFirst(1 + fraction.count)
        }
        if rest.first == "e" || rest.first == "E" {
            rest = rest.dropFirst()
            if rest.first == "-" || rest.first == "+" { rest = rest.dropFirst() }
            guard !rest.isEmpty, rest.allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
            return true
        }
        return rest.isEmpty
    }

    /// Whether a plain scalar with this text would be read as something other than a string.
    static func resolvesAsNonString(_ text: String) -> Bool {
        isNull(text) || readsAsBool(text) || integer(text) != .invalid || isDecimal(text) || isSpecialFloat(text)
    }

    /// Whether a string needs double quotes to come back as the same string: a cautious superset of the cases
    /// where plain text would be misread (as another type, a comment, an indicator, or with its spaces lost).
    static func needsQuotes(_ text: String) -> Bool {
        let scalars = text.unicodeScalars
        guard let first = scalars.first, let last = scalars.last else { return true }
        if first == " " || last == " " || resolvesAsNonString(text) || looksNumeric(text) { return true }
        if first == "-" || first == "?" || text == "<<" || text.hasPrefix("...") { return true }
        return scalars.contains { specialCharacters.contains($0) || !isPrintable($0) }
    }

    static let specialCharacters = Set(":#{}[],&*!|>'\"%@`\\".unicodeScalars)

    /// Starts like a number and is made only of what numbers in some YAML dialect are made of (`1.2.3`, `0xFF_`,
    /// `2024-01-01`): kept in quotes so no reader takes it for a number or a date. `5s` and `10M` stay plain.
    static func looksNumeric(_ text: String) -> Bool {
        var rest = Substring(text)
        if rest.first == "-" || rest.first == "+" { rest = rest.dropFirst() }
        if rest.first == "." { rest = rest.dropFirst() }
        guard let first = rest.first, first.isASCII, first.isNumber else { return false }
        return text.allSatisfy { numberCharacters.contains($0) }
    }

    static let numberCharacters = Set("0123456789abcdefABCDEFxXoO._+-")

    static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x20...0x7E: true
        case 0...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF: false
        default: true
        }
    }

    /// The text in YAML double quotes, with escapes for quotes, backslashes and anything not printable.
    static func doubleQuoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\0": out += "\\0"
            case "\u{85}": out += "\\N"
            case "\u{2028}": out += "\\L"
            case "\u{2029}": out += "\\P"
            case _ where !isPrintable(scalar):
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += scalar.value <= 0xFF ? "\\x" + pad(hex, 2) : "\\u" + pad(hex, 4)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A value quoted for an error message, shortened when long.
    static func quotedForMessage(_ text: String) -> String {
        let limit = 80
        guard text.count > limit else { return doubleQuoted(text) }
        return doubleQuoted(String(text.prefix(limit))) + "…"
    }

    private static func pad(_ hex: String, _ width: Int) -> String {
        String(repeating: "0", count: max(0, width - hex.count)) + hex
    }
}
