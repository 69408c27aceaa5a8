import Foundation

// Winograd F(4×4, 3×3): a 3×3 stride-1 convolution computed on 4×4 output
// tiles with 36 multiplies per tile and channel pair instead of 144.
//
// Per tile, with d the 6×6 input patch, g the 3×3 kernel and the fixed
// matrices Bᵀ (6×6), G (6×3) and Aᵀ (4×6) of the interpolation points
// 0, ±1, ±2 (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks"):
//
//     Y = Aᵀ [ Σ_c (G g_kc Gᵀ) ⊙ (Bᵀ d_c B) ] A
//
// The sum over input channels of the 36 elementwise products is 36
// independent GEMMs, U[ξ] (K × C) × V[ξ] (C × tiles), which OpenBLAS runs.
//
// Dilation: a 3×3 convolution with dilation d only ever combines inputs d
// apart, so it is d² ordinary convolutions on interleaved sub-grids (the
// space-to-batch view of atrous convolution). Here a tile's 4×4 outputs and
// 6×6 inputs are simply taken d apart, so no data is rearranged: the tile
// origins along an axis are a, a + 4d, a + 8d, … for each residue a < d; or,
// where sub-grids are short, tiles are cut from the sub-grids laid side by
// side with a zero between them (`WinogradAxis`), the gathers doing the
// rearranging.
//
// The data gradient of such a convolution is the same kind of convolution of
// dY with the kernel flipped and the channel axes swapped, so training uses
// the same kernel for it. The weight gradient is the adjoint of the forward
// (`winogradWeightGradient`): dY's tiles through Aᵀ's adjoint, the inputs'
// through Bᵀ, 36 GEMMs summing over the tiles, and Gᵀ back to 3×3.

public enum Winograd {
    /// Output positions of the tiles along one axis of extent `extent`:
    /// for each residue a < dilation, a, a + 4·dilation, a + 8·dilation, ….
    static func origins(extent: Int, dilation: Int) -> [Int] {
        var result: [Int] = []
        for residue in 0..<min(dilation, extent) {
            var origin = residue
            while origin < extent {
                result.append(origin)
                origin += 4 * dilation
            }
        }
        return result
    }

    /// The tiles of one image along each axis.
    static func axes(_ g: ConvGeometry) -> (rows: WinogradAxis, columns: WinogradAxis) {
        (WinogradAxis.best(outputExtent: g.outputHeight, inputExtent: g.inputHeight, padding: g.paddingHeight,
                           dilation: g.dilationHeight),
         WinogradAxis.best(outputExtent: g.outputWidth, inputExtent: g.inputWidth, padding: g.paddingWidth,
                           dilation: g.dilationWidth))
    }

    /// Tiles of one image.
    static func tilesPerImage(_ g: ConvGeometry) -> Int {
        let (rows, columns) = axes(g)
        return rows.count * columns.count
    }

    /// Whether `g` is a convolution this kernel computes and is worth it for:
    /// 3×3, stride 1, any padding and dilation, at least 16 channels each
    /// way, and at most 0.7 of the direct form's multiply-adds once partial
    /// tiles are counted (a 60×60 map at dilation 36 has sub-grids of 1–2
    /// pixels, where 4×4 tiles are mostly waste; at dilation 12, 0.64).
    public static func applies(to g: ConvGeometry) -> Bool {
        guard g.kernelHeight == 3, g.kernelWidth == 3, g.strideHeight == 1, g.strideWidth == 1,
              g.inputChannels >= 16, g.outputChannels >= 16
        else { return false }
        return workFraction(g) <= 0.7
    }

    /// Multiply-adds of the GEMMs as a share of the direct form's: 36 per
    /// tile against 9 per output.
    static func workFraction(_ g: ConvGeometry) -> Double {
        Double(36 * tilesPerImage(g)) / Double(9 * g.outputPlane)
    }

    /// Scalars of the transformed kernel U[36, K, C].
    static func transformedWeightCount(_ g: ConvGeometry) -> Int { 36 * g.outputChannels * g.inputChannels }
}

/// The tiles along one axis of an image: for each tile, the input coordinate
/// of each of its 6 inputs and the output coordinate of each of its 4
/// outputs, -1 for a zero input (padding) or an output to discard.
struct WinogradAxis: Equatable {
    var inputs: [Int] = []
    var outputs: [Int] = []
    var count: Int { outputs.count / 4 }

    /// Tiles within each residue class of the dilation: origins a, a + 4d,
    /// a + 8d, … for each a < d; any padding.
    static func residues(outputExtent: Int, inputExtent: Int, padding: Int, dilation: Int) -> WinogradAxis {
        var axis = WinogradAxis()
        for origin in Winograd.origins(extent: outputExtent, dilation: dilation) {
            for a in 0..<6 {
                let input = origin - padding + a * dilation
                axis.inputs.append(input >= 0 && input < inputExtent ? input : -1)
            }
            for a in 0..<4 {
                let output = origin + a * dilation
                axis.outputs.append(output < outputExtent ? output : -1)
            }
        }
        return axis
    }

    /// Space-to-batch: the residue classes' sub-grids laid side by side with
    /// one zero between neighbours, and tiles cut from that mosaic, so a tile
    /// may straddle two sub-grids. Where the sub-grids are short (a 60-pixel
    /// axis at dilation 12 has sub-grids of 5), far fewer outputs are wasted
    /// than with whole tiles per sub-grid. Only for padding = dilation, where
    /// a sub-grid's inputs and outputs are the same positions and the zero
    /// between two sub-grids is exactly the padding each one reads.
    static func mosaic(extent: Int, dilation: Int) -> WinogradAxis {
        var coordinates = [-1]
        for residue in 0..<min(dilation, extent) {
            coordinates += stride(from: residue, to: extent, by: dilation)
            coordinates.append(-1)
        }
        func at(_ m: Int) -> Int { m >= 0 && m < coordinates.count ? coordinates[m] : -1 }
        var axis = WinogradAxis()
        for origin in stride(from: 1, to: coordinates.count - 1, by: 4) {
            for a in 0..<6 { axis.inputs.append(at(origin - 1 + a)) }
            for a in 0..<4 { axis.outputs.append(at(origin + a)) }
        }
        return axis
    }

    /// Of the two, the one with fewer tiles.
    static func best(outputExtent: Int, inputExtent: Int, padding: Int, dilation: Int) -> WinogradAxis {
        let byResidue = residues(outputExtent: outputExtent, inputExtent: inputExtent, padding: padding, dilation: dilation)
        guard padding == dilation, dilation > 1, outputExtent == inputExtent else { return byResidue }
        let mosaic = mosaic(extent: outputExtent, dilation: dilation)
        return mosaic.count < byResidue.count ? mosaic : byResidue
    }
}

