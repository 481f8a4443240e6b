"""Reading .tflite flatbuffers without TensorFlow: structure and weight statistics."""
