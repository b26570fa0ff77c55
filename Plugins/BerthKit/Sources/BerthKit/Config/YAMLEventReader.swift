import CBerthShim

/// One event of libyaml's parser, copied out of C memory.
enum YAMLEvent: Equatable {
    case streamStart
    case streamEnd
    case documentStart
    case documentEnd
    case alias(anchor: String)
    case scalar(String, anchor: String?, tag: String?, style: ScalarStyle)
    /// `flow` for `[a, b]` and `{a: b}`, false for block (indented) collections.
    case sequenceStart(anchor: String?, tag: String?, flow: Bool)
    case sequenceEnd
    case mappingStart(anchor: String?, tag: String?, flow: Bool)
    case mappingEnd

    enum ScalarStyle: Equatable {
        case plain, singleQuoted, doubleQuoted, block
    }
}

/// The one place that touches libyaml: runs `yaml_parser_parse` over UTF-8 (or UTF-16 with a BOM) text and hands
/// each event with its 1-based mark to a Swift closure. Syntax errors become `BerthError(.invalidConfig)`.
enum YAMLEventReader {
    /// Calls `body` for every event until the stream ends or `body` throws.
    static func read(_ bytes: [UInt8], file: String, _ body: (YAMLEvent, ConfigMark) throws -> Void) throws {
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) != 0 else {
            throw BerthError.invalidConfig("\(file): cannot start the YAML parser (out of memory)")
        }
        defer { yaml_parser_delete(parser) }
        // libyaml reads from this buffer until the parser is deleted, so every call stays inside the closure. An
        // empty array may have no storage: give it a byte that the length leaves out.
        let storage = bytes.isEmpty ? [0] : bytes
        try storage.withUnsafeBufferPointer { whole in
            let buffer = UnsafeBufferPointer(rebasing: whole[..<bytes.count])
            yaml_parser_set_input_string(parser, whole.baseAddress!, bytes.count)
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(parser, &event) != 0 else {
                    throw syntaxError(parser.pointee, bytes: buffer, file: file)
                }
                let converted = convert(event)
                let mark = ConfigMark(
                    file: file, line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
                yaml_event_delete(&event)
                try body(converted, mark)
                if converted == .streamEnd { return }
            }
        }
    }

    private static func convert(_ event: yaml_event_t) -> YAMLEvent {
        switch event.type {
        case YAML_STREAM_START_EVENT: return .streamStart
        case YAML_DOCUMENT_START_EVENT: return .documentStart
        case YAML_DOCUMENT_END_EVENT: return .documentEnd
        case YAML_ALIAS_EVENT: return .alias(anchor: text(event.data.alias.anchor) ?? "")
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let value = scalar.value.map {
                String(decoding: UnsafeBufferPointer(start: $0, count: scalar.length), as: UTF8.self)
            }
            let style: YAMLEvent.ScalarStyle =
                switch scalar.style {
                case YAML_PLAIN_SCALAR_STYLE: .plain
                case YAML_SINGLE_QUOTED_SCALAR_STYLE: .singleQuoted
                case YAML_DOUBLE_QUOTED_SCALAR_STYLE: .doubleQuoted
                default: .block
                }
            return .scalar(value ?? "", anchor: text(scalar.anchor), tag: text(scalar.tag), style: style)
        case YAML_SEQUENCE_START_EVENT:
            let start = event.data.sequence_start
            return .sequenceStart(
                anchor: text(start.anchor), tag: text(start.tag), flow: start.style == YAML_FLOW_SEQUENCE_STYLE)
        case YAML_SEQUENCE_END_EVENT: return .sequenceEnd
        case YAML_MAPPING_START_EVENT:
            let start = event.data.mapping_start
            return .mappingStart(
                anchor: text(start.anchor), tag: text(start.tag), flow: start.style == YAML_FLOW_MAPPING_STYLE)
        case YAML_MAPPING_END_EVENT: return .mappingEnd
        default: return .streamEnd  // YAML_STREAM_END_EVENT (and YAML_NO_EVENT, which a successful parse never gives)
        }
    }

    private static func text(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: UnsafePointer($0)) }
    }

    /// `FILE:LINE: problem (context at line N)` from the parser's error fields.
    private static func syntaxError(_ parser: yaml_parser_t, bytes: UnsafeBufferPointer<UInt8>, file: String)
        -> BerthError
    {
        let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
        switch parser.error {
        case YAML_MEMORY_ERROR:
            return .invalidConfig("\(file): out of memory while parsing")
        case YAML_READER_ERROR:
            // The reader reports a byte offset, not a mark: count the lines before it.
            let offset = min(parser.problem_offset, bytes.count)
            let line = bytes[..<offset].reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
            return .invalidConfig("\(ConfigMark.location(file, line: line)): \(problem)")
        default:
            var message = "\(ConfigMark.location(file, line: Int(parser.problem_mark.line) + 1)): \(problem)"
            if let context = parser.context.map({ String(cString: $0) }) {
                message += " (\(context) at line \(Int(parser.context_mark.line) + 1))"
            }
            return .invalidConfig(message)
        }
    }
}
