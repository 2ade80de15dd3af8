import Foundation

/// The shared benchmark result (schemas/bench_result.schema.json), as the iOS benchmark tests
/// write it. Percentiles are numpy 'linear', as on the host.
public enum BenchResult {
    public static func latency(runsMs: [Double], warmup: Int, threads: Int, loadMs: Double?, peakMemoryMB: Double?) -> [String: Any] {
        precondition(!runsMs.isEmpty, "a benchmark needs at least one timed run")
        return [
            "warmup": warmup, "runs": runsMs.count, "threads": threads,
            "load_ms": loadMs ?? NSNull(),
            "p50_ms": Aggregate.percentile(runsMs, 50), "p90_ms": Aggregate.percentile(runsMs, 90),
            "min_ms": runsMs.min()!, "max_ms": runsMs.max()!,
            "mean_ms": runsMs.reduce(0, +) / Double(runsMs.count),
            "end_to_end_p50_ms": NSNull(),
            "peak_memory_mb": peakMemoryMB ?? NSNull(),
        ]
    }

    public static func document(card: ModelCard, device: [String: Any], runtime: String, runtimeVersion: String?,
                                latency: [String: Any], notes: [String]) -> [String: Any] {
        var dev: [String: Any] = ["kind": "ios"]
        dev.merge(device) { _, new in new }
        return [
            "schema_version": 1,
            "run": ["id": UUID().uuidString, "date": ISO8601DateFormatter().string(from: Date()),
                    "git_commit": NSNull(), "git_dirty": NSNull()],
            "device": dev,
            "software": ["runtime": runtime, "runtime_version": runtimeVersion ?? NSNull(),
                         "converter": card.converter.name, "converter_version": card.converter.version],
            "model": ["artifact": card.artifact.file, "sha256": card.artifact.sha256, "format": card.format,
                      "precision": card.precision, "size_bytes": card.artifact.sizeBytes],
            "latency": latency,
            "parity": NSNull(),
            "status": "measured",
            "notes": notes,
        ]
    }

    /// Writes atomically (temporary file, then rename), creating the folder.
    public static func write(_ doc: [String: Any], to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: url, options: .atomic)
    }
}
