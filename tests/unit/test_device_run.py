"""`DeviceRun`: the validation record's dict form is exactly the one the validate stage made, keys in order."""

from __future__ import annotations

import json

import pytest

from edgepack.records import DeviceRun, device_dicts, device_runs

HOST = {
    "device": "host",
    "kind": "local",
    "emulated": False,
    "latency_ms": {"p50": 0.01, "p90": 0.02, "runs": 200},
    "init_ms": 1.5,
    "warmup": 20,
    "threads": 1,
    "cpus": [0, 1],
    "memory_limit": None,
    "peak_rss_kb": 49608,
    "runtime": {"name": "ai-edge-litert", "version": "2.3.0"},
    "python": "3.11.7",
    "machine": "x86_64",
    "parity": {"ok": True, "identical": True, "max_abs_diff": 0.0, "reference": True, "outputs": 1},
    "outputs_sha256": ["ab" * 32],
}
ETHOS = {
    "device": "ethos-u55-128",
    "kind": "ethos-u",
    "emulated": True,
    "latency_ms": None,
    "init_ms": None,
    "warmup": 0,
    "threads": 1,
    "peak_rss_kb": None,
    "runtime": {"name": "vela", "version": "4.0"},
    "estimate": {"inference_ms": 0.5},
    "parity": {"ok": None, "why": "nothing runs"},
    "outputs_sha256": None,
}


def test_the_dict_round_trips_byte_for_byte() -> None:
    for data in (HOST, ETHOS):
        run = DeviceRun.from_dict(data)
        assert json.dumps(run.to_dict()) == json.dumps(data)
    assert device_dicts(device_runs({"host": HOST})) == {"host": HOST}


def test_the_typed_fields_and_the_kind_specific_ones() -> None:
    host, ethos = DeviceRun.from_dict(HOST), DeviceRun.from_dict(ETHOS)
    assert host.latency_ms == HOST["latency_ms"] and host.parity_ok is True and host.extra["cpus"] == [0, 1]
    assert host.estimate is None and ethos.estimate == {"inference_ms": 0.5} and ethos.parity_ok is None
    assert set(host.extra) == {"cpus", "memory_limit", "python", "machine"}


def test_a_record_made_in_code_has_every_field_and_an_older_one_reads() -> None:
    made = DeviceRun("d", "local", False, None, parity={"ok": None, "why": "x"}, extra={"arena": {"bytes": 8}})
    assert list(made.to_dict())[:3] == ["device", "kind", "emulated"] and made.to_dict()["arena"] == {"bytes": 8}
    old = DeviceRun.from_dict({"device": "host", "kind": "local", "latency_ms": {"p90": 1.0}, "runtime": None})
    assert old.emulated is False and old.parity == {} and "init_ms" not in old.to_dict()


def test_the_0_3_dict_access_still_reads_with_a_warning() -> None:
    run = DeviceRun.from_dict(HOST)
    with pytest.warns(DeprecationWarning, match=r"DeviceRun\['latency_ms'\] is deprecated"):
        assert run["latency_ms"] == {"p50": 0.01, "p90": 0.02, "runs": 200}
    with pytest.warns(DeprecationWarning), pytest.raises(KeyError):
        run["no_such_key"]
    with pytest.warns(DeprecationWarning):
        assert "peak_rss_kb" in run and "arena" not in run
    with pytest.warns(DeprecationWarning):
        assert run.get("threads") == 1 and run.get("arena", "none") == "none"
    with pytest.warns(DeprecationWarning):
        assert list(run) == list(HOST)
    with pytest.warns(DeprecationWarning):
        assert dict(run.items()) == HOST


def test_the_0_3_records_module_still_imports_with_a_warning() -> None:
    import importlib
    import sys

    sys.modules.pop("edgepack.pipeline.records", None)
    with pytest.warns(DeprecationWarning, match="moved to edgepack.records"):
        old = importlib.import_module("edgepack.pipeline.records")
    from edgepack import records

    assert old.TrainRecord is records.TrainRecord
    assert old.EvaluateRecord is records.EvaluateRecord
