package org.neometer.core;

import java.util.List;
import java.util.Map;

/**
 * Typed reads from parsed JSON that collect every problem instead of stopping at the first,
 * so a broken model card is reported in one go (field path + what was expected).
 */
final class Fields {
    private final Map<String, Object> map;
    private final String path;
    private final List<String> problems;

    Fields(Map<String, Object> map, String path, List<String> problems) {
        this.map = map;
        this.path = path;
        this.problems = problems;
    }

    boolean has(String key) {
        return map != null && map.get(key) != null;
    }

    Object raw(String key) {
        return map == null ? null : map.get(key);
    }

    private Object required(String key, String what) {
        Object v = raw(key);
        if (v == null) problems.add(path + key + ": missing (expected " + what + ")");
        return v;
    }

    String string(String key, String fallback, boolean required) {
        Object v = required ? required(key, "a string") : raw(key);
        if (v == null) return fallback;
        if (!(v instanceof String)) {
            problems.add(path + key + ": expected a string, got " + v);
            return fallback;
        }
        return (String) v;
    }

    double number(String key, double fallback, boolean required) {
        Object v = required ? required(key, "a number") : raw(key);
        if (v == null) return fallback;
        if (!(v instanceof Number)) {
            problems.add(path + key + ": expected a number, got " + v);
            return fallback;
        }
        return ((Number) v).doubleValue();
    }

    int integer(String key, int fallback, boolean required) {
        double d = number(key, fallback, required);
        if (d != Math.rint(d)) {
            problems.add(path + key + ": expected an integer, got " + d);
            return fallback;
        }
        return (int) d;
    }

    double[] numbers(String key, int count, boolean required) {
        Object v = required ? required(key, count + " numbers") : raw(key);
        if (v == null) return null;
        if (!(v instanceof List) || (count > 0 && ((List<?>) v).size() != count)) {
            problems.add(path + key + ": expected a list of " + (count > 0 ? count + " " : "") + "numbers, got " + v);
            return null;
        }
        List<?> list = (List<?>) v;
        double[] out = new double[list.size()];
        for (int i = 0; i < out.length; i++) {
            if (!(list.get(i) instanceof Number)) {
                problems.add(path + key + "[" + i + "]: expected a number, got " + list.get(i));
                return null;
            }
            out[i] = ((Number) list.get(i)).doubleValue();
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    Fields object(String key, boolean required) {
        Object v = required ? required(key, "an object") : raw(key);
        if (v != null && !(v instanceof Map)) {
            problems.add(path + key + ": expected an object, got " + v);
            v = null;
        }
        return new Fields((Map<String, Object>) v, path + key + ".", problems);
    }

    boolean present() {
        return map != null;
    }

    void oneOf(String key, String value, String... allowed) {
        for (String a : allowed) {
            if (a.equals(value)) return;
        }
        problems.add(path + key + ": '" + value + "' is not one of " + String.join(", ", allowed));
    }

    Map<String, Object> map() {
        return map;
    }

    String path() {
        return path;
    }

    List<String> problems() {
        return problems;
    }
}
