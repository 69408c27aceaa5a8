import Foundation
@testable import Segmentation
import Testing

/// SPEC §10's equivalence contract, with ranks as threads of this process
/// (`ThreadCommunicator`): N workers, each on its contiguous share of the
/// global batch, against one worker on the whole batch.
@Suite("DataParallel", .serialized)
struct DataParallelTests {
    static let globalBatchSize = 6
    static let crop = 32
    static let classCount = 3

    /// A seeded global batch: noise images, labels in 0..<3 with ~10 % ignored.
    static func globalBatch(crop: Int = crop) -> Batch {
        var generator = SplitMix64(seed: 12)
        let n = globalBatchSize, pixels = crop * crop
        let images = Tensor(shape: [n, 3, crop, crop], scalars: (0..<(n * 3 * pixels)).map { _ in Float.random(in: -2...2, using: &generator) })
        let labels = (0..<(n * pixels)).map { _ -> UInt8 in
            let draw = Int.random(in: 0..<10, using: &generator)
            return draw == 0 ? ignoreLabel : UInt8(draw % classCount)
        }
        return Batch(images: images, labels: labels, names: (0..<n).map { "s\($0)" })
    }

    /// Samples `range` of a batch.
    static func share(_ batch: Batch, _ range: Range<Int>) -> Batch {
        let crop = batch.images.shape.height, plane = crop * crop
        let images = Tensor(shape: [range.count, 3, crop, crop],
                            scalars: Array(batch.images.scalars[(range.lowerBound * 3 * plane)..<(range.upperBound * 3 * plane)]))
        return Batch(images: images, labels: Array(batch.labels[(range.lowerBound * plane)..<(range.upperBound * plane)]),
                     names: Array(batch.names[range]))
    }

    static let configuration: TrainingConfiguration = {
        try! TrainingConfiguration.parse([
            "num_classes": "\(classCount)", "num_training_samples": "18", "optimizer": "sgd", "learning_rate": "0.01",
            "momentum": "0.9", "weight_decay": "0.0001", "mini_batch_size": "\(globalBatchSize)", "crop_size": "\(crop)",
            "use_pretrained_model": "False",
        ]).0
    }()

    /// FCN on ResNet-50 with the aux head (BN everywhere, dropout 0.1 in both heads), seeded,
    /// with each bottleneck's last BN γ at zero ("zero-γ" start, Goyal et al. 2017).
    ///
    /// Why zero-γ: from the default start (γ = 1) this deep BN network is
    /// chaotic at initialization: perturbing the weights by a relative 1e-7
    /// changed the second step's loss by 1.2 % and some BN γ gradients by
    /// 15 %, so any change of float summation order (which is all that
    /// separates N workers from one) grows past 1e-4 within three steps.
    /// Zero-γ blocks start as identities and the network is well conditioned.
    static let initial: (SegmentationNetwork, ParameterStore) = {
        var (network, parameters) = SegmentationNetwork.make(
            NetworkConfiguration(algorithm: .fcn, backbone: .resnet50, stem: .deep, classCount: classCount, auxiliaryHead: true),
            seed: 5)
        for id in parameters.ids where parameters.name(of: id).hasSuffix("bn3.weight") {
            parameters[id] = .zeros(parameters[id].shape)
        }
        return (network, parameters)
    }()

