package org.neometer.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** Bad input (a model card, a frame): the message names the file and the fix; every problem is listed. */
public class NeometerException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final List<String> problems;

    public NeometerException(String message, List<String> problems) {
        super(problems.isEmpty() ? message : message + ":\n  - " + String.join("\n  - ", problems));
        this.problems = Collections.unmodifiableList(new ArrayList<>(problems));
    }

    public NeometerException(String message) {
        this(message, new ArrayList<>());
    }

    public List<String> problems() {
        return problems;
    }
}
