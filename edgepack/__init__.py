"""edgepack: take a Keras model from a declarative recipe to a validated, gated edge bundle."""

__version__ = "0.3.0"
