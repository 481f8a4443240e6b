"""Ed25519 signing of the manifest: keygen, sign, `verify --key`; OpenSSH keys; clear key errors.

The bundles here are written by `write_bundle` around a hand-built one-op `.tflite` (no TensorFlow,
no training), and signed as `run --sign` signs them: `sign_manifest` over the written manifest.json.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import invoke

from edgepack.bundle.manifest import MANIFEST, SCHEMA_VERSION
from edgepack.bundle.signing import (
    SIGNATURE,
    check_signature,
    generate_keypair,
    load_private_key,
    public_key_sha256,
    sign_manifest,
)
from edgepack.bundle.writer import write_bundle, zip_bytes
from edgepack.errors import BundleError

VERSION_LINE = '"version": "1.0.0"'


def tiny_tflite() -> bytes:
    """A valid one-op TFLite model (RELU on a float32 [1, 4] input), built with the flatbuffer schema."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    def tensor(name: str) -> Any:
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, [1, 4], schema.TensorType.FLOAT32, 0
        return t

    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.RELU
    code.version = 1
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = [tensor("in"), tensor("out")], [0], [1], [op]
    model = schema.ModelT()
    model.version, model.buffers, model.operatorCodes, model.subgraphs = 3, [schema.BufferT()], [code], [graph]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def tiny_manifest(model: bytes, version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """A manifest that conforms to the published schema (of `version`: 2 is what edgepack 0.2 wrote)."""
    tensor = {"name": "in", "index": 0, "shape": [1, 4], "dtype": "float32", "scale": None, "zero_point": None}
    fingerprint = hashlib.sha256(b"data").hexdigest()
    current = (
        {
            "task": {"kind": "classification"},
            "source": {"kind": "builder", "saved_by": "tf_keras"},
            "metrics": {
                "task": "classification",
                "metric": "accuracy",
                "accuracy": {"tflite": 0.9375},
                "float": {"accuracy": 0.95},
                "tflite": {"accuracy": 0.9375},
                "fidelity": {"outputs": [], "worst_sqnr_db": None},
            },
        }
        if version >= 3
        else {}
    )
    return {
        "schema_version": version,
        "name": "tiny",
        "version": "1.0.0",
        "description": "signing test",
        "model": {
            "file": "model.tflite",
            "sha256": hashlib.sha256(model).hexdigest(),
            "size_bytes": len(model),
            "mode": "float32",
            "io": "float32",
        },
        "inputs": [tensor],
        "outputs": [{**tensor, "name": "out", "index": 1}],
        "labels": ["a", "b", "c", "d"],
        "labels_file": "labels.txt",
        "normalization": {"mean": 0.0, "std": 1.0, "formula": "(x - mean) / std"},
        "recipe": {"sha256": hashlib.sha256(b"recipe").hexdigest(), "source": None, "resolved": {}},
        "toolchain": {"edgepack": "test"},
        "data": {"train": {"fingerprint": fingerprint}, "test": {"fingerprint": fingerprint}},
        "stages": {},
        "metrics": {"accuracy": {"tflite": 0.9375}},
        "validation": {},
        "gate": {"passed": True, "results": []},
        **current,
    }


def make_bundle(folder: Path, name: str = "bundle", version: int = SCHEMA_VERSION) -> Path:
    """Write a bundle with the writer edgepack uses (its artifacts list included); no signature."""
    model = tiny_tflite()
    out = folder / name
    write_bundle(out, model, ["a", "b", "c", "d"], tiny_manifest(model, version), make_zip=False)
    return out


@pytest.mark.parametrize("version", [2, 3])
def test_verify_and_gate_read_bundles_of_schema_2_and_3(tmp_path: Path, version: int) -> None:
    bundle = make_bundle(tmp_path, version=version)
    result = invoke("--json", "verify", str(bundle))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["recipe"]["resolved"] = {"budgets": {"min_accuracy": 0.95}}
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    gated = invoke("--json", "gate", str(bundle))  # 0.9375 < 0.95: read from either schema's fields
    assert gated.exit_code == 3, gated.output
    assert json.loads(gated.stdout)["results"][0]["measured"] == 0.9375
    broken = {**manifest, "schema_version": 1}
    (bundle / MANIFEST).write_text(json.dumps(broken))
    assert invoke("verify", str(bundle)).exit_code == 2


def sign(bundle: Path, key: Path) -> bytes:
    """Sign the bundle's manifest.json as `run --sign` does, writing manifest.sig beside it."""
    signature = sign_manifest((bundle / MANIFEST).read_bytes(), key)
    (bundle / SIGNATURE).write_bytes(signature)
    return signature


@pytest.fixture()
def key(tmp_path: Path) -> Path:
    private = tmp_path / "keys" / "signer"
    generate_keypair(private)
    return private


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path)


