"""Validation on devices, apart from running the pipeline's stage: which devices a run validates on, the samples
every device gets, the host's reference outputs, output parity, and the schedule that runs devices on
different machines at once."""
