"""`edgepack keygen PATH`: a new Ed25519 key pair for signing bundles (PATH private, PATH.pub public)."""

from __future__ import annotations

from pathlib import Path

import typer

from edgepack.cli import output
from edgepack.cli.boundary import boundary


def register(app: typer.Typer) -> None:
    """Add the keygen command to the top-level app."""

    @app.command()
    @boundary
    def keygen(
        path: Path = typer.Argument(
            ...,
            metavar="PATH",
            help="Where to write the private key; the public key goes to PATH.pub. "
            "Existing files are never overwritten.",
        ),
    ) -> None:
        """Write a new Ed25519 key pair to sign bundles with (`run --sign PATH`, `verify --key PATH.pub`)."""
        from edgepack.bundle.signing import generate_keypair, public_key_sha256

        public = generate_keypair(path)
        fingerprint = public_key_sha256(public)
        output.result(
            {"private_key": str(path), "public_key": str(public), "public_key_sha256": fingerprint},
            f"private key: {path} (mode 0600: keep it secret, sign with `--sign`)",
            f"public key:  {public} (give it to whoever checks: `verify --key`)",
            f"fingerprint: {fingerprint}",  # sha256 of the raw public key, as manifest.sig records it
        )
