"""The synthetic channel generator: determinism, incremental days, contract shapes, faults and the manifest's truth."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import re
import subprocess
import sys
import threading
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from o2o.contracts import LANDING
from o2o.sources.generator import _day_pieces, _to_shanghai, generate

DAYS = 6
CAMPAIGN = {"campaign_id": "SUMMER", "start_day": 2, "lift": 0.6, "window_days": 3, "control_share": 0.3}


@pytest.fixture(scope="module")
def small_cfg(base_cfg):
    """300 customers, 6 days, fault rates high enough that every kind shows up."""
    faults = dataclasses.replace(
        base_cfg.generator.faults,
        malformed_line=0.02,
        missing_id=0.02,
        negative_price=0.02,
        redelivered_files=2,
        late_files=2,
        late_by_days=2,
        extra_column_from_day=3,
    )
    return base_cfg.replace(
        generator={"customers": 300, "days": DAYS, "faults": faults, "campaign": CAMPAIGN}
    )


@pytest.fixture(scope="module")
def landing(small_cfg, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("landing_one_run")
    generate(small_cfg, folder)
    return folder


@pytest.fixture(scope="module")
def manifest(landing) -> dict:
    return json.loads((landing / "_manifest.json").read_text())


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _data_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not p.relative_to(folder).parts[0].startswith("_")
    )


def _read_json_file(path: Path) -> tuple[list[dict], list[int]]:
    """Parsed records and the 1-based numbers of lines that are not valid JSON."""
    records, bad = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            bad.append(number)
    return records, bad


def _read_csv_file(path: Path) -> tuple[list[str], list[dict], list[int]]:
    """Header, well-formed rows as dicts, and the 1-based numbers of rows with a wrong field count."""
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    rows, bad = [], []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split(",")
        if len(fields) != len(header):
            bad.append(number)
        else:
            rows.append(dict(zip(header, fields, strict=True)))
    return header, rows, bad


def _feed_of(landing: Path, path: Path) -> str:
    return path.relative_to(landing).parts[0]


def _e164(typed: str) -> str:
    digits = re.sub(r"\D", "", typed)
    if typed.strip().startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith("86") and len(digits) == 13:
        return "+" + digits
    return "+86" + digits


def test_same_seed_gives_the_same_bytes(small_cfg, landing, tmp_path):
    generate(small_cfg, tmp_path / "again")
    assert _hashes(tmp_path / "again") == _hashes(landing)


def test_days_generated_in_pieces_equal_one_run(small_cfg, landing, tmp_path):
    generate(small_cfg, tmp_path / "pieces", days=2)
    generate(small_cfg, tmp_path / "pieces", first_day=2, days=DAYS)
    assert _hashes(tmp_path / "pieces") == _hashes(landing)


def test_days_written_by_several_processes_equal_one_process(small_cfg, landing, tmp_path):
    # A fresh interpreter: the generator forks only while the process has no other thread, and this
    # test session may already run Spark's gateway threads.
    (tmp_path / "cfg.pickle").write_bytes(pickle.dumps(small_cfg))
    script = (
        "import pickle, sys\n"
        "import o2o.sources.generator as g\n"
        "g.MIN_DAYS_PER_PROCESS = 1\n"
        "g.os.cpu_count = lambda: 3\n"
        "cfg = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "pieces = g._day_pieces(0, cfg.generator.days)\n"
        "assert pieces == [(0, 2), (2, 4), (4, 6)], pieces\n"
        "g.generate(cfg, sys.argv[2])\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "cfg.pickle"), str(tmp_path / "split")], check=True
    )
    assert _hashes(tmp_path / "split") == _hashes(landing)


def test_days_stay_in_one_process_while_another_thread_runs():
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert _day_pieces(0, 90) == [(0, 90)]
    finally:
        release.set()
        other.join()


def test_another_seed_gives_other_data(small_cfg, landing, tmp_path):
    generate(small_cfg, tmp_path / "other", days=1, seed=small_cfg.generator.seed + 1)
    name = "online_orders/2026-06-01/online_orders_2026-06-01.jsonl"
    assert (tmp_path / "other" / name).read_bytes() != (landing / name).read_bytes()


def test_other_settings_into_the_same_folder_are_refused(small_cfg, landing):
    with pytest.raises(ValueError, match="other settings"):
        generate(small_cfg, landing, customers=301, days=1)


def test_layout_and_file_names(landing, small_cfg):
    start = small_cfg.generator.start_date
    stores = [s.store_id for s in small_cfg.silver.stores]
    for day in range(DAYS):
        d = (start + timedelta(days=day)).isoformat()
        for feed, name in [
            ("app_clickstream", f"app_events_{d}.jsonl"),
            ("mini_program_clickstream", f"mp_log_{d}.jsonl"),
            ("crm_members", f"crm_members_{d}.csv"),
            ("reviews", f"reviews_{d}.jsonl"),
            ("online_orders", f"online_orders_{d}.jsonl"),
            *[("pos_sales", f"pos_{s}_{d}.csv") for s in stores],
        ]:
            # a planned late file sits in a later folder under its own business date
            assert list(landing.glob(f"{feed}/*/{name}")), f"{feed}/{name} missing"
    catalogue = list(landing.glob("product_catalogue/*/*"))
    assert [p.relative_to(landing).as_posix() for p in catalogue] == [
        f"product_catalogue/{start.isoformat()}/catalogue_{start.isoformat()}.csv"
    ]


def test_manifest_lists_every_file_with_its_line_and_malformed_counts(landing, manifest):
    listed = {f["file"]: f for feed in manifest["feeds"].values() for f in feed["files"]}
    on_disk = {p.relative_to(landing).as_posix(): p for p in _data_files(landing)}
    assert set(listed) == set(on_disk)
    total_malformed = 0
    for name, path in on_disk.items():
        if path.suffix == ".jsonl":
            records, bad = _read_json_file(path)
            lines = len(records) + len(bad)
        else:
            _, rows, bad = _read_csv_file(path)
            lines = len(rows) + len(bad)
        assert listed[name]["records"] == lines, name
        assert listed[name]["malformed"] == len(bad), name
        total_malformed += len(bad)
    assert total_malformed > 0
    assert manifest["faults"]["by_kind"]["malformed_line"] == total_malformed


def test_every_shape_matches_the_landing_contract(landing, small_cfg):
    extra_from = small_cfg.generator.start_date + timedelta(
        days=small_cfg.generator.faults.extra_column_from_day
    )
    for path in _data_files(landing):
        feed = _feed_of(landing, path)
        names = [f.name for f in LANDING[feed].fields]
        if path.suffix == ".jsonl":
            records, _ = _read_json_file(path)
            for record in records:
                assert list(record) == names, path
        else:
            header, rows, _ = _read_csv_file(path)
            business = date.fromisoformat(re.search(r"(\d{4}-\d{2}-\d{2})", path.name).group(1))
            expected = names + (
                ["wechat_unionid"] if feed in ("pos_sales", "crm_members") and business >= extra_from else []
            )
            assert header == expected, path
    app, _ = _read_json_file(next(landing.glob("app_clickstream/*/*.jsonl")))
    assert all(r["event_ts"].endswith("Z") and r["event_type"] in ("view", "cart", "favourite") for r in app)
    mp, _ = _read_json_file(next(landing.glob("mini_program_clickstream/*/*.jsonl")))
    assert all(isinstance(r["ts"], int) and isinstance(r["scene"], int) for r in mp)
    assert {r["action"] for r in mp} <= {"browse", "add_cart", "collect"}


def _online_records(landing: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(landing.glob("online_orders/*/*.jsonl")):
        records, _ = _read_json_file(path)
        rows.extend({**r, "_file": path.relative_to(landing).as_posix()} for r in records)
    return pd.DataFrame(rows)


def _pos_rows(landing: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(landing.glob("pos_sales/*/*.csv")):
        _, good, _ = _read_csv_file(path)
        rows.extend({**r, "_file": path.relative_to(landing).as_posix()} for r in good)
    return pd.DataFrame(rows)


def test_order_counts_in_the_manifest_match_the_files(landing, manifest):
    online = _online_records(landing)
    online = online[online["order_id"].notna()]
    pos = _pos_rows(landing)
    pos = pos[pos["receipt_no"] != ""]
    pos_key = pos["store_id"] + "|" + pos["receipt_no"]
    pickups = pos[pos["online_order_id"] != ""]
    online_ids = set(online["order_id"])
    bopis = online_ids & set(pickups["online_order_id"])
    refs = np.where(pos["online_order_id"] != "", pos["online_order_id"], pos_key)
    online_lines = {
        (o, i)
        for o, items in zip(online["order_id"], online["items"], strict=True)
        for i in range(1, len(items) + 1)
    }
    pos_lines = set(zip(refs, pos["line_no"].astype(int), strict=True))
    orders = manifest["orders"]
    assert orders["online_orders"] == len(online_ids)
    assert orders["pos_receipts"] == pos_key.nunique()
    assert orders["bopis_orders"] == len(bopis) > 0
    assert orders["expected_distinct_orders"] == len(online_ids | set(refs))
    assert orders["expected_order_lines"] == len(online_lines | pos_lines)
    assert orders["pos_return_receipts"] == pos.loc[pos["quantity"].astype(int) < 0, "receipt_no"].nunique()


def test_pickup_orders_appear_in_both_feeds_with_the_same_lines(landing):
    online = _online_records(landing)
    online = online[online["order_id"].notna() & (online["fulfilment"] == "pickup")]
    pos = _pos_rows(landing)
    pos = pos[(pos["online_order_id"] != "") & (pos["receipt_no"] != "")]
    assert len(pos) > 0
    completed = compared = 0
    for order_id, lines in pos.groupby("online_order_id"):
        records = online[online["order_id"] == order_id]
        if records.empty:
            continue
        items = records.iloc[0]["items"]
        assert set(lines["store_id"]) == set(records["pickup_store_id"])
        for row in lines.itertuples():
            item = items[int(row.line_no) - 1]
            assert (item["sku"], item["quantity"], abs(item["unit_price"])) == (
                row.sku,
                int(row.quantity),
                abs(float(row.unit_price)),
            )
        completed += "completed" in set(records["status"])
        compared += 1
    # the completed record can fall after the last generated day (a London evening is the next day in Shanghai)
    assert compared > 0 and completed / compared > 0.8


def test_status_lifecycle_newer_records_come_later(landing):
    online = _online_records(landing)
    online = online[online["order_id"].notna()]
    assert set(online["status"]) <= {
        "created",
        "paid",
        "shipped",
        "delivered",
        "cancelled",
        "ready_for_pickup",
        "completed",
    }
    repeated = online.groupby("order_id").filter(lambda g: len(g) > 1)
    assert len(repeated) > 0
    for _, group in repeated.groupby("order_id"):
        assert group["order_ts"].nunique() == 1
        first = group.sort_values("updated_ts").iloc[0]
        assert first["status"] in ("created", "paid")
    assert online["order_ts"].str.endswith("+08:00").all()


def test_fault_records_point_at_real_faults(landing, manifest, small_cfg):
    by_kind = manifest["faults"]["by_kind"]
    for kind in ("malformed_line", "missing_id", "negative_price", "redelivered_file", "late_file"):
        assert by_kind.get(kind, 0) > 0, kind
    for fault in manifest["faults"]["records"]:
        lines = (landing / fault["file"]).read_text().splitlines()
        line = lines[fault["line"] - 1]
        if fault["kind"] == "malformed_line":
            if fault["file"].endswith(".jsonl"):
                with pytest.raises(json.JSONDecodeError):
                    json.loads(line)
            else:
                assert len(line.split(",")) != len(lines[0].split(","))
        elif fault["kind"] == "missing_id":
            if fault["file"].endswith(".jsonl"):
                assert json.loads(line)["order_id"] is None
            else:
                assert line.split(",")[1] == ""
        elif fault["kind"] == "negative_price":
            if fault["file"].endswith(".jsonl"):
                assert json.loads(line)["items"][0]["unit_price"] < 0
            else:
                assert float(line.split(",")[6]) < 0
    for resent in manifest["redelivered_files"]:
        assert resent["file"].endswith(("_resend.jsonl", "_resend.csv"))
        assert (landing / resent["file"]).read_bytes() == (landing / resent["original"]).read_bytes()
    lag = small_cfg.generator.faults.late_by_days
    for late in manifest["late_files"]:
        feed, folder, name = late["file"].split("/")
        assert date.fromisoformat(folder) == date.fromisoformat(late["business_date"]) + timedelta(days=lag)
        assert late["business_date"] in name
        assert not (landing / feed / late["business_date"] / name).exists()


def test_truth_identities_cover_every_id_in_the_files(landing, manifest):
    truth = pd.read_csv(landing / "_truth" / "identities.csv", dtype=str, keep_default_na=False)
    known = set(zip(truth["namespace"], truth["source_customer_id"], strict=True))
    person_of = dict(
        zip(
            zip(truth["namespace"], truth["source_customer_id"], strict=True), truth["person_id"], strict=True
        )
    )
    seen: set[tuple[str, str]] = set()
    online = _online_records(landing)
    for channel, customer in zip(online["channel"], online["customer_id"], strict=True):
        seen.add(("mini_program" if channel == "mini_program" else "online_account", customer))
    app_devices_logged_in: dict[tuple[str, str], bool] = {}
    for path in landing.glob("app_clickstream/*/*.jsonl"):
        records, _ = _read_json_file(path)
        for r in records:
            seen.add(("app_device", r["device_id"]))
            if r["user_id"] is not None:
                seen.add(("online_account", r["user_id"]))
            key = (path.name, r["device_id"])
            app_devices_logged_in[key] = app_devices_logged_in.get(key, False) or r["user_id"] is not None
    for path in landing.glob("mini_program_clickstream/*/*.jsonl"):
        seen.update(("mini_program", r["openid"]) for r in _read_json_file(path)[0])
    for path in landing.glob("crm_members/*/*.csv"):
        seen.update(("member", r["member_id"]) for r in _read_csv_file(path)[1])
    pos = _pos_rows(landing)
    cards = pos.loc[pos["member_card"] != "", "member_card"].str.replace(" ", "").str.upper()
    seen.update(("member", c) for c in cards)
    phone_only = pos[(pos["member_card"] == "") & (pos["phone"] != "")]
    seen.update(("phone", _e164(p)) for p in phone_only["phone"])
    assert seen <= known, sorted(seen - known)[:5]
    assert {ns for ns, _ in seen} == {"online_account", "mini_program", "app_device", "member", "phone"}
    # a person's device logs in at least once on every day it shows up; anonymous devices never do
    for (_, device), logged_in in app_devices_logged_in.items():
        assert logged_in == (person_of[("app_device", device)] != "")
    assert manifest["anonymous_devices"] == sum(
        1 for (ns, _), p in person_of.items() if ns == "app_device" and p == ""
    )
    assert manifest["persons"] == truth.loc[truth["person_id"] != "", "person_id"].nunique()


def test_members_have_unique_phones_and_cards_normalise_to_member_ids(landing):
    members = pd.concat(
        [pd.DataFrame(_read_csv_file(p)[1]) for p in sorted(landing.glob("crm_members/*/*.csv"))],
        ignore_index=True,
    ).drop_duplicates("member_id")
    phones = members["phone"].map(_e164)
    assert phones.is_unique
    assert phones.str.fullmatch(r"\+861\d{10}").all()
    assert members["member_id"].str.fullmatch(r"M\d{7}").all()
    pos = _pos_rows(landing)
    cards = pos.loc[pos["member_card"] != "", "member_card"]
    assert cards.str.replace(" ", "").str.upper().isin(set(members["member_id"])).all()


def test_app_orders_are_preceded_by_views_of_the_same_items(landing):
    online = _online_records(landing)
    app = online[
        (online["channel"] == "app") & online["order_id"].notna() & online["status"].isin(["paid", "created"])
    ]
    views = set()
    for path in landing.glob("app_clickstream/*/*.jsonl"):
        views.update((r["user_id"], r["sku"]) for r in _read_json_file(path)[0] if r["event_type"] == "view")
    bought = [
        (c, item["sku"]) for c, items in zip(app["customer_id"], app["items"], strict=True) for item in items
    ]
    assert bought
    assert sum(pair in views for pair in bought) / len(bought) > 0.9


def test_reviews_are_mostly_positive_and_refer_to_delivered_orders(landing):
    reviews = pd.concat(
        [pd.DataFrame(_read_json_file(p)[0]) for p in landing.glob("reviews/*/*.jsonl")], ignore_index=True
    )
    assert reviews["rating"].between(1, 5).all()
    assert reviews["rating"].mean() > 3.5
    online = _online_records(landing)
    done = set(online.loc[online["status"].isin(["delivered", "completed"]), "order_id"])
    assert reviews["order_id"].isin(done | set(online["order_id"])).all()


def test_campaign_truth_follows_the_hash_rule(manifest, landing):
    campaign = manifest["campaign"]
    members = pd.concat(
        [pd.DataFrame(_read_csv_file(p)[1]) for p in sorted(landing.glob("crm_members/*/*.csv"))],
        ignore_index=True,
    ).drop_duplicates("member_id")
    start = date(2026, 6, 1) + timedelta(days=CAMPAIGN["start_day"])
    target = members[members["registered_at"] < start.isoformat()]["member_id"]

    def held_out(member_id: str) -> bool:
        digest = hashlib.sha256(f"{CAMPAIGN['campaign_id']}|{member_id}".encode()).hexdigest()
        return int(digest[:8], 16) / 2**32 < CAMPAIGN["control_share"]

    control = sum(held_out(m) for m in target)
    # a member whose CRM line was made malformed is in the target but not readable here
    lost = {
        f["key"]
        for f in manifest["faults"]["records"]
        if f["feed"] == "crm_members" and f["kind"] == "malformed_line"
    }
    assert len(target) <= campaign["target_members"] <= len(target) + len(lost)
    assert control <= campaign["control_members"] <= control + sum(held_out(m) for m in lost)
    assert campaign["treated_members"] + campaign["control_members"] == campaign["target_members"]
    assert campaign["treated_members"] > 0 and campaign["control_members"] > 0
    assert 0 < campaign["true_effect"] < 1


def test_campaign_without_lift_has_no_true_effect(small_cfg, tmp_path):
    cfg = small_cfg.replace(generator={"campaign": {**CAMPAIGN, "lift": 0.0}})
    campaign = generate(cfg, tmp_path, days=1)["campaign"]
    assert campaign["true_effect"] == 0.0
    assert campaign["treated_members"] > 0


def test_store_local_times_follow_daylight_saving():
    local = np.array(
        ["2026-06-01T10:00:00", "2026-12-01T10:00:00", "2026-06-01T10:00:00", "2026-12-01T10:00:00"],
        dtype="datetime64[s]",
    )
    zones = np.array(["Australia/Sydney", "Australia/Sydney", "Europe/London", "Europe/London"])
    expected = np.array(
        ["2026-06-01T08:00:00", "2026-12-01T07:00:00", "2026-06-01T17:00:00", "2026-12-01T18:00:00"],
        dtype="datetime64[s]",
    )
    assert (_to_shanghai(local, zones) == expected).all()
