package org.neometer.app

import android.app.Activity
import android.os.Build
import android.os.Bundle
import android.os.Debug
import android.os.SystemClock
import android.util.Log
import org.neometer.core.BenchResult
import org.neometer.core.Json
import org.neometer.core.Letterbox
import org.neometer.core.Preprocess
import org.neometer.core.RgbImage
import java.io.File
import java.time.Instant
import java.util.UUID

/**
 * adb shell am start -W -n org.neometer.app/.BenchmarkActivity --es model PATH --ei runs N --ei threads T [--ez gpu true]
 *
 * Loads the model beside its card, times `warmup` + `runs` inferences on a synthetic frame that
 * went through the real preprocessing, and writes the shared result JSON to
 * files/bench/result.json (benchmarks.py --device android pulls it with `adb shell run-as`).
 * Runs on the main thread on purpose: `am start -W` returns once this activity has finished.
 */
class BenchmarkActivity : Activity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val out = File(filesDir, "bench/result.json")
        try {
            val doc = benchmark(
                File(intent.getStringExtra("model") ?: error("--es model PATH is required")),
                runs = intent.getIntExtra("runs", 50),
                threads = intent.getIntExtra("threads", 4),
                warmup = intent.getIntExtra("warmup", 5),
                useGpu = intent.getBooleanExtra("gpu", false),
            )
            write(out, Json.write(doc))
            Log.i(TAG, "wrote ${out.absolutePath}")
        } catch (e: Exception) {
            // The host reads the error from this file instead of waiting for a result.
            write(File(filesDir, "bench/error.txt"), e.toString())
            Log.e(TAG, "benchmark failed", e)
        }
        finish()
    }

    private fun benchmark(model: File, runs: Int, threads: Int, warmup: Int, useGpu: Boolean): Map<String, Any?> {
        val t0 = SystemClock.elapsedRealtimeNanos()
        val m = loadFrameModel(model, threads, useGpu)
        val loadMs = (SystemClock.elapsedRealtimeNanos() - t0) / 1e6
        m.use {
            val spec = it.card.preprocessing
            // A 1280x720 camera-sized frame, so end-to-end includes the letterbox at camera size.
            val frame = RgbImage(1280, 720, ByteArray(1280 * 720 * 3) { i -> (i * 37 % 251).toByte() })
            val e2eStart = SystemClock.elapsedRealtimeNanos()
            val input = Preprocess.normalize(Preprocess.letterbox(frame, spec), spec, it.card.inputLayout)
            repeat(warmup) { _ -> it.run(input) }
            val times = DoubleArray(runs) { _ ->
                val s = SystemClock.elapsedRealtimeNanos()
                it.run(input)
                (SystemClock.elapsedRealtimeNanos() - s) / 1e6
            }
            val e2eMs = (SystemClock.elapsedRealtimeNanos() - e2eStart) / 1e6
            val latency = BenchResult.latency(times, warmup, threads, loadMs, Debug.getNativeHeapAllocatedSize() / 1e6)
            val device = mapOf(
                "model" to "${Build.MANUFACTURER} ${Build.MODEL}",
                "os" to "Android ${Build.VERSION.RELEASE} (API ${Build.VERSION.SDK_INT})",
                "cpu" to socModel(),
                "cores" to Runtime.getRuntime().availableProcessors().toLong(),
                "accelerator" to it.accelerator,
            )
            val runtime = if (it.card.format == "tflite") "litert" else "executorch"
            val notes = listOf(
                "letterbox ${Letterbox.of(frame.width, frame.height, spec.targetSize).let { g -> "${g.newW}x${g.newH}" }} from 1280x720",
                "whole benchmark incl. preprocessing once and warm-up: %.1f ms".format(e2eMs),
                "peak_memory_mb is the native heap after the runs",
            )
            return BenchResult.build(UUID.randomUUID().toString(), Instant.now().toString(), it.card, device, runtime, null, latency, notes)
        }
    }

    private fun write(file: File, text: String) {
        file.parentFile?.mkdirs()
        val tmp = File(file.parentFile, file.name + ".tmp")
        tmp.writeText(text)
        tmp.renameTo(file)
    }

    /** The chip name (API 31+), e.g. "SM8550"; null on older Android. */
    private fun socModel(): String? =
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) "${Build.SOC_MANUFACTURER} ${Build.SOC_MODEL}" else null

    companion object {
        const val TAG = "NeometerBench"
    }
}