// MARK: - The three transforms, on 8 tiles or 8 channels at once

/// Bᵀ applied to a 6-vector (the input transform of one row or column).
@inline(__always)
private func inputTransform(
    _ d0: Float8, _ d1: Float8, _ d2: Float8, _ d3: Float8, _ d4: Float8, _ d5: Float8
) -> (Float8, Float8, Float8, Float8, Float8, Float8) {
    let a = d4 - 4 * d2, b = d3 - 4 * d1
    let c = d4 - d2, e = 2 * (d3 - d1)
    return (4 * d0 - 5 * d2 + d4, a + b, a - b, c + e, c - e, 4 * d1 - 5 * d3 + d5)
}

/// G applied to a 3-vector (the kernel transform of one row or column).
@inline(__always)
private func kernelTransform(_ g0: Float8, _ g1: Float8, _ g2: Float8) -> (Float8, Float8, Float8, Float8, Float8, Float8) {
    let even = g0 + g2
    let sixth: Float = 1 / 6
    let outer = g0 * (1 / 24) + g2 * sixth
    return (g0 * 0.25, -(even + g1) * sixth, -(even - g1) * sixth, outer + g1 * (1 / 12), outer - g1 * (1 / 12), g2)
}

/// Aᵀ applied to a 6-vector (the output transform of one row or column).
@inline(__always)
private func outputTransform(
    _ m0: Float8, _ m1: Float8, _ m2: Float8, _ m3: Float8, _ m4: Float8, _ m5: Float8
) -> (Float8, Float8, Float8, Float8) {
    let s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4
    return (m0 + s12 + s34, d12 + 2 * d34, s12 + 4 * s34, d12 + 8 * d34 + m5)
}

/// U[ξ, i, j] = (G g Gᵀ)[ξ] for the kernel of output channel i and input
/// channel j of the convolution being computed, which is either `weight`
/// itself ([K, C, 3, 3]; U is [36, K, C]) or, with `forDataGradient`, its
/// data gradient: input and output channels swapped and the kernel rotated
/// by 180° (U is [36, C, K]).
///
/// `rowRange` and `columnRange`: the output and input channels of the
/// convolution being computed whose kernels to transform (U is then
/// [36, rowRange.count, columnRange.count]).
func winogradTransformWeights(
    _ u: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>,
    outputChannels K: Int, inputChannels C: Int, forDataGradient: Bool,
    rowRange allRows: Range<Int>, columnRange range: Range<Int>
) {
    let columns = range.count
    let plane = allRows.count * columns
    let u = SendablePointer(u), weight = SendablePointer(UnsafeMutablePointer(mutating: weight))
    parallelForBalanced(allRows.count, grain: transformGrain(allRows.count, minimum: 4096 / columns)) { rowIndices in
        let rowRange = (allRows.lowerBound + rowIndices.lowerBound)..<(allRows.lowerBound + rowIndices.upperBound)
        withUnsafeTemporaryAllocation(of: Float8.self, capacity: 9 + 18) { buffer in
            let g = buffer.baseAddress!, out = g + 9
            // The 9 taps of 8 kernels, staged tap-major as plain floats (writing
            // single SIMD lanes compiles to slow insert chains).
            let staged = UnsafeMutableRawPointer(g).assumingMemoryBound(to: Float.self)
            for i in rowRange {
                var j = range.lowerBound
                while j < range.upperBound {
                    let lanes = min(8, range.upperBound - j)
                    if lanes < 8 { staged.update(repeating: 0, count: 72) }
                    if forDataGradient {
                        for lane in 0..<lanes {
                            let kernel = weight.base + ((j + lane) * C + i) * 9
                            for t in 0..<9 { staged[t * 8 + lane] = kernel[8 - t] }
                        }
                    } else {
                        let kernels = weight.base + (i * C + j) * 9
                        for lane in 0..<lanes {
                            for t in 0..<9 { staged[t * 8 + lane] = kernels[lane * 9 + t] }
                        }
                    }
                    // G g: each of the 3 columns becomes 6 values (tmp is 6×3, in out[0..<18]).
                    for s in 0..<3 {
                        let c = kernelTransform(g[s], g[3 + s], g[6 + s])
                        out[s] = c.0; out[3 + s] = c.1; out[6 + s] = c.2
                        out[9 + s] = c.3; out[12 + s] = c.4; out[15 + s] = c.5
                    }
                    // (G g) Gᵀ: each of the 6 rows becomes 6 values, written to U.
                    let target = u.base + (i - allRows.lowerBound) * columns + (j - range.lowerBound)
                    for r in 0..<6 {
                        let v = kernelTransform(out[3 * r], out[3 * r + 1], out[3 * r + 2])
                        store(v.0, target + (6 * r + 0) * plane, lanes)
                        store(v.1, target + (6 * r + 1) * plane, lanes)
                        store(v.2, target + (6 * r + 2) * plane, lanes)
                        store(v.3, target + (6 * r + 3) * plane, lanes)
                        store(v.4, target + (6 * r + 4) * plane, lanes)
                        store(v.5, target + (6 * r + 5) * plane, lanes)
                    }
                    j += lanes
                }
            }
        }
    }
}

@inline(__always)
private func store(_ v: Float8, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == 8 {
        store8(v, p, 0)
    } else {
        for lane in 0..<lanes { p[lane] = v[lane] }
    }
}

/// The values of 8 tiles at `offsets` in `source`, zero where an offset is
/// -1; with `whole` (no offset of the group is -1), without the tests.
@inline(__always)
private func gather8(_ source: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>, whole: Bool) -> Float8 {
    if whole {
        return Float8(source[offsets[0]], source[offsets[1]], source[offsets[2]], source[offsets[3]],
                      source[offsets[4]], source[offsets[5]], source[offsets[6]], source[offsets[7]])
    }
    var lanes = Float8.zero
    for lane in 0..<8 where offsets[lane] >= 0 { lanes[lane] = source[offsets[lane]] }
    return lanes
}

