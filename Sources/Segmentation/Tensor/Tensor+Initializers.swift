import RealModule

extension Tensor {
    public static func zeros(_ shape: Shape) -> Tensor {
        Tensor(shape: shape, repeating: 0)
    }

    /// `amplitude · sin(frequency · i + phase)` at flat index `i`, computed in
    /// Double and rounded to Float.
    ///
    /// A closed-form fill that Python reproduces bit for bit
    /// (`(amplitude * np.sin(frequency * np.arange(n) + phase)).astype(np.float32)`),
    /// so reference fixtures need to commit only outputs, never inputs.
    public static func sinusoid(
        _ shape: Shape, frequency: Double, phase: Double = 0, amplitude: Double = 1
    ) -> Tensor {
        Tensor(shape: shape) { buffer in
            for i in buffer.indices {
                buffer[i] = Float(amplitude * Double.sin(frequency * Double(i) + phase))
            }
        }
    }

    /// Uniform in `range`, drawn in row-major order from `generator`.
    public static func uniform(
        _ shape: Shape, in range: ClosedRange<Float>, using generator: inout some RandomNumberGenerator
    ) -> Tensor {
        Tensor(shape: shape) { buffer in
            for i in buffer.indices {
                buffer[i] = Float.random(in: range, using: &generator)
            }
        }
    }

    /// Normal with the given mean and standard deviation (Box–Muller),
    /// drawn in row-major order from `generator`.
    public static func normal(
        _ shape: Shape, mean: Float = 0, standardDeviation: Float = 1,
        using generator: inout some RandomNumberGenerator
    ) -> Tensor {
        Tensor(shape: shape) { buffer in
            var i = 0
            while i < buffer.count {
                // u1 in (0, 1] so the logarithm is finite.
                let u1 = 1 - Double(generator.next() >> 11) * 0x1p-53
                let u2 = Double(generator.next() >> 11) * 0x1p-53
                let radius = Double.sqrt(-2 * Double.log(u1))
                let angle = 2 * Double.pi * u2
                buffer[i] = mean + standardDeviation * Float(radius * Double.cos(angle))
                if i + 1 < buffer.count {
                    buffer[i + 1] = mean + standardDeviation * Float(radius * Double.sin(angle))
                }
                i += 2
            }
        }
    }

    /// Kaiming-normal initialization for a convolution weight
    /// `[outputChannels, inputChannels, kernelHeight, kernelWidth]`: standard
    /// deviation √(2 / fan), fan = outputChannels · kh · kw (fan-out, ReLU gain),
    /// as torchvision's ResNet and GluonCV's `Xavier(magnitude=2, factor_type="out")`.
    ///
    /// With `fanIn`, the fan is inputChannels · kh · kw instead: used for the
    /// 1×1 classifiers, whose fan-out (the class count) is tiny and would give
    /// logits of magnitude ~10 at initialization.
    public static func kaimingNormal(
        _ shape: Shape, fanIn: Bool = false, using generator: inout some RandomNumberGenerator
    ) -> Tensor {
        precondition(shape.rank == 4, "Kaiming initialization expects a [K, C, R, S] weight, got \(shape)")
        let fan = (fanIn ? shape[1] : shape[0]) * shape[2] * shape[3]
        return normal(shape, standardDeviation: Float((2.0 / Double(fan)).squareRoot()), using: &generator)
    }
}
