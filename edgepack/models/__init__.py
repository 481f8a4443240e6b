"""Model sources (saved Keras files, builders), the built-in zoo, and the one TensorFlow import point."""