/// Writes (or adds) 8 tiles' values at `offsets` in `target`, skipping the
/// offsets of -1; with `whole` (none is -1), without the tests.
@inline(__always)
private func scatter8(_ values: Float8, _ target: UnsafeMutablePointer<Float>, _ offsets: UnsafePointer<Int>,
                      whole: Bool, accumulate: Bool) {
    if whole {
        if accumulate {
            for lane in 0..<8 { target[offsets[lane]] += values[lane] }
        } else {
            for lane in 0..<8 { target[offsets[lane]] = values[lane] }
        }
    } else if accumulate {
        for lane in 0..<8 where offsets[lane] >= 0 { target[offsets[lane]] += values[lane] }
    } else {
        for lane in 0..<8 where offsets[lane] >= 0 { target[offsets[lane]] = values[lane] }
    }
}

/// The 6 transformed values of a row, 8 tiles each, `stride` apart.
@inline(__always)
private func store6(_ r: (Float8, Float8, Float8, Float8, Float8, Float8), _ base: UnsafeMutablePointer<Float>, stride: Int) {
    store8(r.0, base, 0)
    store8(r.1, base + stride, 0)
    store8(r.2, base + 2 * stride, 0)
    store8(r.3, base + 3 * stride, 0)
    store8(r.4, base + 4 * stride, 0)
    store8(r.5, base + 5 * stride, 0)
}

// MARK: - The convolution

/// The planes a convolution reads, by image and channel: those of one tensor
/// [N, C, H, W], or those of the parts [N, Cᵢ, H, W] of a concatenation
/// along channels, read where they are. PSP's head convolves c4 and its
/// four pyramid branches without building their 4096-channel
/// concatenation (256 MiB at 1024²).
struct ChannelPlanes: @unchecked Sendable {
    /// In channel order.
    private let parts: [(base: UnsafePointer<Float>, channels: Int)]
    let plane: Int

    init(_ base: UnsafePointer<Float>, channels: Int, plane: Int) {
        self.init(parts: [(base, channels)], plane: plane)
    }

    init(parts: [(base: UnsafePointer<Float>, channels: Int)], plane: Int) {
        self.parts = parts
        self.plane = plane
    }

    /// The plane of channel `channel` (counted across the parts) of image `image`.
    @inline(__always)
    func plane(image: Int, channel: Int) -> UnsafePointer<Float> {
        var c = channel
        for part in parts {
            if c < part.channels { return part.base + (image * part.channels + c) * plane }
            c -= part.channels
        }
        preconditionFailure("channel \(channel) past the parts' \(parts.map(\.channels))")
    }
}

/// `output[N, K, P, Q] (=|+=) conv(input[N, C, H, W], kernels) + bias[K]`
/// for a geometry that `Winograd.applies(to:)`, with the kernels already
/// transformed into `u[36, K, C]` (`winogradTransformWeights`) and
/// `plan.slots` scratch areas of `plan.slotSize` at `scratch`.
///
/// Each image's tiles are cut into equal chunks; per chunk, the inputs are
/// transformed into V[36, C, chunk], the 36 GEMMs run into M[36, K, chunk]
/// and M is transformed back into the output, so the scratch is bounded by
/// the chunk, not by the image. A chunk never spans two images and its size
/// depends on the image alone, so every GEMM of an image has the same shape
/// whatever the batch and the worker count: an image's result does not
/// depend on the batch it is in (data-parallel training relies on it), bit
/// for bit. Chunks are dealt to the workers, each with its own scratch; the
/// leftover chunks (fewer than the workers) split their transforms over
/// channels and their 36 GEMMs over the workers.
///
/// The kernels cover `inputChannels` × `outputChannels` (all of one side;
/// `WinogradPlan.kernelBlock`). With a block of input channels, each chunk's
/// M[36, K, chunk] lives in `sums` (one per chunk of the pass) across the
/// blocks: the first block's GEMMs overwrite it, the others add to it, and
/// the last block transforms it into the output. With a block of output
/// channels, only those are computed and written. `items`: the chunks of
/// the batch (numbered image by image) of this pass.
func winogradConvolution(
    output: UnsafeMutablePointer<Float>, input: ChannelPlanes,
    transformedWeights u: UnsafePointer<Float>, epilogue: ConvolutionEpilogue,
    geometry g: ConvGeometry, plan: WinogradPlan, accumulate: Bool, scratch: UnsafeMutablePointer<Float>,
    inputChannels block: Range<Int>, outputChannels outputs: Range<Int>, sums: UnsafeMutablePointer<Float>?,
    items: Range<Int>
) {
    let (C, W, P, Q) = (g.inputChannels, g.inputWidth, g.outputHeight, g.outputWidth)
    precondition(sums == nil || outputs.count == g.outputChannels, "blocks of input and output channels at once")
    // K: the output channels computed here; the output's images keep their whole stride.
    let (K, imageOutputs) = (outputs.count, g.outputChannels * P * Q)
    let (rowAxis, columnAxis) = (plan.rows, plan.columns)
    let tilesPerImage = rowAxis.count * columnAxis.count
    let (chunk, chunksPerImage) = (plan.chunk, plan.chunksPerImage)
    precondition(sums != nil || block.count == C, "a block of input channels needs sums across the blocks")
    let (beta, transformsOutput): (Float, Bool) = (block.lowerBound == 0 ? 0 : 1, block.upperBound == C)
    let slotSize = plan.slotSize
    let scratch = SendablePointer(scratch)
    let sums = sums.map { SendablePointer($0) }
    let output = SendablePointer(output)
    let u = SendablePointer(UnsafeMutablePointer(mutating: u))

    /// One chunk: transforms, GEMMs, inverse transform. Its parallel loops
    /// run serially when the caller is already one of several workers.
    func process(_ item: Int, slot: Int, tables: WinogradTileTables) {
        let v = scratch.base + slot * slotSize
        let m = SendablePointer(sums.map { $0.base + (item - items.lowerBound) * 36 * K * chunk } ?? v + 36 * block.count * chunk)
        let image = item / chunksPerImage
        let first = (item % chunksPerImage) * chunk
        let count = min(chunk, tilesPerImage - first)
        let width = (count + 7) & ~7   // GEMM columns: whole groups of 8 tiles
        winogradTileOffsets(tables, tiles: first..<(first + count), rows: rowAxis, columns: columnAxis, inputWidth: W, outputWidth: Q)
        let vs = SendablePointer(v)
        let b = block.count
        // Balanced: the two halves of a static split often finish 5-10 % apart.
        parallelForBalanced(b, grain: transformGrain(b, minimum: 4096 / width)) { channels in
            winogradInputTransform(vs.base, input: input, image: image, firstChannel: block.lowerBound,
                                   offsets: tables.inputOffsets, whole: tables.wholeInputGroups, channels: channels, totalChannels: b, chunk: chunk, width: width)
        }
        // M[ξ] (K × tiles) (+)= U[ξ] (K × block) × V[ξ] (block × tiles)
        parallelForBalanced(36, grain: 2) { xis in
            for xi in xis {
                BLAS.sgemm(.none, .none, m: K, n: width, k: b, a: u.base + xi * K * b, lda: b,
                           b: vs.base + xi * b * chunk, ldb: chunk, beta: beta, c: m.base + xi * K * chunk, ldc: chunk)
            }
        }
        guard transformsOutput else { return }
        parallelForBalanced(K, grain: transformGrain(K, minimum: 4096 / width)) { channels in
            winogradOutputTransform(output.base + image * imageOutputs + outputs.lowerBound * P * Q, m: m.base,
                                    offsets: tables.outputOffsets, whole: tables.wholeOutputGroups, epilogue: epilogue, firstChannel: outputs.lowerBound,
                                    residualBase: image * imageOutputs + outputs.lowerBound * P * Q, channels: channels, totalChannels: K, plane: P * Q, chunk: chunk, width: width,
                                    accumulate: accumulate)
        }
    }

    let workers = Parallelism.workerCount
    let dealt = workers > 1 ? (items.count / workers) * workers : 0
    if dealt > 0 {
        parallelChunks(dealt, chunks: workers) { slot, range in
            let tables = WinogradTileTables(chunk: chunk)
            defer { tables.deallocate() }
            for item in range { process(items.lowerBound + item, slot: slot, tables: tables) }
        }
    }
    if dealt < items.count {
        let tables = WinogradTileTables(chunk: chunk)
        defer { tables.deallocate() }
        for item in (items.lowerBound + dealt)..<items.upperBound { process(item, slot: 0, tables: tables) }
    }
}