def test_a_signed_bundle_verifies_with_its_public_key(bundle: Path, key: Path) -> None:
    sign(bundle, key)
    result = invoke("--json", "verify", str(bundle), "--key", f"{key}.pub")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["problems"] == []
    assert report["signature"] == {"checked": True, "ok": True, "key_sha256": public_key_sha256(Path(f"{key}.pub"))}
    assert SIGNATURE not in {row["path"] for row in report["artifacts"]}  # known, not "unlisted"
    human = invoke("verify", str(bundle), "--key", f"{key}.pub")
    assert human.exit_code == 0 and "signed by key" in " ".join(human.stdout.split())
    unchecked = invoke("--json", "verify", str(bundle))
    assert unchecked.exit_code == 0 and json.loads(unchecked.stdout)["signature"] == {"present": True, "checked": False}


def test_another_key_fails_naming_the_key_mismatch(bundle: Path, key: Path, tmp_path: Path) -> None:
    sign(bundle, key)
    other = tmp_path / "other"
    generate_keypair(other)
    result = invoke("verify", str(bundle), "--key", f"{other}.pub")
    assert result.exit_code == 2, result.output
    signer, given = public_key_sha256(Path(f"{key}.pub")), public_key_sha256(Path(f"{other}.pub"))
    assert f"manifest.sig: signed with key {signer[:16]}, not {given[:16]}" in result.stderr
    assert "the signer's public key" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("old, new", [(VERSION_LINE, '"version": "1.0.1"'), ('"tflite": 0.9375', '"tflite": 0.99')])
def test_a_manifest_field_edited_after_signing_fails_naming_manifest_json(
    bundle: Path, key: Path, old: str, new: str
) -> None:
    sign(bundle, key)
    text = (bundle / MANIFEST).read_text()
    assert old in text
    (bundle / MANIFEST).write_text(text.replace(old, new))
    assert invoke("verify", str(bundle)).exit_code == 0  # the hashes cannot see it: the signature does
    result = invoke("--json", "verify", str(bundle), "--key", f"{key}.pub")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["signature"]["ok"] is False
    assert report["problems"][0].startswith(
        "manifest.json changed after signing, or the signature was made for other bytes"
    )


def test_an_unsigned_bundle_fails_with_a_key(bundle: Path, key: Path) -> None:
    result = invoke("verify", str(bundle), "--key", f"{key}.pub")
    assert result.exit_code == 2 and "the bundle is not signed (it has no manifest.sig)" in result.stderr
    assert "Traceback" not in result.output


def test_a_garbled_signature_file_is_named(bundle: Path, key: Path) -> None:
    good = json.loads(sign(bundle, key))
    public = Path(f"{key}.pub")
    manifest = (bundle / MANIFEST).read_bytes()
    cases = {
        b"not json": "not JSON",
        b"[]": "not a JSON object",
        json.dumps({**good, "algorithm": "rsa"}).encode(): "algorithm is 'rsa'",
        json.dumps({**good, "signature": "@@"}).encode(): "not base64",
        json.dumps({**good, "signature": "AAAA"}).encode(): "signature is 3 bytes",
    }
    for data, why in cases.items():
        [problem] = check_signature(manifest, data, public)
        assert problem.startswith("manifest.sig: not a readable signature file") and why in problem, problem


def test_signing_is_byte_deterministic(tmp_path: Path, key: Path) -> None:
    first, second = make_bundle(tmp_path, "first"), make_bundle(tmp_path, "second")
    assert (first / MANIFEST).read_bytes() == (second / MANIFEST).read_bytes()
    signature = sign(first, key)
    assert sign(second, key) == signature == sign_manifest((first / MANIFEST).read_bytes(), key)
    assert zip_bytes(first) == zip_bytes(second)  # the signed bundle is reproducible, zip included
    record = json.loads(signature)
    assert signature.endswith(b"}\n") and list(record) == sorted(record)
    assert record["algorithm"] == "ed25519" and record["signed_file"] == "manifest.json"
    assert record["public_key_sha256"] == public_key_sha256(Path(f"{key}.pub"))
    load_private_key(key).public_key().verify(base64.b64decode(record["signature"]), (first / MANIFEST).read_bytes())


