import Foundation
import Segmentation

/// The PyTorch reference file written by Fixtures/generate_kernel_fixtures.py.
///
/// Each case's metadata records the op, its parameters and the closed-form
/// fill of every input; the tensors `<case>/output` and `<case>/grad_<input>`
/// are PyTorch's results.
struct KernelFixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    static let shared: KernelFixtures = {
        let url = directory.appendingPathComponent("kernels.safetensors")
        do {
            return KernelFixtures(file: try SafeTensorsFile(contentsOf: url))
        } catch {
            fatalError("cannot load \(url.path): \(error) — regenerate it with generate_kernel_fixtures.py")
        }
    }()

    let file: SafeTensorsFile

    struct Case {
        let name: String
        let op: String
        let parameters: [String: Any]
        let record: [String: Any]
        let inputs: [String: Tensor]
        let projection: Tensor?
        let results: [String: Tensor]

        func int(_ key: String) -> Int { (parameters[key] as! NSNumber).intValue }
        func bool(_ key: String) -> Bool { (parameters[key] as! NSNumber).boolValue }
    }

    var caseNames: [String] { file.metadata.keys.sorted() }

    func cases(op: String) -> [Case] {
        caseNames.map(self.case).filter { $0.op == op }
    }

    func `case`(_ name: String) -> Case {
        let record = try! JSONSerialization.jsonObject(with: Data(file.metadata[name]!.utf8)) as! [String: Any]
        func fill(_ spec: Any) -> Tensor {
            let spec = spec as! [String: Any]
            return Tensor.sinusoid(
                Shape((spec["shape"] as! [NSNumber]).map(\.intValue)),
                frequency: (spec["frequency"] as! NSNumber).doubleValue,
                phase: (spec["phase"] as! NSNumber).doubleValue,
                amplitude: (spec["amplitude"] as! NSNumber).doubleValue)
        }
        let inputs = (record["inputs"] as! [String: Any]).mapValues(fill)
        var results: [String: Tensor] = [:]
        for (key, tensor) in file.tensors where key.hasPrefix(name + "/") {
            results[String(key.dropFirst(name.count + 1))] = tensor
        }
        return Case(
            name: name, op: record["op"] as! String, parameters: record["params"] as? [String: Any] ?? [:],
            record: record, inputs: inputs, projection: record["projection"].map(fill), results: results)
    }
}