/// Channels per piece of a balanced transform loop over `channels`: about
/// eight pieces per worker, at least `minimum` channels each (less work
/// than that costs more to hand out than it gains).
func transformGrain(_ channels: Int, minimum: Int) -> Int {
    max(1, minimum, channels / (8 * Parallelism.workerCount))
}

/// A chunk's tiles as the transforms read them, filled by
/// `winogradTileOffsets` and shared by every channel: the offset of each
/// tile's 36 inputs and 16 outputs ([element, tile], `chunk` tiles, -1 outside
/// the image), and per group of 8 tiles whether none of its input (output)
/// offsets is -1: such a group, an interior one, is gathered and scattered
/// without per-lane tests. One per worker.
struct WinogradTileTables: @unchecked Sendable {
    let chunk: Int
    let inputOffsets: UnsafeMutablePointer<Int>
    let outputOffsets: UnsafeMutablePointer<Int>
    let wholeInputGroups: UnsafeMutablePointer<Bool>
    let wholeOutputGroups: UnsafeMutablePointer<Bool>

    /// `chunk`: a multiple of 8.
    init(chunk: Int) {
        precondition(chunk % 8 == 0)
        self.chunk = chunk
        inputOffsets = .allocate(capacity: 36 * chunk)
        outputOffsets = .allocate(capacity: 16 * chunk)
        wholeInputGroups = .allocate(capacity: chunk / 8)
        wholeOutputGroups = .allocate(capacity: chunk / 8)
    }

    func deallocate() {
        inputOffsets.deallocate()
        outputOffsets.deallocate()
        wholeInputGroups.deallocate()
        wholeOutputGroups.deallocate()
    }
}

/// Fills `tables` for the tiles `tiles` (at most its chunk, numbered over the
/// batch with `tilesPerImage` each; without `imageStrides`, those of one
/// image): offsets of -1 where a tile's input or output falls outside the
/// image (padding, or a partial tile), and -1 for the rest of the chunk.
func winogradTileOffsets(
    _ tables: WinogradTileTables, tiles: Range<Int>,
    rows rowAxis: WinogradAxis, columns columnAxis: WinogradAxis, inputWidth W: Int, outputWidth Q: Int,
    imageStrides: (input: Int, output: Int) = (0, 0), tilesPerImage: Int = .max
) {
    let (chunk, inputOffsets, outputOffsets) = (tables.chunk, tables.inputOffsets, tables.outputOffsets)
    for t in 0..<chunk {
        guard t < tiles.count else {
            for e in 0..<36 { inputOffsets[e * chunk + t] = -1 }
            for e in 0..<16 { outputOffsets[e * chunk + t] = -1 }
            continue
        }
        let (image, tile) = (tiles.lowerBound + t).quotientAndRemainder(dividingBy: tilesPerImage)
        let (row, column) = tile.quotientAndRemainder(dividingBy: columnAxis.count)
        let (inputBase, outputBase) = (image * imageStrides.input, image * imageStrides.output)
        for a in 0..<6 {
            let y = rowAxis.inputs[6 * row + a]
            for b in 0..<6 {
                let x = columnAxis.inputs[6 * column + b]
                inputOffsets[(6 * a + b) * chunk + t] = y >= 0 && x >= 0 ? inputBase + y * W + x : -1
            }
        }
        for a in 0..<4 {
            let y = rowAxis.outputs[4 * row + a]
            for b in 0..<4 {
                let x = columnAxis.outputs[4 * column + b]
                outputOffsets[(4 * a + b) * chunk + t] = y >= 0 && x >= 0 ? outputBase + y * Q + x : -1
            }
        }
    }
    // Per group of 8 tiles: whether any offset is -1.
    func whole(_ offsets: UnsafeMutablePointer<Int>, elements: Int, group: Int) -> Bool {
        for e in 0..<elements {
            let row = offsets + e * chunk + 8 * group
            for lane in 0..<8 where row[lane] < 0 { return false }
        }
        return true
    }
    for group in 0..<(chunk / 8) {
        tables.wholeInputGroups[group] = whole(inputOffsets, elements: 36, group: group)
        tables.wholeOutputGroups[group] = whole(outputOffsets, elements: 16, group: group)
    }
}