    /// `steps` SGD steps on the same global batch by `workers` thread-ranks;
    /// returns every rank's final parameters and the losses rank 0 saw.
    static func train(workers: Int, syncBatchNorm: Bool, steps: Int = 3, learningRate: Double = 0.01,
                      start: ParameterStore = initial.1, batch: Batch = globalBatch(),
                      fastConvolutions: Bool = FastConvolutions.isEnabled(for: .training)) -> (parameters: [ParameterStore], losses: [Float]) {
        let network = initial.0
        let communicators = ThreadCommunicator.group(size: workers)
        let results = ResultSlots<(ParameterStore, [Float])>(count: workers)
        let threads = communicators.map { communicator in
            Thread {
                let range = dataParallelShare(of: globalBatchSize, rank: communicator.rank, workers: workers)
                let mine = share(batch, range)
                var parameters = start
                var optimizer = Optimizer(configuration: configuration, parameters: parameters)
                let step = TrainingStep(network: network, parameters: parameters, loss: SegmentationLoss(),
                                        communicator: communicator, syncBatchNorm: syncBatchNorm)
                step.usesFastConvolutions = fastConvolutions
                var losses: [Float] = []
                for iteration in 0..<steps {
                    losses.append(step.run(mine, firstSample: range.lowerBound, seed: UInt64(100 + iteration),
                                           parameters: &parameters, optimizer: &optimizer, learningRate: learningRate).loss)
                }
                results.set(communicator.rank, (parameters, losses))
            }
        }
        threads.forEach { $0.stackSize = 8 << 20; $0.start() }
        results.waitForAll()
        let all = results.values
        return (all.map { $0.0 }, all[0].1)
    }

    /// Per tensor of `role`: ‖ΔW_N − ΔW_1‖ relative to that tensor's own
    /// ‖ΔW_1‖ (`own`) and to the whole network's ‖ΔW_1‖ (`whole`), with
    /// ΔW = final − initial.
    static func changeDifferences(_ parameters: ParameterStore, reference: ParameterStore, role: ParameterRole = .trainable)
        -> [(name: String, own: Double, whole: Double)]
    {
        let start = initial.1
        let ids = start.ids.filter { start.role(of: $0) == role }
        let sums = ids.map { id -> (difference: Double, change: Double) in
            let w0 = start[id].scalars, a = reference[id].scalars, b = parameters[id].scalars
            var difference = 0.0, change = 0.0
            for i in w0.indices {
                let d1 = Double(a[i]) - Double(w0[i]), dn = Double(b[i]) - Double(w0[i])
                difference += (dn - d1) * (dn - d1)
                change += d1 * d1
            }
            return (difference, change)
        }
        let wholeChange = sums.reduce(0) { $0 + $1.change }
        return zip(ids, sums).map { id, sum in
            (start.name(of: id), (sum.difference / max(sum.change, 1e-30)).squareRoot(),
             (sum.difference / max(wholeChange, 1e-30)).squareRoot())
        }
    }

    @Test func threadCommunicatorSumsBroadcastsAndDuplicates() {
        let communicators = ThreadCommunicator.group(size: 3)
        let results = ResultSlots<([Float], [Double], [UInt8])>(count: 3)
        for communicator in communicators {
            Thread {
                var values: [Float] = [Float(communicator.rank), 1, 0.5]
                communicator.allReduceSum(&values)
                var doubles = [Double(communicator.rank) * 10]
                communicator.duplicate().allReduceSum(&doubles)
                var bytes: [UInt8] = communicator.rank == 1 ? [7, 8, 9] : []
                communicator.broadcast(&bytes, root: 1)
                communicator.barrier()
                results.set(communicator.rank, (values, doubles, bytes))
            }.start()
        }
        results.waitForAll()
        for (values, doubles, bytes) in results.values {
            #expect(values == [3, 3, 1.5] && doubles == [30] && bytes == [7, 8, 9])
        }
        #expect(dataParallelShare(of: 7, rank: 0, workers: 3) == 0..<2 && dataParallelShare(of: 7, rank: 2, workers: 3) == 4..<7)
    }

