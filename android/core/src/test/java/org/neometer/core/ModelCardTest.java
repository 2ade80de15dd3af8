package org.neometer.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Cards of every exported format parse: the fixtures here and whatever export wrote under models/. */
class ModelCardTest {
    static Path fixtures() throws URISyntaxException {
        return Paths.get(ModelCardTest.class.getResource("/cards").toURI());
    }

    static Stream<Path> allCards() throws IOException, URISyntaxException {
        List<Path> cards = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(fixtures(), "*.json")) {
            ds.forEach(cards::add);
        }
        Path models = Golden.REPO.resolve("models");
        if (Files.isDirectory(models)) {
            try (Stream<Path> s = Files.walk(models, 3)) {
                s.filter(p -> p.getParent() != null && p.getParent().getFileName().toString().equals("export"))
                        .filter(p -> p.getFileName().toString().endsWith(".json"))
                        .filter(p -> isArtifactCard(p))
                        .forEach(cards::add);
            }
        }
        return cards.stream().sorted();
    }

    /** `<artifact>.json`: the name without .json still has an artifact extension. */
    static boolean isArtifactCard(Path p) {
        String stem = p.getFileName().toString().replaceAll("\\.json$", "");
        return stem.matches(".*\\.(tflite|pte|mlpackage|mlmodel|onnx|safetensors|pt)$");
    }

    @ParameterizedTest
    @MethodSource("allCards")
    void everyCardParses(Path path) throws IOException {
        ModelCard card = ModelCard.read(path);
        assertEquals(path.getFileName().toString(), card.artifactFile + ".json", "the card is named after its artifact");
        assertTrue(card.preprocessing.targetSize >= 16);
        assertEquals(3, card.preprocessing.mean.length);
        assertTrue(card.outputs.size() >= 1);
        if (card.role.equals("regressor")) assertNotNull(card.output("height_cm") != null ? card.output("height_cm") : card.output("weight_kg"));
    }

    @Test
    void fixtureCardsCoverEveryFormatAndLayout() throws IOException, URISyntaxException {
        List<String> formats = new ArrayList<>(), layouts = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(fixtures(), "*.json")) {
            for (Path p : ds) {
                ModelCard c = ModelCard.read(p);
                formats.add(c.format);
                layouts.add(c.inputLayout);
            }
        }
        for (String f : new String[] {"tflite", "executorch", "coreml", "onnx", "pytorch"}) assertTrue(formats.contains(f), f);
        assertTrue(layouts.contains("NHWC") && layouts.contains("NCHW"));
    }

    @Test
    void fixturePreprocessingIsTheGoldenOne() throws Exception {
        ModelCard card = ModelCard.read(fixtures().resolve("regressor_fp32.tflite.json"));
        PreprocessSpec golden = Golden.spec();
        assertEquals(golden.targetSize, card.preprocessing.targetSize);
        assertArrayEquals(golden.mean, card.preprocessing.mean);
        assertArrayEquals(golden.std, card.preprocessing.std);
        assertEquals(golden.scale, card.preprocessing.scale);
        assertEquals("NHWC", card.inputLayout);
        assertEquals("xnnpack", card.delegate);
        assertEquals(Golden.quality().minGoodFrames, card.quality.minGoodFrames);
        assertEquals("segmenter_fp16.tflite", card.pipelineSegmenter);
    }

    @Test
    void quantizedOutputsAreDequantizedAndNamedByIndex() throws Exception {
        ModelCard card = ModelCard.read(fixtures().resolve("regressor_int8.tflite.json"));
        assertEquals(0.0186584, card.inputQuantScale, 1e-12);
        assertEquals(-14, card.inputQuantZeroPoint.intValue());
        // height: (72 + 128) * 0.25 = 50 cm; weight: (37 + 128) * 0.02 = 3.3 kg
        double[] hw = card.heightWeight(new float[] {72, 37});
        assertEquals(50.0, hw[0], 1e-9);
        assertEquals(3.3, hw[1], 1e-9);
        assertThrows(NeometerException.class, () -> card.heightWeight(new float[] {72}));
        int[] q = Preprocess.quantize(new float[] {0f, 100f, -100f}, card.inputQuantScale, card.inputQuantZeroPoint, card.inputDtype);
        assertArrayEquals(new int[] {-14, 127, -128}, q);
    }

    @Test
    void cardWithoutQualityFallsBack() throws Exception {
        ModelCard seg = ModelCard.read(fixtures().resolve("segmenter_fp16.tflite.json"));
        assertNull(seg.quality);
        QualityThresholds t = Golden.quality();
        assertEquals(t, seg.qualityOr(t));
        float[] p = MeasureSession.toProbabilities(new float[] {0f, 100f}, seg);
        assertEquals(0.5f, p[0], 1e-7f);
        assertEquals(1f, p[1], 1e-7f);
    }

    @Test
    void brokenCardListsEveryProblemWithTheFileName() throws Exception {
        Map<String, Object> raw = Json.parseObject(new String(Files.readAllBytes(fixtures().resolve("regressor_fp32.pte.json"))));
        raw.remove("outputs");
        Golden.obj(raw.get("input")).put("layout", "NWHC");
        Golden.obj(raw.get("preprocessing")).put("resize", "bilinear");
        Golden.obj(raw.get("preprocessing")).remove("std");
        NeometerException e = assertThrows(NeometerException.class, () -> ModelCard.parse(Json.write(raw), "x/regressor_fp32.pte.json"));
        assertTrue(e.getMessage().startsWith("x/regressor_fp32.pte.json"), e.getMessage());
        assertEquals(4, e.problems().size(), e.problems().toString());
        String all = String.join("\n", e.problems());
        assertTrue(all.contains("outputs") && all.contains("input.layout") && all.contains("preprocessing.resize") && all.contains("preprocessing.std"), all);
        assertThrows(NeometerException.class, () -> ModelCard.parse("{\"schema_version\": 1,", "bad.json"));
    }

    @Test
    void shapeMustMatchTargetSize() throws Exception {
        Map<String, Object> raw = Json.parseObject(new String(Files.readAllBytes(fixtures().resolve("regressor_fp32.onnx.json"))));
        Golden.obj(raw.get("input")).put("shape", List.of(1L, 3L, 96L, 96L));
        NeometerException e = assertThrows(NeometerException.class, () -> ModelCard.parse(Json.write(raw), "c.json"));
        assertTrue(e.problems().get(0).startsWith("input.shape"), e.problems().toString());
    }

    @Test
    void cardPathSitsBesideTheArtifact() {
        assertEquals(Paths.get("a/b/regressor_int8.tflite.json"), ModelCard.cardPathFor(Paths.get("a/b/regressor_int8.tflite")));
    }
}
