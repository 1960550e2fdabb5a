/// The TEXMEX formats (http://corpus-texmex.irisa.fr): every row is a little-endian Int32
/// dimension followed by that many values — float32 in .fvecs, uint8 in .bvecs, int32 in
/// .ivecs. There is no header, so the row count comes from the file size.
enum TexmexFormat {
    static func elementType(of format: VectorFileFormat) -> VectorElementType {
        switch format {
        case .fvecs: .float32
        case .bvecs: .uint8
        case .ivecs: .int32
        case .npy: preconditionFailure("not a TEXMEX format")
        }
    }

    /// Checks only the first row's dimension and the total size, so opening stays O(1) on a
    /// file larger than RAM; other rows' dimensions are checked as they are read.
    static func layout(
        of mapping: MappedFile, format: VectorFileFormat
    ) throws(DatasetError) -> MatrixLayout {
        let path = mapping.path
        let size = mapping.size
        let elementType = elementType(of: format)
        guard size >= 4 else {
            throw .truncated(path: path, row: 0, expectedBytes: 4, actualBytes: size)
        }
        let dimension = Int(mapping.int32(at: 0))
        guard dimension > 0 else {
            throw .nonPositiveDimension(path: path, row: 0, found: dimension)
        }
        let rowBytes = 4 + dimension * elementType.byteWidth
        if size % rowBytes != 0 {
            try locateIrregularRow(mapping, dimension: dimension, rowBytes: rowBytes)
        }
        return MatrixLayout(
            format: format, elementType: elementType, rows: size / rowBytes, columns: dimension,
            dataOffset: 4, rowStride: rowBytes)
    }

    /// The size does not divide into rows: walk the row prefixes to report the first row
    /// that has another dimension or is cut short. Only the error path touches every row.
    private static func locateIrregularRow(
        _ mapping: MappedFile, dimension: Int, rowBytes: Int
    ) throws(DatasetError) -> Never {
        let size = mapping.size
        var row = 0
        var offset = 0
        while true {
            if offset + 4 > size || offset + rowBytes > size {
                let needed = (offset + 4 > size ? offset + 4 : offset + rowBytes)
                // A cut row whose prefix is readable and wrong is a dimension change, not a
                // truncation.
                if offset + 4 <= size {
                    let found = Int(mapping.int32(at: offset))
                    if found != dimension {
                        throw .dimensionChanged(
                            path: mapping.path, row: row, expected: dimension, found: found)
                    }
                }
                throw .truncated(path: mapping.path, row: row, expectedBytes: needed, actualBytes: size)
            }
            let found = Int(mapping.int32(at: offset))
            if found != dimension {
                throw .dimensionChanged(path: mapping.path, row: row, expected: dimension, found: found)
            }
            row += 1
            offset += rowBytes
        }
    }
}