/// How a convolution's tiles are cut: the tiles along each axis, `chunk` tiles (a multiple of 8) per
/// chunk, `chunksPerImage` equal chunks per image, each within about 96 MB
/// of V and M (272 tiles for the FCN head's 2048 → 512, 144 for PSP's 4096 →
/// 512); wider chunks amortise each GEMM's packing of U[ξ] better (48 MB
/// chunks were 2–4 % slower end to end). `slots`: the
/// per-worker scratch areas the convolution needs.
///
/// `kernelBlock`: channels per block of transformed kernels. U is four
/// times the 3×3 weights: whole, PSP's head (4096 → 512) needs 302 MB and
/// FCN's 151 MB of scratch, which a training step would hold through its
/// backward. With `workspace.boundsWinogradScratch` (training), U stays
/// within half the workspace's `sharedColumnBudget` (16 MB) and a worker's
/// chunk within a quarter; with blocks of input channels the chunks' M are
/// kept across the blocks and summed over them (`sumsSize`), for as many
/// chunks at a time as fit the budget (`itemsPerPass`).
/// Inference keeps U whole and the chunks wide: blocks of 32 MB made PSP's
/// 480² prediction 14 % slower.
struct WinogradPlan {
    let rows: WinogradAxis
    let columns: WinogradAxis
    let chunk: Int
    let chunksPerImage: Int
    let slots: Int
    /// Channels per block of transformed kernels: input channels, or output
    /// channels with `blocksOutputChannels`.
    let kernelBlock: Int
    let blocksOutputChannels: Bool
    /// Scratch scalars of one worker: V[36, C or block, chunk], and M[36, K or block, chunk] unless kept in sums.
    let slotSize: Int
    /// Chunks of the batch per pass over the blocks of input channels: all
    /// of them, unless their M (kept across the blocks) would pass the
    /// workspace's `sharedColumnBudget`; then each pass transforms the
    /// kernels again. At 1024², FCN's head and layer4 keep 38 MB of M
    /// instead of 75 MB, for a second transform of their kernels.
    let itemsPerPass: Int
    /// Scalars of the M of a pass's chunks, kept across blocks (0 without blocks).
    let sumsSize: Int

    init(_ g: ConvGeometry, workspace: Workspace) {
        (rows, columns) = Winograd.axes(g)
        let tiles = rows.count * columns.count
        let (C, K) = (g.inputChannels, g.outputChannels)
        // Bounded (training): U within half the budget, a worker's chunk within a quarter.
        let bounded = workspace.boundsWinogradScratch
        let kernelBudget = bounded ? workspace.sharedColumnBudget / 2 : Int.max / 2
        let blocks = (36 * K * C + kernelBudget - 1) / kernelBudget
        // Blocks of the larger side: of input channels, the M kept across
        // blocks is small (K); of output channels, each block transforms the
        // inputs again, which is cheap when C is small (a data gradient's
        // convolution of dY: PSP's head gives 512 → 4096).
        blocksOutputChannels = blocks > 1 && K > C
        kernelBlock = blocksOutputChannels ? (K + blocks - 1) / blocks : (C + blocks - 1) / blocks
        let blocked = blocks > 1
        // Channels of a slot's V and M: M lives in the sums with input blocks.
        let slotChannels = blocksOutputChannels ? C + kernelBlock : blocked ? kernelBlock : C + K
        let largest = max(32, ((bounded ? workspace.sharedColumnBudget / 4 : 24 << 20) / (36 * slotChannels)) & ~7)
        chunksPerImage = (tiles + largest - 1) / largest
        chunk = ((tiles + chunksPerImage - 1) / chunksPerImage + 7) & ~7
        slots = max(1, min(Parallelism.workerCount, g.batch * chunksPerImage))
        slotSize = 36 * slotChannels * chunk
        let items = g.batch * chunksPerImage
        let keepsSums = blocked && !blocksOutputChannels
        itemsPerPass = keepsSums ? min(items, max(slots, workspace.sharedColumnBudget / (36 * K * chunk))) : items
        sumsSize = keepsSums ? itemsPerPass * 36 * K * chunk : 0
    }
}

/// V[ξ, c, t] = (Bᵀ d_{c,t} B)[ξ] for every channel and every tile of the
/// chunk, 8 tiles at a time.
private func winogradInputTransform(
    _ v: UnsafeMutablePointer<Float>, input: ChannelPlanes, image: Int, firstChannel: Int,
    offsets: UnsafePointer<Int>, whole: UnsafePointer<Bool>,
    channels: Range<Int>, totalChannels C: Int, chunk: Int, width: Int
) {
    withUnsafeTemporaryAllocation(of: Float8.self, capacity: 72) { buffer in
        let d = buffer.baseAddress!, t = d + 36
        for c in channels {
            let source = input.plane(image: image, channel: firstChannel + c)
            let target = v + c * chunk
            for group in stride(from: 0, to: width, by: 8) {
                let isWhole = whole[group / 8]
                for e in 0..<36 { d[e] = gather8(source, offsets + e * chunk + group, whole: isWhole) }
                // Bᵀ d: columns
                for b in 0..<6 {
                    let r = inputTransform(d[b], d[6 + b], d[12 + b], d[18 + b], d[24 + b], d[30 + b])
                    t[b] = r.0; t[6 + b] = r.1; t[12 + b] = r.2; t[18 + b] = r.3; t[24 + b] = r.4; t[30 + b] = r.5
                }
                // (Bᵀ d) B: rows, into V
                for a in 0..<6 {
                    let row = 6 * a
                    let r = inputTransform(t[row], t[row + 1], t[row + 2], t[row + 3], t[row + 4], t[row + 5])
                    store6(r, target + row * C * chunk + group, stride: C * chunk)
                }
            }
        }
    }
}

