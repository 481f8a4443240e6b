"""Training-time optimization: one module per technique and a shared fine-tuning loop."""
