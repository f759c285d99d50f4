"""Config loading: layering, env-var overrides, and errors that name the key and the file."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from o2o.config import ConfigError, load_config

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def conf_dir(tmp_path) -> Path:
    target = tmp_path / "conf"
    shutil.copytree(PROJECT / "conf", target)
    return target


def test_local_env_layers_over_base_and_resolves_paths(conf_dir):
    cfg = load_config("local", conf_dir=conf_dir)

    assert cfg.env == "local"
    assert cfg.silver.dev_salt_allowed is True  # from local.yaml
    assert cfg.generator.customers == 20000  # from base.yaml
    assert cfg.resolve(cfg.lake.root) == str((conf_dir.parent / "lake").resolve())
    assert cfg.store_timezones()["S007"] == "Australia/Sydney"


def test_cluster_env_keeps_object_store_uris(conf_dir):
    cfg = load_config("cluster", conf_dir=conf_dir)

    assert cfg.resolve(cfg.lake.root) == "s3a://retail-lake/o2o"
    assert cfg.silver.dev_salt_allowed is False


def test_env_vars_override_nested_keys_with_types(conf_dir, monkeypatch):
    monkeypatch.setenv("O2O__LAKE__ROOT", "/data/lake")
    monkeypatch.setenv("O2O__SPARK__SHUFFLE_PARTITIONS", "7")

    cfg = load_config("local", conf_dir=conf_dir)

    assert cfg.lake.root == "/data/lake"
    assert cfg.spark.shuffle_partitions == 7


def test_unknown_key_names_key_and_file(conf_dir):
    (conf_dir / "local.yaml").write_text("lake:\n  rooot: /tmp/x\n")

    with pytest.raises(ConfigError) as error:
        load_config("local", conf_dir=conf_dir)

    assert "lake.rooot" in str(error.value)
    assert str(conf_dir / "local.yaml") in str(error.value)


def test_unknown_env_var_key_is_rejected(conf_dir, monkeypatch):
    monkeypatch.setenv("O2O__SPARK__MASTRE", "local[1]")

    with pytest.raises(ConfigError, match=r"environment.*spark\.mastre"):
        load_config("local", conf_dir=conf_dir)


def test_missing_required_value_is_named(conf_dir):
    base = (conf_dir / "base.yaml").read_text().replace("  root: lake ", "  # root removed ")
    (conf_dir / "base.yaml").write_text(base)

    with pytest.raises(ConfigError, match=r"missing required key 'lake\.root'"):
        load_config("local", conf_dir=conf_dir)


def test_bad_path_scheme_and_whitespace_are_rejected(conf_dir):
    (conf_dir / "local.yaml").write_text("lake:\n  root: s4://bucket/lake\n")
    with pytest.raises(ConfigError, match=r"lake\.root.*unsupported scheme 's4'"):
        load_config("local", conf_dir=conf_dir)

    (conf_dir / "local.yaml").write_text("lake:\n  landing: 'my landing'\n")
    with pytest.raises(ConfigError, match=r"lake\.landing.*white space"):
        load_config("local", conf_dir=conf_dir)


def test_wrong_type_and_unknown_timezone_are_named(conf_dir):
    (conf_dir / "local.yaml").write_text("generator:\n  customers: many\n")
    with pytest.raises(ConfigError, match=r"generator\.customers.*must be a number"):
        load_config("local", conf_dir=conf_dir)

    (conf_dir / "local.yaml").write_text(
        "silver:\n  stores:\n    - {store_id: X1, city: Nowhere, timezone: Mars/Base}\n"
    )
    with pytest.raises(ConfigError, match=r"X1.*Mars/Base"):
        load_config("local", conf_dir=conf_dir)


def test_unknown_env_lists_known_ones(conf_dir):
    with pytest.raises(ConfigError, match=r"no config for env 'prod'.*cluster, local"):
        load_config("prod", conf_dir=conf_dir)


def test_config_is_frozen(conf_dir):
    cfg = load_config("local", conf_dir=conf_dir)

    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lake.root = "/elsewhere"
