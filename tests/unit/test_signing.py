"""Ed25519 keys: keygen, passphrase-protected keys refused, signing imports nothing heavy (bundles signed
and verified, which reads their model: tests/integration/test_signing.py)."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import invoke

from edgepack.bundle.signing import (
    public_key_sha256,
    sign_manifest,
)
from edgepack.errors import BundleError


def test_keygen_writes_a_0600_private_key_and_its_public_key_and_never_overwrites(tmp_path: Path) -> None:
    private = tmp_path / "keys" / "release"
    result = invoke("--json", "keygen", str(private))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    public = Path(report["public_key"])
    assert report["private_key"] == str(private) and public == tmp_path / "keys" / "release.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert report["public_key_sha256"] == public_key_sha256(public)
    before = private.read_bytes()
    result = invoke("keygen", str(private))
    assert result.exit_code == 2 and "already exists; edgepack keygen never overwrites a key" in result.stderr
    assert "Traceback" not in result.output and private.read_bytes() == before
    private.unlink()  # the public half alone also blocks: the pair would no longer match
    assert invoke("keygen", str(private)).exit_code == 2 and not private.exists()
    human = invoke("keygen", str(tmp_path / "other"))
    shown = "".join(human.stdout.split())  # rich folds long paths at the terminal width
    assert human.exit_code == 0 and f"{tmp_path}/other.pub" in shown
    assert public_key_sha256(tmp_path / "other.pub") in shown


def test_a_passphrase_protected_key_is_refused_clearly(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    locked = tmp_path / "locked"
    locked.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
        )
    )
    with pytest.raises(BundleError, match="locked: is encrypted with a passphrase") as caught:
        sign_manifest(b"{}", locked)
    assert "remove the passphrase" in str(caught.value.hint)


def test_signing_imports_no_tensorflow() -> None:
    import sys

    probe = (
        "import sys\nimport edgepack.bundle.signing, edgepack.bundle.verify\n"
        "print(' '.join(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'cryptography')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == []  # cryptography too is imported on use only
