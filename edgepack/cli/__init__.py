"""The command-line interface: Typer commands, the output sink and the one error boundary."""
