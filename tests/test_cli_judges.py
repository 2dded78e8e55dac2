"""``alignbench judges``: presets, backends, servers, and what is missing on this machine."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import run_cli

SECRET = "zhipu.SECRET-never-printed"


def test_lists_presets_with_status_and_never_the_key() -> None:
    proc = run_cli("judges", "--format", "json", env={"ZHIPUAI_API_KEY": SECRET})
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert {"gpt-4o", "critiquellm", "glm-4", "glm-4-plus", "glm-4-flash", "critiquellm-hf"} <= set(rows)
    assert rows["glm-4-flash"]["backend"] == "zhipuai" and rows["glm-4-flash"]["model"] == "glm-4-flash"
    assert rows["glm-4"]["key"] == "set" and rows["glm-4"]["key_env"] == "ZHIPUAI_API_KEY"
    assert rows["gpt-4o"]["key"] == "not set"  # conftest removed it
    assert rows["critiquellm"]["key"] == "optional"  # a local vLLM server needs none
    assert rows["critiquellm"]["base_url"] == ["http://127.0.0.1:8000/v1"]
    assert rows["critiquellm-hf"]["rubric"] == "critiquellm" and rows["critiquellm-hf"]["key"] == "not needed"
    assert rows["critiquellm-hf"]["options"]["trust_remote_code"] is True
    assert all(r["package"] == "ok" for r in rows.values())  # the dev environment has every extra
    assert SECRET not in proc.stdout + proc.stderr

    table = run_cli("judges", env={"ZHIPUAI_API_KEY": SECRET})
    assert table.returncode == 0
    for text in ("glm-4-plus", "critiquellm-hf", "thu-coai/CritiqueLLM-6B", "in this process", "$ZHIPUAI_API_KEY"):
        assert text in table.stdout
    assert SECRET not in table.stdout + table.stderr


def test_missing_local_extra_is_reported_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    # sys.modules[name] = None is Python's own way to make a package unimportable (here for the in-process CLI)
    monkeypatch.setitem(sys.modules, "torch", None)
    proc = run_cli("judges", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["critiquellm-hf"]["package"] == "missing torch"
    assert rows["critiquellm-hf"]["install"] == "pip install 'alignbench[local]'"
    assert rows["glm-4"]["package"] == "ok"
    table = run_cli("judges")  # rich markup would eat "[local]" and print pip install 'alignbench'
    assert "critiquellm-hf: pip install 'alignbench[local]'" in table.stdout

    proc = run_cli("score", "-q", "data/zh/questions.jsonl", "-a", "data/zh/answers/model-a.jsonl", "--judge",
                   "hf:/tmp/some-model")  # paths relative to the repository, where run_cli runs
    assert proc.returncode == 2
    assert "pip install 'alignbench[local]'" in proc.stderr and "Traceback" not in proc.stderr


def test_judge_catalog_is_what_the_cli_prints_and_holds_no_key(monkeypatch) -> None:
    import alignbench

    monkeypatch.setenv("ZHIPUAI_API_KEY", SECRET)
    catalog = alignbench.judge_catalog()
    proc = run_cli("judges", "--format", "json", env={"ZHIPUAI_API_KEY": SECRET})
    assert proc.returncode == 0, proc.stderr
    assert catalog.as_json() == json.loads(proc.stdout)
    assert SECRET not in json.dumps(catalog.presets) + json.dumps(catalog.default_urls)
    by_name = {r["name"]: r for r in catalog.presets}
    assert by_name["glm-4"]["key"] == "set" and by_name["gpt-4o"]["key"] == "not set"
    assert catalog.default_urls["openai"] == "https://api.openai.com/v1" and set(catalog.default_urls) >= {"openai",
                                                                                                           "zhipuai"}
