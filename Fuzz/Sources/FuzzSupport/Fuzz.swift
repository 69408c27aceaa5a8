import CFuzzerDriver
import Foundation

/// The test one fuzz target runs on every input. libFuzzer calls back through
/// a C function pointer, which cannot capture, so the test waits here; it is
/// set once, before the driver starts, and libFuzzer runs inputs on one thread.
nonisolated(unsafe) private var currentTest: ((Data) -> Void)?

/// Runs libFuzzer with the process's arguments, calling `test` with each input
/// as a fresh `Data` (its own heap copy, so AddressSanitizer sees reads past
/// its end). `test` must not crash on any input: a thrown error is the
/// expected answer to bad bytes, so targets use `try?`.
public func fuzz(_ test: @escaping (Data) -> Void) -> Never {
    currentTest = test
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv) { bytes, size in
        let data = size == 0 ? Data() : Data(bytes: bytes!, count: size)
        currentTest!(data)
        return 0
    }
    exit(status)
}
