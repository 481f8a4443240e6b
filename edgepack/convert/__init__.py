"""TFLite conversion: the modes and their calibration."""
