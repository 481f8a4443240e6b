"""Ed25519 signatures of a bundle's manifest (`manifest.sig`), with pyca/cryptography.

The manifest lists every artifact with its sha256 and size, so a signature over the exact bytes of
`manifest.json` covers every file of the bundle: `verify --key` checks the signature, then the
hashes. Ed25519 signatures are deterministic, so a bundle signed twice with the same key is the
same byte for byte. Keys are PEM (PKCS#8 private, SubjectPublicKeyInfo public, as `keygen` writes
them) or OpenSSH (`ssh-keygen -t ed25519`). No TensorFlow here; cryptography is imported on use.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from edgepack.bundle.manifest import MANIFEST
from edgepack.errors import BundleError
from edgepack.fsutil import atomic_write_bytes

SIGNATURE = "manifest.sig"
"""The signature file's name in a bundle, beside manifest.json (not listed in its artifacts)."""

ALGORITHM = "ed25519"
_KEY_CODE = "bad-key"
_MAKE_ONE = "make one with `edgepack keygen KEY` (or `ssh-keygen -t ed25519 -N '' -f KEY`)"


def public_path(private_path: Path) -> Path:
    """Where the public half of the private key at `private_path` goes: the same name plus `.pub`."""
    return private_path.with_name(private_path.name + ".pub")


