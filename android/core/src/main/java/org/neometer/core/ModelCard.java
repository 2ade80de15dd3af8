package org.neometer.core;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * The model card (schemas/model_card.schema.json) that sits beside every artifact as
 * `<artifact>.json`. The app reads everything model-specific from here: which runtime, the
 * input tensor, the preprocessing, the outputs and their units, the quality thresholds.
 */
public final class ModelCard {
    /** One named model output: element `index` of the flat output tensor, in `unit`. */
    public static final class Output {
        public final String name;
        public final String unit;
        public final int index;
        public final Double quantScale;
        public final Integer quantZeroPoint;

        Output(String name, String unit, int index, Double quantScale, Integer quantZeroPoint) {
            this.name = name;
            this.unit = unit;
            this.index = index;
            this.quantScale = quantScale;
            this.quantZeroPoint = quantZeroPoint;
        }
    }

    public final String role;
    public final String format;
    public final String precision;
    public final String converter;
    public final String converterVersion;
    public final String delegate;
    public final String artifactFile;
    public final String artifactSha256;
    public final long artifactSizeBytes;
    public final String inputName;
    public final int[] inputShape;
    public final String inputLayout;
    public final String inputDtype;
    public final String inputKind;
    public final Double inputQuantScale;
    public final Integer inputQuantZeroPoint;
    public final PreprocessSpec preprocessing;
    public final List<Output> outputs;
    public final String backbone;
    public final String task;
    public final QualityThresholds quality;
    public final String pipelineSegmenter;
    public final Map<String, Object> raw;

    private ModelCard(Map<String, Object> raw, Fields f) {
        this.raw = raw;
        int version = f.integer("schema_version", 0, true);
        if (f.has("schema_version") && version != 1) f.problems().add("schema_version: " + version + " (this app reads version 1)");
        role = f.string("role", "", true);
        format = f.string("format", "", true);
        precision = f.string("precision", "", true);
        if (f.has("role")) f.oneOf("role", role, "regressor", "segmenter");
        if (f.has("format")) f.oneOf("format", format, "pytorch", "onnx", "tflite", "executorch", "coreml");
        if (f.has("precision")) f.oneOf("precision", precision, "fp32", "fp16", "int8");
        Fields conv = f.object("converter", true);
        converter = conv.string("name", "", conv.present());
        converterVersion = conv.string("version", "", conv.present());
        delegate = conv.string("delegate", null, false);
        Fields art = f.object("artifact", true);
        artifactFile = art.string("file", "", art.present());
        artifactSha256 = art.string("sha256", "", art.present());
        artifactSizeBytes = (long) art.number("size_bytes", 0, art.present());
        if (art.has("sha256") && !artifactSha256.matches("[0-9a-f]{64}")) f.problems().add("artifact.sha256: not 64 hex digits");
        Fields in = f.object("input", true);
        inputName = in.string("name", "", in.present());
        double[] shape = in.numbers("shape", 4, in.present());
        inputShape = shape == null ? new int[4] : toInts(shape);
        inputLayout = in.string("layout", "NCHW", in.present());
        inputDtype = in.string("dtype", "float32", in.present());
        inputKind = in.string("kind", "tensor", false);
        if (in.has("layout")) in.oneOf("layout", inputLayout, "NCHW", "NHWC");
        if (in.has("dtype")) in.oneOf("dtype", inputDtype, "float32", "float16", "int8", "uint8");
        Fields q = in.object("quantization", false);
        inputQuantScale = q.present() ? q.number("scale", 1, true) : null;
        inputQuantZeroPoint = q.present() ? q.integer("zero_point", 0, true) : null;
        preprocessing = PreprocessSpec.read(f.object("preprocessing", true));
        outputs = readOutputs(f);
        Fields model = f.object("model", true);
        backbone = model.string("backbone", "", model.present());
        task = model.string("task", "", model.present());
        Fields quality = f.object("quality", false);
        this.quality = quality.present() ? QualityThresholds.read(quality) : null;
        Fields pipeline = f.object("pipeline", false);
        pipelineSegmenter = pipeline.string("segmenter", null, false);
        if (shape != null && preprocessing != null && ("NCHW".equals(inputLayout) || "NHWC".equals(inputLayout))) checkShape(f.problems());
    }

