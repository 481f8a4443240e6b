"""Bundles: the model, its labels and a manifest that apps and CI read."""
