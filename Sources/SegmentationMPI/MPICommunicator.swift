import CMPI
import Foundation
import Segmentation

/// The `Communicator` of a job launched by Open MPI's `mpirun` (SPEC §10).
///
/// `segment train` creates it only when the environment says mpirun started
/// the process (`MPICommunicator.isLaunchedByMPI`); a plain `segment train`
/// never initializes MPI. MPI is initialized with MPI_THREAD_MULTIPLE: the
/// gradient reduction thread and the training thread communicate at the same
/// time, each on its own communicator (`duplicate()`).
///
/// Large buffers are reduced in chunks below 2³¹ elements (MPI counts are `Int32`).
public final class MPICommunicator: Communicator, @unchecked Sendable {
    // @unchecked Sendable: `communicator`, `rank` and `size` are immutable
    // after init, and MPI_THREAD_MULTIPLE makes the MPI calls thread-safe;
    // the protocol's one-thread-per-communicator rule covers the rest.
    private let communicator: MPI_Comm
    public let rank: Int
    public let size: Int

    /// True when this process was started by mpirun (Open MPI or PMIx environment).
    public static var isLaunchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMIX_RANK"] != nil
    }

    public enum InitializationError: Error, CustomStringConvertible {
        case failed(String)
        public var description: String {
            switch self { case .failed(let reason): return "cannot initialize MPI: \(reason)" }
        }
    }

    /// Initializes MPI (once per process) and returns the world communicator.
    public static func world() throws -> MPICommunicator {
        var provided: Int32 = 0
        var argc: Int32 = 0
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
        let status = MPI_Init_thread(&argc, &argv, segmentation_mpi_thread_multiple(), &provided)
        guard status == segmentation_mpi_success() else { throw InitializationError.failed("MPI_Init_thread returned \(status)") }
        guard provided >= segmentation_mpi_thread_multiple() else {
            throw InitializationError.failed("this Open MPI build does not support MPI_THREAD_MULTIPLE (level \(provided))")
        }
        return MPICommunicator(segmentation_mpi_comm_world())
    }

    private init(_ communicator: MPI_Comm) {
        self.communicator = communicator
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(communicator, &rank)
        MPI_Comm_size(communicator, &size)
        self.rank = Int(rank)
        self.size = Int(size)
    }

    /// Ends MPI; call once, after the last collective, on every rank.
    public static func finalize() {
        MPI_Finalize()
    }

    private static let chunk = Int(Int32.max / 2)

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        reduce(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count, type: segmentation_mpi_float(),
               stride: MemoryLayout<Float>.stride)
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
        reduce(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count, type: segmentation_mpi_double(),
               stride: MemoryLayout<Double>.stride)
    }

    private func reduce(_ base: UnsafeMutableRawPointer?, count: Int, type: MPI_Datatype, stride: Int) {
        guard let base, count > 0 else { return }
        var start = 0
        while start < count {
            let n = min(Self.chunk, count - start)
            let status = MPI_Allreduce(segmentation_mpi_in_place(), base + start * stride, Int32(n), type,
                                       segmentation_mpi_sum(), communicator)
            precondition(status == segmentation_mpi_success(), "MPI_Allreduce returned \(status)")
            start += n
        }
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        var start = 0
        while start < buffer.count {
            let n = min(Self.chunk, buffer.count - start)
            let status = MPI_Bcast(base + start, Int32(n), segmentation_mpi_byte(), Int32(root), communicator)
            precondition(status == segmentation_mpi_success(), "MPI_Bcast returned \(status)")
            start += n
        }
    }

    public func barrier() {
        MPI_Barrier(communicator)
    }

    public func duplicate() -> any Communicator {
        var copy = MPI_Comm(bitPattern: 0)
        MPI_Comm_dup(communicator, &copy)
        return MPICommunicator(copy!)
    }

    public func abort(exitCode: Int32) -> Never {
        MPI_Abort(communicator, exitCode)
        exit(exitCode)
    }
}
