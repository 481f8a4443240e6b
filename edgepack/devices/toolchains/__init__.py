"""The tools the drivers use that are not devices: Vela and its report, the Debian arm64 root filesystem for
qemu, TFLM's measured arena, the parsing of TFLite's benchmark_model log."""