def generate_keypair(private_path: Path) -> Path:
    """Write a new Ed25519 private key (unencrypted PKCS#8 PEM, mode 0600) at `private_path` and its
    public key (SubjectPublicKeyInfo PEM) at `private_path` + ".pub"; return the public key's path.

    Existing files are never overwritten: a key lost by mistake cannot be made again.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = public_path(private_path)
    for path in (private_path, public):
        if path.exists() or path.is_symlink():
            raise BundleError(
                f"{path} already exists; edgepack keygen never overwrites a key",
                hint="choose another path, or move the old key away first",
                code=_KEY_CODE,
            )
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    written: list[Path] = []
    for path, data, mode in ((private_path, private_pem, 0o600), (public, public_pem, 0o644)):
        try:
            atomic_write_bytes(path, data)  # its temporary file is 0600 (mkstemp) before the key is in it
            written.append(path)
            os.chmod(path, mode)
        except OSError as exc:
            for done in written:  # no half pair left behind: it would block the next keygen
                done.unlink(missing_ok=True)
            raise BundleError(
                f"{path}: cannot write the key: {exc.strerror or exc}",
                hint="choose a path in a folder you can write to",
                code=_KEY_CODE,
            ) from exc
    return public


def load_private_key(path: Path) -> Any:
    """The Ed25519 private key in `path` (PKCS#8 PEM or OpenSSH); a `BundleError` naming the file
    when it is missing, encrypted, of another type (RSA, EC) or not a key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read_key(path, "private")
    if data.lstrip().startswith((b"ssh-", b"ecdsa-", b"sk-")) or b"PUBLIC KEY-----" in data:
        raise _key_error(
            path, "is a public key; signing needs the private key", "give the private key file (the one without .pub)"
        )
    openssh = b"-----BEGIN OPENSSH PRIVATE KEY-----" in data
    key = _parse(
        path,
        data,
        lambda: (
            serialization.load_ssh_private_key(data, password=None)
            if openssh
            else serialization.load_pem_private_key(data, password=None)
        ),
    )
    if not isinstance(key, Ed25519PrivateKey):
        raise _wrong_type(path, key)
    return key


def load_public_key(path: Path) -> Any:
    """The Ed25519 public key in `path` (SubjectPublicKeyInfo PEM or an `ssh-ed25519 AAAA...` line);
    a `BundleError` naming the file when it is missing, of another type (RSA, EC) or not a key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read_key(path, "public")
    if b"PRIVATE KEY-----" in data:
        raise _key_error(
            path,
            "is a private key; checking a signature needs only the public key",
            f"give its public key file ({public_path(path).name} when `edgepack keygen` or "
            "ssh-keygen made it); the private key stays with the signer",
        )
    pem = data.lstrip().startswith(b"-----BEGIN")
    key = _parse(
        path, data, lambda: serialization.load_pem_public_key(data) if pem else serialization.load_ssh_public_key(data)
    )
    if not isinstance(key, Ed25519PublicKey):
        raise _wrong_type(path, key)
    return key


def key_sha256(public_key: Any) -> str:
    """The fingerprint edgepack shows and records: hex sha256 of the raw 32-byte Ed25519 public key."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_key_sha256(path: Path) -> str:
    """The fingerprint of the public key file at `path` (see `key_sha256`)."""
    return key_sha256(load_public_key(path))


def sign_manifest(manifest_bytes: bytes, private_key_path: Path) -> bytes:
    """The content of `manifest.sig` for these exact manifest bytes, signed with the key at
    `private_key_path`: sorted-key JSON, newline-terminated, identical for identical inputs."""
    key = load_private_key(private_key_path)
    record = {
        "algorithm": ALGORITHM,
        "signed_file": MANIFEST,
        "public_key_sha256": key_sha256(key.public_key()),
        "signature": base64.b64encode(key.sign(manifest_bytes)).decode("ascii"),
    }
    return (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8")


def check_signature(manifest_bytes: bytes, signature_bytes: bytes | None, public_key_path: Path) -> list[str]:
    """What is wrong with the bundle's signature for the key at `public_key_path` (empty: it verifies).

    A missing, garbled or foreign signature is a problem, not an error; an unusable key file is a
    `BundleError`.
    """
    from cryptography.exceptions import InvalidSignature

    key = load_public_key(public_key_path)
    if signature_bytes is None:
        return [f"the bundle is not signed (it has no {SIGNATURE})"]
    try:
        record = _signature_record(signature_bytes)
    except ValueError as exc:
        return [f"{SIGNATURE}: not a readable signature file: {exc}"]
    expected = key_sha256(key)
    if record["public_key_sha256"] != expected:
        return [
            f"{SIGNATURE}: signed with key {record['public_key_sha256'][:16]}, not {expected[:16]} ({public_key_path})"
        ]
    try:
        key.verify(record["signature"], manifest_bytes)
    except InvalidSignature:
        return [
            f"{MANIFEST} changed after signing, or the signature was made for other bytes "
            f"({SIGNATURE} does not verify with {public_key_path})"
        ]
    return []


def _signature_record(data: bytes) -> dict[str, Any]:
    """The parsed `manifest.sig`, its signature decoded; `ValueError` saying what is wrong."""
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if record.get("algorithm") != ALGORITHM:
        raise ValueError(f"algorithm is {record.get('algorithm')!r}, edgepack checks {ALGORITHM!r}")
    if record.get("signed_file") != MANIFEST:
        raise ValueError(f"signed_file is {record.get('signed_file')!r}, not {MANIFEST!r}")
    if not isinstance(record.get("public_key_sha256"), str) or not isinstance(record.get("signature"), str):
        raise ValueError("public_key_sha256 and signature must be strings")
    try:
        signature = base64.b64decode(record["signature"], validate=True)
    except binascii.Error as exc:
        raise ValueError(f"signature is not base64 ({exc})") from exc
    if len(signature) != 64:
        raise ValueError(f"signature is {len(signature)} bytes; an Ed25519 signature is 64")
    return {**record, "signature": signature}


def _read_key(path: Path, which: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise _key_error(path, f"no such {which} key file", _MAKE_ONE) from exc
    except IsADirectoryError as exc:
        raise _key_error(path, f"is a directory, not a {which} key file", "give the key file's path") from exc
    except OSError as exc:
        raise _key_error(path, f"cannot read it: {exc.strerror or exc}", "check the path and its permissions") from exc


def _parse(path: Path, data: bytes, load: Any) -> Any:
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        return load()
    except TypeError as exc:  # cryptography's word for "encrypted, and no password given"
        raise _key_error(
            path,
            "is encrypted with a passphrase; edgepack reads unencrypted keys only",
            "remove the passphrase (`ssh-keygen -p -N '' -f KEY`) or " + _MAKE_ONE,
        ) from exc
    except UnsupportedAlgorithm as exc:
        raise _wrong_type(path, None, str(exc)) from exc
    except ValueError as exc:
        why = str(exc).split(". ")[0].rstrip(".")  # cryptography adds a FAQ link after the first sentence
        raise _key_error(path, f"is not a PEM or OpenSSH key ({why})", _MAKE_ONE) from exc


def _wrong_type(path: Path, key: Any, detail: str | None = None) -> BundleError:
    kind = f"a key type cryptography cannot load ({detail})" if detail else _kind(key)
    return _key_error(path, f"is {kind}; edgepack signs and checks Ed25519 keys only", _MAKE_ONE)


def _kind(key: Any) -> str:
    import warnings

    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa, x448, x25519
    from cryptography.utils import CryptographyDeprecationWarning

    with warnings.catch_warnings():  # naming DSA's classes warns that DSA is deprecated: here it is refused
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        dsa_types = (dsa.DSAPrivateKey, dsa.DSAPublicKey)
    kinds = (
        ((rsa.RSAPrivateKey, rsa.RSAPublicKey), "an RSA key"),
        ((ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey), "an EC (ECDSA) key"),
        (dsa_types, "a DSA key"),
        ((ed448.Ed448PrivateKey, ed448.Ed448PublicKey), "an Ed448 key"),
        ((x25519.X25519PrivateKey, x25519.X25519PublicKey), "an X25519 key"),
        ((x448.X448PrivateKey, x448.X448PublicKey), "an X448 key"),
    )
    return next((label for types, label in kinds if isinstance(key, types)), f"a {type(key).__name__}")


def _key_error(path: Path, what: str, hint: str) -> BundleError:
    return BundleError(f"{path}: {what}", hint=hint, code=_KEY_CODE)