    private static List<Output> readOutputs(Fields f) {
        List<Output> out = new ArrayList<>();
        Object v = f.raw("outputs");
        if (!(v instanceof List) || ((List<?>) v).isEmpty()) {
            f.problems().add("outputs: expected a non-empty list of {name, unit, index}");
            return out;
        }
        List<?> list = (List<?>) v;
        for (int i = 0; i < list.size(); i++) {
            if (!(list.get(i) instanceof Map)) {
                f.problems().add("outputs[" + i + "]: expected an object");
                continue;
            }
            @SuppressWarnings("unchecked")
            Fields o = new Fields((Map<String, Object>) list.get(i), "outputs[" + i + "].", f.problems());
            Fields q = o.object("quantization", false);
            out.add(new Output(o.string("name", "", true), o.string("unit", "", true), o.integer("index", i, true),
                    q.present() ? q.number("scale", 1, true) : null, q.present() ? q.integer("zero_point", 0, true) : null));
        }
        return out;
    }

    /** The input's spatial size must be the preprocessing target, or the app feeds the wrong shape. */
    private void checkShape(List<String> problems) {
        int h = "NCHW".equals(inputLayout) ? inputShape[2] : inputShape[1];
        int w = "NCHW".equals(inputLayout) ? inputShape[3] : inputShape[2];
        int c = "NCHW".equals(inputLayout) ? inputShape[1] : inputShape[3];
        if (h != preprocessing.targetSize || w != preprocessing.targetSize || c != 3) {
            problems.add("input.shape: " + java.util.Arrays.toString(inputShape) + " does not match " + inputLayout
                    + " with 3 channels at preprocessing.target_size " + preprocessing.targetSize);
        }
    }

    private static int[] toInts(double[] d) {
        int[] out = new int[d.length];
        for (int i = 0; i < d.length; i++) out[i] = (int) d[i];
        return out;
    }

    /** Parses a card; `source` names the file in the error, which lists every problem. */
    public static ModelCard parse(String json, String source) {
        Map<String, Object> raw;
        try {
            raw = Json.parseObject(json);
        } catch (IllegalArgumentException e) {
            throw new NeometerException(source + ": not valid JSON (" + e.getMessage() + "); re-export the model");
        }
        List<String> problems = new ArrayList<>();
        ModelCard card = new ModelCard(raw, new Fields(raw, "", problems));
        if (!problems.isEmpty()) {
            throw new NeometerException(source + ": model card is invalid; re-export the model with `neometer export`", problems);
        }
        return card;
    }

    public static ModelCard read(Path path) throws IOException {
        return parse(new String(Files.readAllBytes(path), StandardCharsets.UTF_8), path.toString());
    }

    /** The card of an artifact: `<artifact file name>.json` in the same folder. */
    public static Path cardPathFor(Path artifact) {
        return artifact.resolveSibling(artifact.getFileName() + ".json");
    }

    /** The card's thresholds, else the fallback (the golden manifest's or the regressor's card). */
    public QualityThresholds qualityOr(QualityThresholds fallback) {
        return quality != null ? quality : fallback;
    }

    public Output output(String name) {
        for (Output o : outputs) if (o.name.equals(name)) return o;
        return null;
    }

    /** Flat raw output tensor -> values in the order of `outputs`, dequantized when the card says so. */
    public double[] readOutputs(float[] raw) {
        double[] out = new double[outputs.size()];
        for (int i = 0; i < out.length; i++) {
            Output o = outputs.get(i);
            if (o.index >= raw.length) {
                throw new NeometerException("output " + o.name + " is element " + o.index + " but the model returned "
                        + raw.length + " values; the card does not match the artifact " + artifactFile);
            }
            double v = raw[o.index];
            if (o.quantScale != null) v = (v - o.quantZeroPoint) * o.quantScale;
            out[i] = v;
        }
        return out;
    }

    /** {height_cm, weight_kg} from a regressor's raw output; weight NaN when the model has none. */
    public double[] heightWeight(float[] raw) {
        double[] values = readOutputs(raw);
        double h = Double.NaN, w = Double.NaN;
        for (int i = 0; i < outputs.size(); i++) {
            if ("height_cm".equals(outputs.get(i).name)) h = values[i];
            if ("weight_kg".equals(outputs.get(i).name)) w = values[i];
        }
        return new double[] {h, w};
    }

    public List<String> outputNames() {
        List<String> names = new ArrayList<>();
        for (Output o : outputs) names.add(o.name);
        return Collections.unmodifiableList(names);
    }

    public int inputElementCount() {
        int n = 1;
        for (int s : inputShape) n *= s;
        return n;
    }
}