/// output[tile's outputs] = epilogue(Aᵀ M_{k,t} A), or += Aᵀ M_{k,t} A with
/// `accumulate`, for every output channel and every tile of the chunk, 8
/// tiles at a time. `residualBase`: the offset in the residual of `output`;
/// `firstChannel`: the channel of `output` and of M's first row for the epilogue.
private func winogradOutputTransform(
    _ output: UnsafeMutablePointer<Float>, m: UnsafePointer<Float>, offsets: UnsafePointer<Int>, whole: UnsafePointer<Bool>,
    epilogue: ConvolutionEpilogue, firstChannel: Int, residualBase: Int, channels: Range<Int>, totalChannels K: Int, plane: Int, chunk: Int, width: Int,
    accumulate: Bool
) {
    withUnsafeTemporaryAllocation(of: Float8.self, capacity: 36 + 24) { buffer in
        let s = buffer.baseAddress!, y = s + 36
        for k in channels {
            let target = output + k * plane
            let source = m + k * chunk
            // The epilogue on 8 tiles at once, in the order of `ConvolutionEpilogue.apply`.
            let channel = firstChannel + k
            let scale = epilogue.scale.map { Float8(repeating: $0[channel]) }
            let shift = epilogue.shift.map { Float8(repeating: $0[channel]) }
            let residual = epilogue.residual.map { $0 + residualBase + k * plane }
            for group in stride(from: 0, to: width, by: 8) {
                let isWhole = whole[group / 8]
                // Aᵀ M: columns (rows 0..<4 of s, 6 wide)
                for col in 0..<6 {
                    let column = source + col * K * chunk + group
                    let r = outputTransform(
                        load8(column, 0), load8(column + 6 * K * chunk, 0), load8(column + 12 * K * chunk, 0),
                        load8(column + 18 * K * chunk, 0), load8(column + 24 * K * chunk, 0), load8(column + 30 * K * chunk, 0))
                    s[col] = r.0; s[6 + col] = r.1; s[12 + col] = r.2; s[18 + col] = r.3
                }
                // (Aᵀ M) A: rows
                for a in 0..<4 {
                    let row = 6 * a
                    let r = outputTransform(s[row], s[row + 1], s[row + 2], s[row + 3], s[row + 4], s[row + 5])
                    y[4 * a] = r.0; y[4 * a + 1] = r.1; y[4 * a + 2] = r.2; y[4 * a + 3] = r.3
                }
                for e in 0..<16 {
                    let offset = offsets + e * chunk + group
                    var values = y[e]
                    if !accumulate {
                        if let scale { values *= scale }
                        if let shift { values += shift }
                        if let residual { values += gather8(residual, offset, whole: isWhole) }
                        // max(v, 0) as the scalar epilogue has it: +0 for ±0, NaN kept.
                        if epilogue.relu { values = values.replacing(with: 0, where: values .<= 0) }
                    }
                    scatter8(values, target, offset, whole: isWhole, accumulate: accumulate)
                }
            }
        }
    }
}

// MARK: - Forward and data gradient

/// The forward of a convolution `Winograd.applies(to:)`: transforms the
/// kernels, then convolves. Overwrites `output` (through `epilogue`).
func winogradForward(
    output: UnsafeMutablePointer<Float>, input: ChannelPlanes,
    weight: UnsafePointer<Float>, epilogue: ConvolutionEpilogue,
    geometry g: ConvGeometry, workspace: Workspace
) {
    transformAndConvolve(output: output, input: input, weight: weight, original: g, convolution: g,
                         forDataGradient: false, epilogue: epilogue, workspace: workspace)
}

/// `winogradForward` on one tensor's planes.
func winogradForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, epilogue: ConvolutionEpilogue,
    geometry g: ConvGeometry, workspace: Workspace
) {
    winogradForward(output: output, input: ChannelPlanes(input, channels: g.inputChannels, plane: g.inputPlane),
                    weight: weight, epilogue: epilogue, geometry: g, workspace: workspace)
}

/// Transforms the kernels of the convolution `original` (for itself, or
/// rotated for its data gradient) into the workspace, then runs
/// `convolution` with them; the data gradient accumulates.
private func transformAndConvolve(
    output: UnsafeMutablePointer<Float>, input: ChannelPlanes, weight: UnsafePointer<Float>,
    original: ConvGeometry, convolution: ConvGeometry, forDataGradient: Bool,
    epilogue: ConvolutionEpilogue, workspace: Workspace
) {
    let plan = WinogradPlan(convolution, workspace: workspace)
    let (C, K, block) = (convolution.inputChannels, convolution.outputChannels, plan.kernelBlock)
    // Blocks of input channels (all outputs each) or of output channels (all inputs each).
    let blocks = stride(from: 0, to: plan.blocksOutputChannels ? K : C, by: block).map { first in
        plan.blocksOutputChannels ? (inputs: 0..<C, outputs: first..<min(K, first + block))
                                  : (inputs: first..<min(C, first + block), outputs: 0..<K)
    }
    let weights = 36 * blocks[0].inputs.count * blocks[0].outputs.count
    let base = workspace.scratch(weights + plan.sumsSize + plan.slots * plan.slotSize)
    let items = convolution.batch * plan.chunksPerImage
    for first in stride(from: 0, to: items, by: plan.itemsPerPass) {
        for (inputs, outputs) in blocks {
            if blocks.count > 1 || first == 0 {
                winogradTransformWeights(base, weight: weight, outputChannels: original.outputChannels,
                                         inputChannels: original.inputChannels, forDataGradient: forDataGradient,
                                         rowRange: outputs, columnRange: inputs)
            }
            winogradConvolution(output: output, input: input, transformedWeights: base, epilogue: epilogue,
                                geometry: convolution, plan: plan, accumulate: forDataGradient,
                                scratch: base + weights + plan.sumsSize, inputChannels: inputs, outputChannels: outputs,
                                sums: plan.sumsSize > 0 ? base + weights : nil,
                                items: first..<min(items, first + plan.itemsPerPass))
        }
    }
}

/// The geometry of the data gradient of `g` as a convolution of dY: channels
/// swapped, the padding that makes it a full correlation, the same dilation.
func winogradDataGradientGeometry(_ g: ConvGeometry) -> ConvGeometry? {
    let padH = 2 * g.dilationHeight - g.paddingHeight, padW = 2 * g.dilationWidth - g.paddingWidth
    guard padH >= 0, padW >= 0 else { return nil }
    let gradient = ConvGeometry(
        batch: g.batch, inputChannels: g.outputChannels, outputChannels: g.inputChannels,
        inputHeight: g.outputHeight, inputWidth: g.outputWidth, kernelHeight: 3, kernelWidth: 3,
        strideHeight: 1, strideWidth: 1, paddingHeight: padH, paddingWidth: padW,
        dilationHeight: g.dilationHeight, dilationWidth: g.dilationWidth)
    guard gradient.outputHeight == g.inputHeight, gradient.outputWidth == g.inputWidth,
          Winograd.applies(to: gradient) else { return nil }
    return gradient
}

/// dX += the data gradient of the convolution `g` for dY, by Winograd
/// (`winogradDataGradientGeometry(g)` must not be nil).
func winogradDataGradient(
    inputGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, geometry g: ConvGeometry, workspace: Workspace
) {
    transformAndConvolve(output: inputGradient, input: ChannelPlanes(outputGradient, channels: g.outputChannels, plane: g.outputPlane),
                         weight: weight, original: g, convolution: winogradDataGradientGeometry(g)!, forDataGradient: true,
                         epilogue: ConvolutionEpilogue(), workspace: workspace)
}

// MARK: - Weight gradient

