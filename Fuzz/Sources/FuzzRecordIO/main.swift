import FuzzSupport
import Segmentation

// MXNet RecordIO framing, then each record as the SageMaker Record protobuf
// of a recordio-protobuf answer (ProbabilityRecord.decode reads the framing
// itself, so it gets the whole input too).
fuzz { data in
    if let records = try? RecordIO.records(in: data, file: "fuzz.rec") {
        for record in records { _ = try? RecordIO.frame(record) }
    }
    _ = try? ProbabilityRecord.decode(data, file: "fuzz.rec")
}