    /// The contract: with syncbn, 2 and 3 workers change the weights as one
    /// worker does on the whole batch. Only float summation order differs
    /// (BN channel sums, the conv weight-gradient sums over images, the
    /// all-reduce), so after 3 SGD steps every tensor's change must match to
    /// 1e-4 of the network's whole change (measured: 3e-6), and to 1e-3 of
    /// its own change (measured: worst 1.2e-4, a tensor whose change is small
    /// because its block starts at zero-γ; most tensors ~1e-6). The losses
    /// agree to 1e-5. Without syncbn each worker normalizes its share with
    /// its own BN statistics, which must show (> 1e-2; measured 0.6–0.8),
    /// or the test could not fail.
    @Test func workersWithSyncBatchNormMatchOneWorkerOnTheGlobalBatch() throws {
        let (single, singleLosses) = Self.train(workers: 1, syncBatchNorm: false)
        for workers in [2, 3] {
            let (synchronized, losses) = Self.train(workers: workers, syncBatchNorm: true)
            for rank in 1..<workers {
                #expect(weightHash(synchronized[rank]) == weightHash(synchronized[0]), "rank \(rank) drifted from rank 0")
            }
            let differences = Self.changeDifferences(synchronized[0], reference: single[0])
            let worstWhole = try #require(differences.max { $0.whole < $1.whole })
            let worstOwn = try #require(differences.max { $0.own < $1.own })
            #expect(worstWhole.whole < 1e-4, "syncbn, \(workers) workers: \(worstWhole.name) differs by \(worstWhole.whole) of the whole change")
            #expect(worstOwn.own < 1e-3, "syncbn, \(workers) workers: \(worstOwn.name) differs by \(worstOwn.own) of its own change")
            let buffers = Self.changeDifferences(synchronized[0], reference: single[0], role: .buffer)
            let worstBuffer = try #require(buffers.max { $0.own < $1.own })
            #expect(worstBuffer.own < 1e-3, "syncbn, \(workers) workers: running statistics \(worstBuffer.name) differ by \(worstBuffer.own)")
            for (a, b) in zip(losses, singleLosses) { #expect(abs(a - b) <= 1e-5 * abs(b), "losses \(losses) vs \(singleLosses)") }

            let (independent, _) = Self.train(workers: workers, syncBatchNorm: false)
            let unsynchronized = Self.changeDifferences(independent[0], reference: single[0])
            let largest = unsynchronized.map(\.whole).max() ?? 0
            #expect(largest > 1e-2, "without syncbn, \(workers) workers should differ measurably; largest \(largest)")
            #expect(weightHash(independent[workers - 1]) == weightHash(independent[0]), "ranks drifted without syncbn")
        }
    }

    /// Past the contract's bound: with syncbn, 2 and 3 workers end three steps
    /// with one worker's weights and BN running statistics bit for bit,
    /// with im2col and with the fast convolutions (Winograd, the cropped
    /// kernel of layer4's 4×4 maps). Every gradient is an exact sum over the
    /// global batch's images rounded once (ExactSum.swift, GradientLowParts),
    /// so the split leaves nothing to grow along the trajectory.
    @Test(arguments: [false, true])
    func workersWithSyncBatchNormGetOneWorkersBits(fastConvolutions: Bool) {
        let (single, singleLosses) = Self.train(workers: 1, syncBatchNorm: false, fastConvolutions: fastConvolutions)
        for workers in [2, 3] {
            let (synchronized, losses) = Self.train(workers: workers, syncBatchNorm: true, fastConvolutions: fastConvolutions)
            let differing = single[0].ids.filter { single[0][$0].scalars != synchronized[0][$0].scalars }
            #expect(differing.isEmpty, "\(workers) workers: \(differing.count) tensors differ from one worker's, first \(differing.first.map { single[0].name(of: $0) } ?? "")")
            #expect(weightHash(synchronized[workers - 1]) == weightHash(synchronized[0]), "ranks drifted")
            for (a, b) in zip(losses, singleLosses) { #expect(abs(a - b) <= 1e-6 * abs(b), "losses \(losses) vs \(singleLosses)") }
        }
    }

    /// Ranks started with other hyperparameters stop, all of them, with the
    /// same error and before writing anything; so does a batch smaller than N.
    @Test func mismatchedRanksAndTooSmallBatchesFailOnEveryRank() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try TrainerTests.writeDataset(fixture, train: 2, validation: 1)
        func run(_ values: [[String: String]]) throws -> [String] {
            let communicators = ThreadCommunicator.group(size: values.count)
            let results = ResultSlots<String>(count: values.count)
            for (communicator, overrides) in zip(communicators, values) {
                var hyperparameters = ["num_classes": "4", "num_training_samples": "2", "epochs": "1", "crop_size": "32",
                                       "base_size": "48", "use_pretrained_model": "False", "mini_batch_size": "2"]
                hyperparameters.merge(overrides) { $1 }
                let configuration = try TrainingConfiguration.parse(hyperparameters).0
                Thread {
                    let trainer = Trainer(configuration: configuration, dataDirectory: fixture.root,
                                          modelDirectory: fixture.url("model"), communicator: communicator)
                    do {
                        try trainer.run()
                        results.set(communicator.rank, "no error")
                    } catch {
                        results.set(communicator.rank, "\(error)")
                    }
                }.start()
            }
            results.waitForAll()
            return results.values
        }
        let mismatch = try run([[:], ["learning_rate": "0.01"], [:]])
        #expect(mismatch == Array(repeating: DataParallelError.configurationMismatch(ranks: [1], workers: 3).description, count: 3))
        let small = try run([[:], [:], [:]])
        #expect(small == Array(repeating: DataParallelError.batchTooSmall(miniBatchSize: 2, workers: 3).description, count: 3))
        #expect(!FileManager.default.fileExists(atPath: fixture.url("model").path), "no partial model")
    }

    /// `--resume` with N workers (SPEC §10): a 2-worker job stopped by
    /// rank 0's event callback after epoch 1 stops on every rank (rank 1
    /// learns why, nobody waits forever), and resumed on 2 workers it ends
    /// with the bytes of the uninterrupted 2-worker job. Its checkpoint also
    /// resumes on 1 and on 3 workers, which finish the job.
    @Test func interruptedJobResumesOnAnyNumberOfWorkers() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try TrainerTests.writeDataset(fixture, train: 6, validation: 2)
        let (configuration, _) = try TrainingConfiguration.parse([
            "num_classes": "4", "num_training_samples": "6", "epochs": "3", "mini_batch_size": "3",
            "validation_mini_batch_size": "1", "crop_size": "32", "base_size": "48", "use_pretrained_model": "False",
            "syncbn": "True", "_seed": "5",
        ])
        struct Killed: Error, CustomStringConvertible { var description: String { "killed after epoch 1" } }
        /// One job of `workers` thread-ranks; every rank's outcome ("ok" or its
        /// error) and the epochs it trained (rank 0's events).
        func job(workers: Int, model: String, checkpoints: String, resume: Bool = false, killAfterEpoch: Int? = nil)
            -> (outcomes: [String], epochs: [Int])
        {
            let communicators = ThreadCommunicator.group(size: workers)
            let results = ResultSlots<String>(count: workers)
            let trained = ResultSlots<[Int]>(count: 1)
            for communicator in communicators {
                let thread = Thread {
                    let trainer = Trainer(configuration: configuration, dataDirectory: fixture.root, modelDirectory: fixture.url(model),
                                          checkpointDirectory: fixture.url(checkpoints), resume: resume, communicator: communicator)
                    var epochs: [Int] = []
                    do {
                        let summaries = try trainer.run { event in
                            guard case .epoch(let summary, _) = event else { return }
                            epochs.append(summary.epoch)
                            if summary.epoch == killAfterEpoch { throw Killed() }
                        }
                        results.set(communicator.rank, "ok, \(summaries.count) epochs")
                    } catch {
                        results.set(communicator.rank, "\(error)")
                    }
                    if communicator.isRoot { trained.set(0, epochs) }
                }
                thread.stackSize = 8 << 20
                thread.start()
            }
            guard results.waitForAll(seconds: 600), trained.waitForAll(seconds: 1) else {
                Issue.record("a rank of the \(workers)-worker job never finished")
                return ([], [])
            }
            return (results.values, trained.values[0])
        }
        func weights(_ model: String) throws -> [String: Tensor] {
            try SafeTensorsFile(contentsOf: fixture.url(model).appendingPathComponent("model_last.safetensors")).tensors
        }

        #expect(job(workers: 2, model: "whole", checkpoints: "whole-checkpoints").outcomes == ["ok, 3 epochs", "ok, 3 epochs"])
        let stopped = job(workers: 2, model: "killed", checkpoints: "checkpoints", killAfterEpoch: 1)
        #expect(stopped.outcomes == ["killed after epoch 1", DataParallelError.stoppedByRank0("killed after epoch 1").description])
        #expect(stopped.epochs == [0, 1])
        for workers in [1, 3] {
            try FileManager.default.copyItem(at: fixture.url("checkpoints"), to: fixture.url("checkpoints-\(workers)"))
        }
        // Resumed: only epoch 2 is trained, the first two come from the checkpoint.
        #expect(job(workers: 2, model: "killed", checkpoints: "checkpoints", resume: true) == (["ok, 3 epochs", "ok, 3 epochs"], [2]))
        let (a, b) = (try weights("whole"), try weights("killed"))
        #expect(a.count == b.count && a.keys.allSatisfy { a[$0] == b[$0] }, "the resumed 2-worker job differs from the uninterrupted one")
        let metrics = try String(contentsOf: fixture.url("killed").appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        #expect(metrics.split(separator: "\n").count == 3)
        for workers in [1, 3] {
            #expect(job(workers: workers, model: "resumed-\(workers)", checkpoints: "checkpoints-\(workers)", resume: true)
                == (Array(repeating: "ok, 3 epochs", count: workers), [2]))
            let metrics = try String(contentsOf: fixture.url("resumed-\(workers)").appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            #expect(metrics.split(separator: "\n").count == 3, "resumed on \(workers) workers: \(metrics)")
        }
    }

    /// One rank failing alone (its copy of an image is corrupt) ends the
    /// whole `mpirun` job non-zero, promptly (the other rank is waiting in a
    /// collective and MPI_Abort stops it), with one line naming the rank and
    /// the file, and no model written.
    @Test func mpirunStopsTheJobWhenOneRankFails() throws {
        let binary = SageMakerModeTests.segmentBinary
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "\(binary.path) was not built")
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try TrainerTests.writeDataset(DatasetFixture(root: fixture.url("good")), train: 4, validation: 2)
        // Rank 1's copy: the same names and sizes (so the ranks agree on the job), every training image unreadable.
        try FileManager.default.copyItem(at: fixture.url("good"), to: fixture.url("bad"))
        for index in 0..<4 {
            let url = fixture.url("bad/train/\(index).png")
            var bytes = try Data(contentsOf: url)
            bytes.replaceSubrange(0..<8, with: Data(repeating: 0x55, count: 8))
            try bytes.write(to: url)
        }
        try fixture.write("""
            {"num_classes": "4", "num_training_samples": "4", "epochs": "1", "mini_batch_size": "2", "syncbn": "True",
             "crop_size": "32", "base_size": "48", "use_pretrained_model": "False"}
            """, to: "hyperparameters.json")
        func rank(_ data: String) -> [String] {
            ["-np", "1", binary.path, "train", "--data", fixture.url(data).path, "--model-dir", fixture.url("model").path,
             "--hyperparameters", fixture.url("hyperparameters.json").path]
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["mpirun", "--allow-run-as-root", "--oversubscribe"] + rank("good") + [":"] + rank("bad")
        process.environment = ProcessInfo.processInfo.environment.merging(["SEGMENTATION_THREADS": "1"]) { $1 }
        let err = Pipe()
        (process.standardOutput, process.standardError) = (FileHandle.nullDevice, err)
        let started = Date()
        try process.run()
        let watchdog = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + 300, execute: watchdog)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        watchdog.cancel()
        #expect(Date().timeIntervalSince(started) < 300, "the job hung: \(stderr)")
        #expect(process.terminationStatus != 0)
        let reasons = stderr.split(separator: "\n").filter { $0.hasPrefix("Error: rank 1 of 2 failed:") }
        #expect(reasons.count == 1 && reasons[0].contains(fixture.url("bad/train").path), "\(stderr)")
        #expect(!stderr.contains("rank 0 of 2 failed"), "\(stderr)")
        print("one rank failing under mpirun, after \(Date().timeIntervalSince(started)) s:\n\(stderr)")
        let written = (try? FileManager.default.contentsOfDirectory(atPath: fixture.url("model").path)) ?? []
        #expect(written.isEmpty, "no partial model: \(written)")
    }

