package org.neometer.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {
    @Test
    void parsesEveryKind() {
        Map<String, Object> m = Json.parseObject(
                "{\"a\": 1, \"b\": -2.5e-3, \"c\": \"x\\\"\\n\\u00e9\\/\", \"d\": [true, false, null], \"e\": {}, \"f\": [], \"g\": NaN}");
        assertEquals(1L, m.get("a"));
        assertEquals(-2.5e-3, (Double) m.get("b"), 0);
        assertEquals("x\"\n\u00e9/", m.get("c"));
        assertEquals(Arrays.asList(true, false, null), m.get("d"));
        assertTrue(((Map<?, ?>) m.get("e")).isEmpty());
        assertTrue(((List<?>) m.get("f")).isEmpty());
        assertTrue(Double.isNaN((Double) m.get("g")));
        assertEquals(Arrays.asList("a", "b", "c", "d", "e", "f", "g"), List.copyOf(m.keySet()), "key order kept");
    }

    @Test
    void roundTrips() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("s", "tab\there \"q\" \\ \u0001");
        m.put("n", 3L);
        m.put("d", 0.1);
        m.put("nan", Double.NaN);
        m.put("list", Arrays.asList(1L, "two", null, Arrays.asList()));
        m.put("floats", new float[] {0.5f});
        Map<String, Object> back = Json.parseObject(Json.write(m));
        assertEquals(m.get("s"), back.get("s"));
        assertEquals(3L, back.get("n"));
        assertEquals(0.1, back.get("d"));
        assertNull(back.get("nan"), "NaN is written as null: JSON has no NaN");
        assertEquals(Arrays.asList(1L, "two", null, Arrays.asList()), back.get("list"));
        assertEquals(Arrays.asList(0.5), back.get("floats"));
    }

    @Test
    void errorsSayWhere() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.parse("{\n\"a\": [1, 2,]\n}"));
        assertTrue(e.getMessage().contains("line 2"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Json.parse("[1] x"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("\"open"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("{\"a\" 1}"));
        assertThrows(IllegalArgumentException.class, () -> Json.parseObject("[1]"));
    }

    @Test
    void largeIntegersStayExactOrBecomeDoubles() {
        assertEquals(123456789012345678L, Json.parse("123456789012345678"));
        assertEquals(1e20, (Double) Json.parse("100000000000000000000"), 0);
    }
}
