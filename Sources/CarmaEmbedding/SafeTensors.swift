import CarmaJSON

/// The tensors of a `.safetensors` file: an 8-byte little-endian header length, a JSON header naming
/// each tensor's dtype, shape and byte range, then the raw data. Only F32 tensors are read.
struct SafeTensors {
    private struct Entry {
        var shape: [Int]
        var range: Range<Int>
        var dtype: String
    }

    private let path: String
    private let data: [UInt8]
    private let dataStart: Int
    private let entries: [String: Entry]

    init(path: String, maxBytes: Int = 2 << 30) throws(EmbeddingModelError) {
        self.path = path
        self.data = try ModelFile.read(path, maxBytes: maxBytes)
        guard self.data.count >= 8 else { throw .malformed(path, "shorter than its header length") }
        var headerLength = 0
        for index in 0..<8 { headerLength |= Int(self.data[index]) << (8 * index) }
        guard headerLength > 1, headerLength <= min(100 << 20, self.data.count - 8) else {
            throw .malformed(path, "header length \(headerLength) does not fit the file")
        }
        self.dataStart = 8 + headerLength
        let header: JSONValue
        do {
            header = try JSONParser.parse(self.data[8..<self.dataStart], maxDepth: 8)
        } catch {
            throw .malformed(path, "header is not JSON: \(error)")
        }
        guard let object = header.objectValue else { throw .malformed(path, "header is not a JSON object") }
        let available = self.data.count - self.dataStart
        var entries: [String: Entry] = [:]
        for (name, value) in object where name != "__metadata__" {
            guard let info = value.objectValue, let dtype = info["dtype"]?.stringValue,
                let shape = info["shape"]?.arrayValue?.compactMap(\.intValue),
                let offsets = info["data_offsets"]?.arrayValue?.compactMap(\.intValue), offsets.count == 2,
                offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= available, shape.allSatisfy({ $0 >= 0 })
            else { throw .malformed(path, "tensor \(name) has no valid dtype, shape and offsets") }
            entries[name] = Entry(shape: shape, range: offsets[0]..<offsets[1], dtype: dtype)
        }
        self.entries = entries
    }

    /// An F32 tensor, flattened row-major, after checking that its shape is `shape`.
    func floats(_ name: String, shape: [Int]) throws(EmbeddingModelError) -> [Float] {
        guard let entry = self.entries[name] else { throw .malformed(self.path, "tensor \(name) is missing") }
        guard entry.dtype == "F32" else { throw .malformed(self.path, "tensor \(name) is \(entry.dtype), not F32") }
        guard entry.shape == shape else { throw .malformed(self.path, "tensor \(name) has shape \(entry.shape), not \(shape)") }
        let count = shape.reduce(1, *)
        guard entry.range.count == count * 4 else { throw .malformed(self.path, "tensor \(name) has \(entry.range.count) bytes for \(count) floats") }
        let start = self.dataStart + entry.range.lowerBound
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBytes { target in
            self.data.withUnsafeBytes { source in
                target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<(start + count * 4)]))
            }
        }
        // Little-endian on disk, as on every platform carmad runs on; NaN or infinite weights would
        // poison every embedding, so they refuse the model.
        guard values.allSatisfy(\.isFinite) else { throw .malformed(self.path, "tensor \(name) holds a value that is not finite") }
        return values
    }
}
