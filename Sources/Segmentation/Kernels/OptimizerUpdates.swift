/// The optimizers' element-wise updates (SPEC §5, MXNet 1.x formulas) over
/// `range` of one tensor: w = weight, g = gradient, η = learning rate times
/// the tensor's multiplier; the state buffers are laid out like the weight.
/// `Optimizer` runs them over blocks of every trainable tensor in parallel.

/// sgd: m ← μ·m − η·wd·w − η·g;  w ← w + m
func sgdUpdate(weight w: UnsafeMutablePointer<Float>, momentum m: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>,
               range: Range<Int>, eta: Float, mu: Float, weightDecay wd: Float) {
    for i in range {
        let next = mu * m[i] - eta * wd * w[i] - eta * g[i]
        m[i] = next
        w[i] += next
    }
}

/// sgd's two halves, for a step that folds each gradient into the state as
/// soon as the backward finishes it (`Optimizer.absorb`): m ← μ·m − η·wd·w − η·g
/// while the backward runs, w ← w + m after it. The operations of
/// `sgdUpdate` in the same order, so the same bits.
func sgdMomentumUpdate(weight w: UnsafePointer<Float>, momentum m: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>,
                       range: Range<Int>, eta: Float, mu: Float, weightDecay wd: Float) {
    for i in range {
        m[i] = mu * m[i] - eta * wd * w[i] - eta * g[i]
    }
}

/// sgd's second half: w ← w + m.
func sgdWeightUpdate(weight w: UnsafeMutablePointer<Float>, momentum m: UnsafePointer<Float>, range: Range<Int>) {
    for i in range {
        w[i] += m[i]
    }
}

/// nag: ĝ = g + wd·w;  m ← μ·m + ĝ;  w ← w − η·(ĝ + μ·m)
func nagUpdate(weight w: UnsafeMutablePointer<Float>, momentum m: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>,
               range: Range<Int>, eta: Float, mu: Float, weightDecay wd: Float) {
    for i in range {
        let gHat = g[i] + wd * w[i]
        let next = mu * m[i] + gHat
        m[i] = next
        w[i] -= eta * (gHat + mu * next)
    }
}

/// adam: m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  w ← w − η_t·m/(√v + ε).
/// `etaT` is η·√(1−β2ᵗ)/(1−β1ᵗ).
func adamUpdate(weight w: UnsafeMutablePointer<Float>, first m: UnsafeMutablePointer<Float>, second v: UnsafeMutablePointer<Float>,
                gradient g: UnsafePointer<Float>, range: Range<Int>, etaT: Float, beta1: Float, beta2: Float, epsilon: Float) {
    for i in range {
        let gi = g[i]
        let mi = beta1 * m[i] + (1 - beta1) * gi
        let vi = beta2 * v[i] + (1 - beta2) * gi * gi
        m[i] = mi
        v[i] = vi
        w[i] -= etaT * mi / (vi.squareRoot() + epsilon)
    }
}

/// adam's two halves (see `sgdMomentumUpdate`): the moments from the
/// gradient while the backward runs, the weight from the moments after it.
func adamMomentsUpdate(first m: UnsafeMutablePointer<Float>, second v: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>,
                       range: Range<Int>, beta1: Float, beta2: Float) {
    for i in range {
        let gi = g[i]
        m[i] = beta1 * m[i] + (1 - beta1) * gi
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi
    }
}

/// adam's second half: w ← w − η_t·m/(√v + ε).
func adamWeightUpdate(weight w: UnsafeMutablePointer<Float>, first m: UnsafePointer<Float>, second v: UnsafePointer<Float>,
                      range: Range<Int>, etaT: Float, epsilon: Float) {
    for i in range {
        w[i] -= etaT * m[i] / (v[i].squareRoot() + epsilon)
    }
}

/// adagrad: h ← h + g²;  w ← w − η·g/√(h + ε)
func adagradUpdate(weight w: UnsafeMutablePointer<Float>, history h: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>,
                   range: Range<Int>, eta: Float, epsilon: Float) {
    for i in range {
        let gi = g[i]
        let hi = h[i] + gi * gi
        h[i] = hi
        w[i] -= eta * gi / (hi + epsilon).squareRoot()
    }
}

/// rmsprop (centered, Graves): n ← (1−γ1)·g² + γ1·n;  ḡ ← (1−γ1)·g + γ1·ḡ;
/// Δ ← γ2·Δ − η·g/√(n − ḡ² + ε);  w ← w + Δ
func rmspropUpdate(weight w: UnsafeMutablePointer<Float>, meanSquare n: UnsafeMutablePointer<Float>,
                   mean mg: UnsafeMutablePointer<Float>, delta d: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>,
                   range: Range<Int>, eta: Float, gamma1: Float, gamma2: Float, epsilon: Float) {
    for i in range {
        let gi = g[i]
        let ni = (1 - gamma1) * gi * gi + gamma1 * n[i]
        let mean = (1 - gamma1) * gi + gamma1 * mg[i]
        let delta = gamma2 * d[i] - eta * gi / (ni - mean * mean + epsilon).squareRoot()
        n[i] = ni
        mg[i] = mean
        d[i] = delta
        w[i] += delta
    }
}
