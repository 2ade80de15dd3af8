package org.neometer.core;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Local measurement history: one JSON file in the app's private folder, never sent anywhere.
 * Writes go to a temporary file first and are renamed over the old one, so a crash mid-write
 * never loses earlier measurements.
 */
public final class History {
    private final Path file;

    public History(Path file) {
        this.file = file;
    }

    @SuppressWarnings("unchecked")
    public List<Map<String, Object>> entries() throws IOException {
        if (!Files.exists(file)) return new ArrayList<>();
        Map<String, Object> doc;
        try {
            doc = Json.parseObject(new String(Files.readAllBytes(file), StandardCharsets.UTF_8));
        } catch (IllegalArgumentException e) {
            // Keep the unreadable file for inspection rather than overwrite it.
            throw new NeometerException(file + ": history is not readable (" + e.getMessage() + "); move it away to start a new one");
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (Object o : (List<Object>) doc.getOrDefault("entries", new ArrayList<>())) out.add((Map<String, Object>) o);
        return out;
    }

    /** Appends a measurement with its time, model and optional label; returns the stored entry. */
    public Map<String, Object> add(Measurement m, String isoTime, String modelFile, String label) throws IOException {
        List<Map<String, Object>> all = entries();
        Map<String, Object> entry = new LinkedHashMap<>();
        entry.put("time", isoTime);
        entry.put("label", label);
        entry.put("model", modelFile);
        entry.put("measurement", m.toMap());
        all.add(entry);
        write(all);
        return entry;
    }

    public void clear() throws IOException {
        write(new ArrayList<>());
    }

    private void write(List<Map<String, Object>> entries) throws IOException {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("schema_version", 1L);
        doc.put("entries", entries);
        if (file.getParent() != null) Files.createDirectories(file.getParent());
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.write(tmp, Json.write(doc).getBytes(StandardCharsets.UTF_8));
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
