"""Judging converted models: a `.tflite` on the test split against the float model, by the task's metric and
fidelity, and the criteria (a drop, an SQNR) that search and fallback hold it to."""