    /// `mpirun -np 2 segment train --sagemaker` as real processes: the log
    /// names resourceconfig.json's current host, the ranks' weights agree
    /// after the epoch, and rank 0 writes the model; a batch smaller than the
    /// number of ranks fails the job with a one-line reason and the failure file.
    @Test func mpirunTrainsTwoRanks() throws {
        let binary = SageMakerModeTests.segmentBinary
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "\(binary.path) was not built")
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        let environment = SageMakerEnvironment(root: fixture.root)
        try TrainerTests.writeDataset(DatasetFixture(root: environment.dataDirectory), train: 4, validation: 2)
        try fixture.write(#"{"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}"#, to: "opt/ml/input/config/resourceconfig.json")
        func mpirun(miniBatchSize: Int) throws -> (status: Int32, stdout: String, stderr: String) {
            try fixture.write("""
                {"num_classes": "4", "num_training_samples": "4", "epochs": "1", "mini_batch_size": "\(miniBatchSize)", "syncbn": "True",
                 "validation_mini_batch_size": "1", "crop_size": "32", "base_size": "48", "use_pretrained_model": "False"}
                """, to: "opt/ml/input/config/hyperparameters.json")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", binary.path,
                                 "train", "--sagemaker", "--sagemaker-root", fixture.root.path]
            process.environment = ProcessInfo.processInfo.environment.merging(
                ["SEGMENTATION_CHECK_WEIGHTS": "1", "SEGMENTATION_THREADS": "1"]) { $1 }
            let out = Pipe(), err = Pipe()
            (process.standardOutput, process.standardError) = (out, err)
            try process.run()
            let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
        }
        let good = try mpirun(miniBatchSize: 2)
        #expect(good.status == 0, "mpirun failed (is openmpi-bin installed?): \(good.stderr)")
        #expect(good.stdout.contains("#quality_metric. host: algo-2, epoch: 0, validation mIOU:"), "\(good.stdout)")
        #expect(good.stdout.components(separatedBy: "validation mIOU").count == 2, "rank 0 alone logs: \(good.stdout)")
        #expect(good.stderr.contains("the weights are identical on all 2 ranks"), "\(good.stderr)")
        #expect(FileManager.default.fileExists(atPath: environment.modelDirectory.appendingPathComponent("model.tar.gz").path))

