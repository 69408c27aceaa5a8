import Foundation
import Segmentation

/// The closed-form weights of Fixtures/fixture_fill.py, computed the same way
/// (see that file for the formula), so network fixtures commit only outputs.
enum NetworkFill {
    static func fnv1a64(_ text: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x100_0000_01B3
        }
        return h
    }

    static func tensor(named name: String, shape: Shape) -> Tensor {
        let h = fnv1a64(name)
        let frequency = 0.05 + Double(h % 1000) / 1000
        let phase = Double((h >> 10) % 1000) / 1000 * 3
        let (offset, amplitude): (Double, Double)
        if name.hasSuffix("running_mean") {
            (offset, amplitude) = (0, 0.1)
        } else if name.hasSuffix("running_var") {
            (offset, amplitude) = (1, 0.5)
        } else if shape.rank == 4 {
            (offset, amplitude) = (0, (2.0 / Double(shape[1] * shape[2] * shape[3])).squareRoot())
        } else if name.hasSuffix("weight") {
            (offset, amplitude) = (1, 0.2)
        } else {
            (offset, amplitude) = (0, 0.1)
        }
        return Tensor(shape: shape) { buffer in
            for i in buffer.indices {
                buffer[i] = Float(offset + amplitude * Foundation.sin(frequency * Double(i) + phase))
            }
        }
    }

    /// Overwrites every tensor of `parameters` with its closed-form fill.
    static func fill(_ parameters: inout ParameterStore) {
        for id in parameters.ids {
            parameters[id] = tensor(named: parameters.name(of: id), shape: parameters[id].shape)
        }
    }
}

/// A fixture file of network outputs next to this test target's sources.
func loadFixture(_ name: String) throws -> SafeTensorsFile {
    try SafeTensorsFile(contentsOf: KernelFixtures.directory.appendingPathComponent(name))
}