/// Aᵀ's adjoint, A applied to a 4-vector: the output gradient of one row or
/// column of a tile taken back to the 6 values of M that made it.
@inline(__always)
private func outputGradientTransform(
    _ y0: Float8, _ y1: Float8, _ y2: Float8, _ y3: Float8
) -> (Float8, Float8, Float8, Float8, Float8, Float8) {
    let evenSum = y0 + y2, oddSum = y1 + y3
    let evenWide = y0 + 4 * y2, oddWide = 2 * y1 + 8 * y3
    return (y0, evenSum + oddSum, evenSum - oddSum, evenWide + oddWide, evenWide - oddWide, y3)
}

/// G's adjoint, Gᵀ applied to a 6-vector: the gradient of one transformed
/// row or column of a kernel taken back to its 3 taps.
@inline(__always)
private func kernelGradientTransform(
    _ u0: Float8, _ u1: Float8, _ u2: Float8, _ u3: Float8, _ u4: Float8, _ u5: Float8
) -> (Float8, Float8, Float8) {
    let sixth: Float = 1 / 6
    let inner = (u1 + u2) * sixth, outer = u3 + u4
    return (u0 * 0.25 - inner + outer * (1 / 24), (u2 - u1) * sixth + (u3 - u4) * (1 / 12), outer * sixth - inner + u5)
}

/// dW[K, C, 3, 3] += the weight gradient of the convolution `g`
/// (`Winograd.applies(to: g)`) for dY, as the adjoint of its Winograd form:
///
///     dW_kc = Σ_images Gᵀ [ Σ_tiles (A dY_k,t Aᵀ) ⊙ (Bᵀ d_c,t B) ] G
///
/// The sum over an image's tiles is 36 GEMMs, dM[ξ] (K × tiles) × V[ξ]ᵀ
/// (tiles × C), a quarter of im2col's multiply-adds (one per tile element
/// and channel pair instead of nine per output). Tiles are those of the
/// forward (`Winograd.axes`); a tile's outputs outside the image have no
/// gradient and its inputs outside the image are the padding's zeros.
///
/// Each image's term is computed on its own, in chunks of its tiles whose
/// size depends on the image alone, and the images' terms are summed
/// exactly (ExactSum.swift), so the result does not depend on how the batch
/// is split (data-parallel training relies on it); with `low`, a rank's
/// rounding remainder goes there.
///
/// The scratch stays within the workspace's `sharedColumnBudget`: the input
/// channels go in blocks whose dU[36, K, block] is summed over an image's
/// tiles before it is folded into dW, and the tiles in chunks whose dM and V
/// fit beside it.
func winogradWeightGradient(
    weightGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
    input: UnsafePointer<Float>, geometry g: ConvGeometry, workspace: Workspace,
    low: UnsafeMutablePointer<Float>? = nil
) {
    let (C, K, H, W, P, Q) = (g.inputChannels, g.outputChannels, g.inputHeight, g.inputWidth, g.outputHeight, g.outputWidth)
    let (rowAxis, columnAxis) = Winograd.axes(g)
    let tilesPerImage = rowAxis.count * columnAxis.count
    let layout = WinogradGradientLayout(g, tiles: tilesPerImage, budget: workspace.sharedColumnBudget)
    let (blockChannels, chunk) = (layout.blockChannels, layout.chunk)
    let chunksPerImage = (tilesPerImage + chunk - 1) / chunk
    // Past two images (or for a rank's two parts) the terms are summed in
    // Double, a block of channels at a time, from dW's content: each image's
    // term is folded into dW's block and added to the sums, which are
    // rounded into dW. With two, the first is folded straight into dW and
    // the second added to it.
    let sumsInDouble = g.batch > 2 || (low != nil && g.batch > 1)
    let termSize = g.batch == 2 && !sumsInDouble ? K * blockChannels * 9 : 0
    let base = workspace.scratch(36 * K * blockChannels + 36 * K * chunk + 36 * blockChannels * chunk + termSize)
    let du = SendablePointer(base)
    let dm = SendablePointer(base + 36 * K * blockChannels)
    let v = SendablePointer(dm.base + 36 * K * chunk)
    let term = SendablePointer(v.base + 36 * blockChannels * chunk)
    let sums = sumsInDouble ? workspace.sums(K * blockChannels * 9) : nil
    // The chunk's tiles: offsets of their inputs in x and outputs in dY, images included.
    let tables = WinogradTileTables(chunk: chunk)
    defer { tables.deallocate() }
    let dY = SendablePointer(UnsafeMutablePointer(mutating: outputGradient))
    // The offsets include the image's: all of x is image 0's planes.
    let x = ChannelPlanes(input, channels: C, plane: H * W)
    let dW = SendablePointer(weightGradient)

    /// Fills the offsets of chunk `index` of `image`; returns its GEMM width (whole groups of 8 tiles).
    func cut(image: Int, index: Int) -> Int {
        let first = image * tilesPerImage + index * chunk
        let count = min(chunk, (image + 1) * tilesPerImage - first)
        winogradTileOffsets(tables, tiles: first..<(first + count), rows: rowAxis, columns: columnAxis, inputWidth: W, outputWidth: Q,
                            imageStrides: (C * H * W, K * P * Q), tilesPerImage: tilesPerImage)
        return (count + 7) & ~7
    }

    /// Cuts a chunk and transforms its dY into dM; returns its GEMM width.
    func transformOutputGradient(image: Int, index: Int) -> Int {
        let width = cut(image: image, index: index)
        parallelFor(K, minimumChunk: max(1, 4096 / width)) { channels in
            winogradOutputGradientTransform(dm.base, outputGradient: dY.base, offsets: tables.outputOffsets,
                                            whole: tables.wholeOutputGroups, channels: channels,
                                            totalChannels: K, plane: P * Q, chunk: chunk, width: width)
        }
        return width
    }

    // One image in one chunk: its dM serves every block of channels.
    let keepsOutputGradient = g.batch == 1 && chunksPerImage == 1
    var width = keepsOutputGradient ? transformOutputGradient(image: 0, index: 0) : 0
    for first in stride(from: 0, to: C, by: blockChannels) {
        let block = min(blockChannels, C - first)
        let blockOfDW = FloatRows(dW.base + first * 9, stride: C * 9)
        if let sums { accumulateExactly(sums, terms: [blockOfDW], rows: K, width: block * 9, first: true) }
        for image in 0..<g.batch {
            for index in 0..<chunksPerImage {
                if !keepsOutputGradient { width = transformOutputGradient(image: image, index: index) }
                parallelFor(block, minimumChunk: max(1, 4096 / width)) { channels in
                    winogradInputTransform(v.base, input: x, image: 0, firstChannel: first, offsets: tables.inputOffsets,
                                           whole: tables.wholeInputGroups, channels: channels, totalChannels: block,
                                           chunk: chunk, width: width)
                }
                // dU[ξ] (K × block) (+)= dM[ξ] (K × tiles) × V[ξ]ᵀ (tiles × block)
                let beta: Float = index == 0 ? 0 : 1
                parallelFor(36) { xis in
                    for xi in xis {
                        BLAS.sgemm(.none, .transposed, m: K, n: block, k: width, a: dm.base + xi * K * chunk, lda: chunk,
                                   b: v.base + xi * block * chunk, ldb: chunk, beta: beta,
                                   c: du.base + xi * K * block, ldc: block)
                    }
                }
            }
            // The image's term: added to dW's block (the first of at most two),
            // written over it (summed in Double), or into `term` (the second of two).
            let isSecondTerm = !sumsInDouble && image > 0
            let (target, targetChannels, targetFirst) = isSecondTerm ? (term.base, block, 0) : (dW.base, C, first)
            parallelFor(K, minimumChunk: max(1, 4096 / block)) { rows in
                winogradFoldWeightGradient(target, du: du.base, rows: rows, outputChannels: K, inputChannels: targetChannels,
                                           firstChannel: targetFirst, blockChannels: block, overwrite: sumsInDouble || isSecondTerm)
            }
            if let sums {
                accumulateExactly(sums, terms: [blockOfDW], rows: K, width: block * 9, first: false)
            } else if isSecondTerm {
                addSecondTerm(FloatRows(term.base, stride: block * 9), into: blockOfDW, rows: K, width: block * 9)
            }
        }
        if let sums {
            storeRounded(sums, into: blockOfDW, low: low.map { FloatRows($0 + first * 9, stride: C * 9) },
                         rows: K, width: block * 9)
        }
    }
}

