"""neometer: newborn body length and weight from a smartphone photo or video."""

__version__ = "0.1.0"
