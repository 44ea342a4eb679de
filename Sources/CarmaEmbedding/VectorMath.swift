/// exp and GELU eight floats at a time. The encoder calls them millions of times per fragment (the
/// attention softmax and the feed-forward activation), where libm's scalar calls cost as much as the
/// matrix products.
enum VectorMath {
    /// e^x, Cephes' single-precision method: x = n·ln2 + r, a degree-5 polynomial for e^r, 2^n
    /// put into the exponent bits. Relative error about 2e-7 over the clamped range.
    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let clamped = pointwiseMax(pointwiseMin(x, SIMD8(repeating: 88.3)), SIMD8(repeating: -87.3))
        // Adding 1.5·2^23 rounds to an integer held in the low mantissa bits (no conversion needed).
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let shifted = clamped * 1.442_695_04 + magic
        let n = shifted - magic
        let r = clamped - n * 0.693_359_375 + n * 2.121_944_4e-4
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let e = p * (r * r) + r + 1
        let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
        return e * unsafeBitCast((integer &+ 127) &<< 23, to: SIMD8<Float>.self)
    }

    /// erf(x), Abramowitz and Stegun 7.1.26: absolute error under 1.5e-7.
    @inline(__always)
    static func erf(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let bits = unsafeBitCast(x, to: SIMD8<UInt32>.self)
        let sign = bits & 0x8000_0000
        let a = unsafeBitCast(bits & 0x7FFF_FFFF, to: SIMD8<Float>.self)
        let t = 1 / (1 + 0.327_591_1 * a)
        var p = SIMD8<Float>(repeating: 1.061_405_429)
        p = p * t - 1.453_152_027
        p = p * t + 1.421_413_741
        p = p * t - 0.284_496_736
        p = p * t + 0.254_829_592
        let y = 1 - p * t * Self.exp(-a * a)
        return unsafeBitCast(unsafeBitCast(y, to: SIMD8<UInt32>.self) | sign, to: SIMD8<Float>.self)
    }

    /// GELU (the exact form, x·Φ(x)) over a buffer, in place.
    static func gelu(_ values: UnsafeMutableBufferPointer<Float>) {
        let wide = values.count - values.count % 8
        let raw = UnsafeMutableRawPointer(values.baseAddress!)
        var index = 0
        while index < wide {
            let x = raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<Float>.self)
            let y = 0.5 * x * (1 + Self.erf(x * 0.707_106_781_186_547_52))
            raw.storeBytes(of: y, toByteOffset: index * 4, as: SIMD8<Float>.self)
            index += 8
        }
        while index < values.count {
            var lane = SIMD8<Float>(repeating: 0)
            lane[0] = values[index]
            values[index] = (0.5 * lane * (1 + Self.erf(lane * 0.707_106_781_186_547_52)))[0]
            index += 1
        }
    }

    /// Softmax of each row of a row-major matrix, in place.
    static func softmaxRows(_ values: UnsafeMutableBufferPointer<Float>, rows: Int, columns: Int) {
        let raw = UnsafeMutableRawPointer(values.baseAddress!)
        let wide = columns - columns % 8
        for row in 0..<rows {
            let base = row * columns
            var largest = -Float.infinity
            for c in 0..<columns { largest = max(largest, values[base + c]) }
            let shift = SIMD8<Float>(repeating: largest)
            var sums = SIMD8<Float>(repeating: 0)
            var c = 0
            while c < wide {
                let e = Self.exp(raw.loadUnaligned(fromByteOffset: (base + c) * 4, as: SIMD8<Float>.self) - shift)
                raw.storeBytes(of: e, toByteOffset: (base + c) * 4, as: SIMD8<Float>.self)
                sums += e
                c += 8
            }
            var sum = sums.sum()
            while c < columns {
                var lane = SIMD8<Float>(repeating: 0)
                lane[0] = values[base + c] - largest
                let e = Self.exp(lane)[0]
                values[base + c] = e
                sum += e
                c += 1
            }
            let inverse = 1 / sum
            for c in 0..<columns { values[base + c] *= inverse }
        }
    }
}
