import Foundation
@testable import Segmentation
import Testing

@Suite("Batch loader", .serialized)
struct BatchLoaderTests {
    /// 5 training pairs of 20×16 with labels 0…2, and one damaged image when asked.
    func makeDataset(damaged: Bool = false) throws -> (DatasetFixture, ChannelDataset) {
        let fixture = try DatasetFixture()
        for i in 0..<5 {
            try fixture.writeImage("train/img\(i).png", width: 20, height: 16)
            try fixture.writeAnnotation("train_annotation/img\(i).png", width: 20, height: 16,
                                        values: (0..<320).map { UInt8(($0 + i) % 3) })
        }
        if damaged {
            let url = fixture.url("train/img3.png")
            let bytes = try Data(contentsOf: url)
            try bytes.prefix(bytes.count / 2).write(to: url)
        }
        for split in ["validation", "validation_annotation"] {
            try FileManager.default.createDirectory(at: fixture.url(split), withIntermediateDirectories: true)
        }
        let samples = try ChannelListing.scan(imageDirectory: fixture.url("train"), annotationDirectory: fixture.url("train_annotation")).samples
        return (fixture, ChannelDataset(name: "train", samples: samples))
    }

    func loader(_ dataset: ChannelDataset, seed: UInt64, start: Int = 0) -> TrainingBatchLoader {
        TrainingBatchLoader(dataset: dataset, batchSize: 2, classCount: 3,
                            transform: TrainingTransform(baseSize: 24, cropSize: 16), seed: seed, startBatch: start)
    }

    @Test func sameSeedSameBytesAndRolloverAcrossEpochs() throws {
        let (fixture, dataset) = try makeDataset()
        defer { fixture.remove() }
        let a = loader(dataset, seed: 7), b = loader(dataset, seed: 7), c = loader(dataset, seed: 8)
        defer { a.stop(); b.stop(); c.stop() }
        var names: [String] = []
        var differs = false
        for _ in 0..<5 {
            let x = try a.next(), y = try b.next(), z = try c.next()
            #expect(x.images == y.images && x.labels == y.labels && x.names == y.names)
            differs = differs || x.images != z.images
            #expect(x.images.shape == [2, 3, 16, 16] && x.labels.count == 2 * 16 * 16)
            #expect(Set(x.labels).isSubset(of: [0, 1, 2, 255]))
            names += x.names
        }
        #expect(differs, "a different seed gave the same batches")
        // 10 positions = two whole epochs of 5: batch 2 straddles the boundary, and
        // each epoch is a permutation of all samples.
        #expect(Set(names.prefix(5)).count == 5 && Set(names.suffix(5)).count == 5)
    }

    @Test func resumingAtABatchGivesTheSameBatches() throws {
        let (fixture, dataset) = try makeDataset()
        defer { fixture.remove() }
        let fresh = loader(dataset, seed: 3), resumed = loader(dataset, seed: 3, start: 3)
        defer { fresh.stop(); resumed.stop() }
        for _ in 0..<3 { _ = try fresh.next() }
        for _ in 0..<3 {
            let x = try fresh.next(), y = try resumed.next()
            #expect(x.images == y.images && x.labels == y.labels)
        }
    }

    @Test func aDamagedFileSurfacesAsAnErrorNamingIt() throws {
        let (fixture, dataset) = try makeDataset(damaged: true)
        defer { fixture.remove() }
        let l = loader(dataset, seed: 1)
        defer { l.stop() }
        var message: String?
        for _ in 0..<3 {
            do { _ = try l.next() } catch { message = "\(error)"; break }
        }
        #expect(message?.contains("img3.png") == true, "got \(String(describing: message))")
    }

    @Test func validationWholeImagesAndCrops() throws {
        let (fixture, dataset) = try makeDataset()
        defer { fixture.remove() }
        let whole = Array(ValidationBatches(dataset: dataset, batchSize: 16, classCount: 3, transform: ValidationTransform(cropSize: nil)))
        #expect(whole.count == 5)
        let first = try whole[0].get()
        #expect(first.images.shape == [1, 3, 16, 20] && first.labels.count == 320)
        let crops = Array(ValidationBatches(dataset: dataset, batchSize: 2, classCount: 3, transform: ValidationTransform(cropSize: 8)))
        #expect(crops.count == 3)
        #expect(try crops[0].get().images.shape == [2, 3, 8, 8] && crops[2].get().images.shape == [1, 3, 8, 8])
    }

    // MARK: Lifetime (issue 15, defect 5)

    @Test func droppingTheLastReferenceStopsTheThreads() throws {
        let (fixture, dataset) = try makeDataset()
        defer { fixture.remove() }
        var loader: TrainingBatchLoader? = self.loader(dataset, seed: 3)
        _ = try loader!.next()  // the producer thread is running and has filled the queue
        weak let dropped = loader
        let queue = loader!.queue
        loader = nil
        #expect(dropped == nil, "a producer thread still holds the loader")
        let deadline = Date().addingTimeInterval(10)
        while queue.runningProducers > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(queue.runningProducers == 0, "the producer thread outlived its loader")
    }

    @Test func nextAfterStopThrowsInsteadOfBlocking() throws {
        let (fixture, dataset) = try makeDataset()
        defer { fixture.remove() }
        let loader = self.loader(dataset, seed: 4)
        _ = try loader.next()
        loader.stop()
        let answered = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<Batch, any Error>?
        Thread { outcome = Result { try loader.next() }; answered.signal() }.start()
        #expect(answered.wait(timeout: .now() + 10) == .success, "next() after stop() blocked")
        guard case .failure(let error)? = outcome else {
            Issue.record("next() after stop() returned a batch")
            return
        }
        #expect(error as? BatchLoaderError == .stopped)
    }
}