        let bad = try mpirun(miniBatchSize: 1)
        #expect(bad.status != 0)
        let reason = DataParallelError.batchTooSmall(miniBatchSize: 1, workers: 2).description
        #expect(bad.stderr.contains("Error: \(reason)"), "\(bad.stderr)")
        #expect(try String(contentsOf: environment.failureFile, encoding: .utf8) == reason + "\n")
    }
}

/// One result slot per thread-rank, and a wait for all of them.
final class ResultSlots<Value>: @unchecked Sendable {
    // @unchecked Sendable: `slots` is only touched with `condition` locked.
    private let condition = NSCondition()
    private var slots: [Value?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: Value) {
        condition.lock()
        slots[index] = value
        condition.broadcast()
        condition.unlock()
    }

    func waitForAll() {
        condition.lock()
        while slots.contains(where: { $0 == nil }) { condition.wait() }
        condition.unlock()
    }

    /// Waits at most `seconds`; false when some slot is still empty then.
    func waitForAll(seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        condition.lock()
        defer { condition.unlock() }
        while slots.contains(where: { $0 == nil }) {
            if !condition.wait(until: deadline) { return !slots.contains(where: { $0 == nil }) }
        }
        return true
    }

    var values: [Value] {
        condition.lock()
        defer { condition.unlock() }
        return slots.map { $0! }
    }
}