def test_openssh_ed25519_keys_work(bundle: Path, tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed (Debian: apt install openssh-client)")
    private = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ci", "-f", str(private)], check=True)
    assert Path(f"{private}.pub").read_text().startswith("ssh-ed25519 AAAA")
    sign(bundle, private)
    result = invoke("verify", str(bundle), "--key", f"{private}.pub")
    assert result.exit_code == 0, result.output


def test_an_rsa_or_unusable_key_is_refused_clearly(bundle: Path, key: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "rsa").write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "rsa.pub").write_bytes(
        rsa_key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    with pytest.raises(BundleError, match="rsa: is an RSA key; edgepack signs and checks Ed25519 keys only") as caught:
        sign_manifest(b"{}", tmp_path / "rsa")
    assert caught.value.code == "bad-key" and "edgepack keygen KEY" in str(caught.value.hint)
    sign(bundle, key)
    (tmp_path / "garbage.pub").write_text("hello\n")
    cases = {
        tmp_path / "rsa.pub": "rsa.pub: is an RSA key",
        tmp_path / "none.pub": "none.pub: no such public key file",
        tmp_path / "garbage.pub": "garbage.pub: is not a PEM or OpenSSH key",
        key: "signer: is a private key; checking a signature needs only the public key",
    }
    for path, message in cases.items():
        result = invoke("verify", str(bundle), "--key", str(path))
        assert result.exit_code == 2 and "(bad-key)" in result.stderr and message in result.stderr, result.output
        assert "hint:" in result.stderr and "Traceback" not in result.output


def test_a_signed_zip_bundle_verifies(bundle: Path, key: Path, tmp_path: Path) -> None:
    sign(bundle, key)
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(zip_bytes(bundle))
    result = invoke("--json", "verify", str(archive), "--key", f"{key}.pub")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["signature"]["ok"] is True
    (bundle / MANIFEST).write_text((bundle / MANIFEST).read_text().replace(VERSION_LINE, '"version": "2.0.0"'))
    archive.write_bytes(zip_bytes(bundle))
    result = invoke("verify", str(archive), "--key", f"{key}.pub")
    assert result.exit_code == 2 and "manifest.json changed after signing" in result.stderr


@pytest.mark.slow
def test_run_and_bundle_sign_what_they_write(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    from conftest import tiny_recipe, tiny_work

    private = tmp_path / "keys" / "release"
    generate_keypair(private)
    other = tmp_path / "keys" / "other"
    generate_keypair(other)
    recipe = tiny_recipe(tmp_path, name="signed", extra='\n[bundle]\nformats = ["zip"]\n')
    bad = tmp_path / "not-a-key"
    bad.write_text("hello")
    refused = invoke("run", str(recipe), "--workdir", str(tmp_path / "w"), "--sign", str(bad))
    assert refused.exit_code == 2 and "not-a-key" in refused.stderr  # said before any training
    assert not (tmp_path / "w" / "signed" / "train").exists()
    tiny_work(tiny_run, tmp_path / "w", "signed")  # trained once for the session: signing is what follows
    result = invoke("--json", "run", str(recipe), "--workdir", str(tmp_path / "w"), "--sign", str(private))
    assert result.exit_code in (0, 3), result.output
    bundle = Path(json.loads(result.stdout)["bundle"][0])
    assert (bundle / SIGNATURE).is_file()
    for target in (bundle, bundle.with_name(bundle.name + ".zip")):
        assert invoke("verify", str(target), "--key", str(private) + ".pub").exit_code == 0, target
        wrong = invoke("verify", str(target), "--key", str(other) + ".pub")
        assert wrong.exit_code == 2 and "signed with key" in wrong.stderr
    again = invoke(
        "--json",
        "bundle",
        str(recipe),
        "--workdir",
        str(tmp_path / "w"),
        "--sign",
        str(private),
        "--out",
        str(tmp_path / "again"),
    )
    assert again.exit_code == 0, again.output
    assert (tmp_path / "again" / SIGNATURE).read_bytes() == (bundle / SIGNATURE).read_bytes()
    assert (tmp_path / "again.zip").read_bytes() == bundle.with_name(bundle.name + ".zip").read_bytes()
