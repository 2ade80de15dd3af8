package org.neometer.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.Map;

/** Reads tests/golden (written by `neometer golden`): the manifest and its raw little-endian tensors. */
final class Golden {
    static final Path DIR = Paths.get(System.getProperty("neometer.golden", "../../tests/golden")).toAbsolutePath().normalize();
    static final Path REPO = Paths.get(System.getProperty("neometer.repo", "../..")).toAbsolutePath().normalize();

    private static Map<String, Object> manifest;

    private Golden() {}

    static synchronized Map<String, Object> manifest() throws IOException {
        if (manifest == null) {
            Path file = DIR.resolve("manifest.json");
            if (!Files.exists(file)) {
                throw new IllegalStateException(file + " is missing: run `make golden` (python -m neometer golden) first");
            }
            manifest = Json.parseObject(new String(Files.readAllBytes(file), StandardCharsets.UTF_8));
        }
        return manifest;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> obj(Object o) {
        return (Map<String, Object>) o;
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Object o) {
        return (List<Object>) o;
    }

    static int[] shape(Map<String, Object> tensor) {
        List<Object> s = list(tensor.get("shape"));
        int[] out = new int[s.size()];
        for (int i = 0; i < out.length; i++) out[i] = ((Number) s.get(i)).intValue();
        return out;
    }

    static int count(Map<String, Object> tensor) {
        int n = 1;
        for (int s : shape(tensor)) n *= s;
        return n;
    }

    private static byte[] bytes(Map<String, Object> tensor, String dtype, int itemSize) throws IOException {
        if (!dtype.equals(tensor.get("dtype"))) throw new IllegalStateException(tensor.get("file") + ": dtype " + tensor.get("dtype") + ", expected " + dtype);
        byte[] b = Files.readAllBytes(DIR.resolve((String) tensor.get("file")));
        if (b.length != count(tensor) * itemSize) throw new IllegalStateException(tensor.get("file") + ": " + b.length + " bytes does not match its shape");
        return b;
    }

    static byte[] u8(Map<String, Object> tensor) throws IOException {
        return bytes(tensor, "uint8", 1);
    }

    static float[] f32(Map<String, Object> tensor) throws IOException {
        byte[] b = bytes(tensor, "float32", 4);
        float[] out = new float[b.length / 4];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    static PreprocessSpec spec() throws IOException {
        return PreprocessSpec.fromMap(obj(manifest().get("preprocessing")));
    }

    static QualityThresholds quality() throws IOException {
        return QualityThresholds.fromMap(obj(manifest().get("quality")));
    }
}