/// The scratch of `winogradWeightGradient` within `budget` scalars: input
/// channels per block, whose dU[36, K, block] takes at most half, and
/// tiles per chunk (a multiple of 8), whose dM[36, K, chunk] and V[36,
/// block, chunk] take the other half.
struct WinogradGradientLayout {
    let blockChannels: Int
    let chunk: Int

    init(_ g: ConvGeometry, tiles: Int, budget: Int) {
        let K = g.outputChannels
        blockChannels = min(g.inputChannels, max(8, budget / 2 / (36 * K)))
        let largest = max(8, (budget / 2 / (36 * (K + blockChannels))) & ~7)
        let chunks = (tiles + largest - 1) / largest
        chunk = ((tiles + chunks - 1) / chunks + 7) & ~7
    }
}

/// dM[ξ, k, t] = (A dY_k,t Aᵀ)[ξ] for every output channel of `channels`
/// and every tile of the chunk, 8 tiles at a time; zero where a tile's
/// output lies outside the image.
private func winogradOutputGradientTransform(
    _ dm: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>, offsets: UnsafePointer<Int>,
    whole: UnsafePointer<Bool>, channels: Range<Int>, totalChannels K: Int, plane: Int, chunk: Int, width: Int
) {
    withUnsafeTemporaryAllocation(of: Float8.self, capacity: 16 + 24) { buffer in
        let y = buffer.baseAddress!, s = y + 16
        for k in channels {
            let source = outputGradient + k * plane
            let target = dm + k * chunk
            for group in stride(from: 0, to: width, by: 8) {
                let isWhole = whole[group / 8]
                for e in 0..<16 { y[e] = gather8(source, offsets + e * chunk + group, whole: isWhole) }
                // A dY: each of the 4 columns becomes 6 values (s is 6×4).
                for b in 0..<4 {
                    let r = outputGradientTransform(y[b], y[4 + b], y[8 + b], y[12 + b])
                    s[b] = r.0; s[4 + b] = r.1; s[8 + b] = r.2; s[12 + b] = r.3; s[16 + b] = r.4; s[20 + b] = r.5
                }
                // (A dY) Aᵀ: each of the 6 rows becomes 6 values, into dM.
                for a in 0..<6 {
                    let r = outputGradientTransform(s[4 * a], s[4 * a + 1], s[4 * a + 2], s[4 * a + 3])
                    store6(r, target + 6 * a * K * chunk + group, stride: K * chunk)
                }
            }
        }
    }
}

/// dW[k, first + j, 3, 3] += Gᵀ dU[·, k, j] G (= with `overwrite`) for the
/// output channels `rows` and every input channel j of the block, 8
/// channels at a time; dW has `C` input channels.
private func winogradFoldWeightGradient(
    _ dW: UnsafeMutablePointer<Float>, du: UnsafePointer<Float>, rows: Range<Int>,
    outputChannels K: Int, inputChannels C: Int, firstChannel: Int, blockChannels block: Int, overwrite: Bool
) {
    let plane = K * block
    withUnsafeTemporaryAllocation(of: Float8.self, capacity: 36 + 18) { buffer in
        let u = buffer.baseAddress!, h = u + 36
        for k in rows {
            var j = 0
            while j < block {
                let lanes = min(8, block - j)
                let source = du + k * block + j
                for xi in 0..<36 {
                    if lanes == 8 {
                        u[xi] = load8(source + xi * plane, 0)
                    } else {
                        var value = Float8.zero
                        for lane in 0..<lanes { value[lane] = source[xi * plane + lane] }
                        u[xi] = value
                    }
                }
                // dU Gᵀ… each of the 6 rows of dU becomes 3 values (h is 6×3).
                for a in 0..<6 {
                    let r = kernelGradientTransform(u[6 * a], u[6 * a + 1], u[6 * a + 2], u[6 * a + 3], u[6 * a + 4], u[6 * a + 5])
                    h[3 * a] = r.0; h[3 * a + 1] = r.1; h[3 * a + 2] = r.2
                }
                // …then each of the 3 columns becomes the 3 taps of one kernel column.
                for s in 0..<3 {
                    let r = kernelGradientTransform(h[s], h[3 + s], h[6 + s], h[9 + s], h[12 + s], h[15 + s])
                    for lane in 0..<lanes {
                        let kernel = dW + (k * C + firstChannel + j + lane) * 9
                        if overwrite {
                            kernel[s] = r.0[lane]
                            kernel[3 + s] = r.1[lane]
                            kernel[6 + s] = r.2[lane]
                        } else {
                            kernel[s] += r.0[lane]
                            kernel[3 + s] += r.1[lane]
                            kernel[6 + s] += r.2[lane]
                        }
                    }
                }
                j += lanes
            }
        }
    }
}
