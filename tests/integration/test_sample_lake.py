"""The sample lake against the generator's truth: records, orders, pick-up in store, faults, persons, campaign effect.

Every expectation here comes from the generator's manifest and truth files (landing/_manifest.json,
landing/_truth/) or from an independent pandas reading of the landing files (or, for RFM, of silver),
never from the pipeline's code.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pyspark.sql.functions as F
import pyspark.sql.types as T
import pytest

from conftest import CAMPAIGN, PLACEBO_CAMPAIGN
from o2o import contracts, lake
from o2o.contracts import FEEDS, bronze_table
from o2o.silver import stage as silver_stage
from rfm_reference import pandas_rfm

FAULT_REASON = {
    "malformed_line": "malformed",
    "missing_id": "missing_key",
    "negative_price": "negative_price",
}


def _table(spark, sample_lake, name: str) -> pd.DataFrame:
    """A small table of the sample lake as pandas (the sample holds a few thousand rows per table)."""
    return lake.read(spark, sample_lake.cfg, name).toPandas()


def _relative(uri: str, landing: Path) -> str:
    """A bronze `_source_file` URI as the manifest spells files: relative to the landing folder."""
    return uri.split(str(landing).rstrip("/") + "/", 1)[1]


# ---------------------------------------------------------------- bronze and orders


def test_bronze_holds_every_landing_record(spark, sample_lake):
    for feed in FEEDS:
        expected = sample_lake.manifest["feeds"][feed]["records"]
        assert lake.read(spark, sample_lake.cfg, bronze_table(feed)).count() == expected, feed


def _truth_lines(sample_lake) -> pd.DataFrame:
    """Every order line record the generator wrote, with `ref`: the silver order id it must end up in.

    A pick-up receipt's lines belong to the online order they carry; a POS receipt is 'store-receipt_no'.
    """
    days = sorted((sample_lake.landing / "_truth" / "days").glob("*_lines.csv"))
    lines = pd.concat(
        [pd.read_csv(path, dtype=str, keep_default_na=False) for path in days], ignore_index=True
    )
    lines = lines[lines["valid"] == "True"]
    pos_id = lines["order_key"].str.replace("|", "-", regex=False)
    return lines.assign(
        ref=lines["online_order_id"].where(lines["online_order_id"] != "", pos_id),
        line_no=lines["line_no"].astype(int),
        priced=lines["negative_price"] != "True",
    )


def _clean_online_records(landing: Path):
    """Online order records silver must accept: parseable, with ids, no price or fee below zero.

    Read from the landing files: a negative price quarantines the whole record (the order as it stood
    then), so an order survives through its other records; the truth lines flag single lines only.
    """
    for record in _json_records(landing / "online_orders"):
        items = record.get("items") or []
        if (
            (record.get("order_id") or "").strip()
            and (record.get("customer_id") or "").strip()
            and all((item.get("unit_price") or 0) >= 0 for item in items)
            and (record.get("shipping_fee") or 0) >= 0
        ):
            yield record


def test_silver_orders_and_lines_are_the_generated_ones(spark, sample_lake):
    truth = _truth_lines(sample_lake)
    online = list(_clean_online_records(sample_lake.landing))
    pos = truth[(truth["feed"] == "pos_sales") & truth["priced"]]  # a POS line is a record of its own
    receipts = pos[pos["online_order_id"] == ""]
    expected_orders = {r["order_id"] for r in online} | set(pos["ref"])
    expected_lines = {(r["order_id"], n) for r in online for n in range(1, len(r["items"]) + 1)} | set(
        receipts[["ref", "line_no"]].itertuples(index=False, name=None)
    )
    orders = lake.read(spark, sample_lake.cfg, "silver.orders").select("order_id").toPandas()["order_id"]
    lines = lake.read(spark, sample_lake.cfg, "silver.order_lines").select("order_id", "line_no").toPandas()
    assert orders.is_unique
    assert set(orders) == expected_orders
    assert len(lines) == len(expected_lines)
    assert set(lines.itertuples(index=False, name=None)) == expected_lines
    manifest = sample_lake.manifest["orders"]
    assert len(truth["ref"].unique()) == manifest["expected_distinct_orders"]
    assert len(truth.drop_duplicates(["ref", "line_no"])) == manifest["expected_order_lines"]


def test_pick_up_in_store_orders_are_one_order_with_the_pos_store(spark, sample_lake):
    truth = _truth_lines(sample_lake)
    pickups = truth[(truth["feed"] == "pos_sales") & (truth["online_order_id"] != "")]
    online_ids = set(truth.loc[truth["feed"] == "online_orders", "order_key"])
    bopis = {
        row.online_order_id: row.order_key.split("|")[0]
        for row in pickups.drop_duplicates("online_order_id").itertuples()
        if row.online_order_id in online_ids
    }
    assert len(bopis) == sample_lake.manifest["orders"]["bopis_orders"]

    orders = _table(spark, sample_lake, "silver.orders").set_index("order_id")
    pos_copy_ids = {key.replace("|", "-") for key in pickups["order_key"]}
    assert not pos_copy_ids & set(orders.index), "a pick-up receipt became an order of its own"
    held = orders.loc[orders.index.intersection(list(bopis))]
    assert len(held) == len(bopis)
    assert (held["fulfilment"] == "pick_up_in_store").all()
    assert held["store_id"].to_dict() == {order: bopis[order] for order in held.index}


def test_every_injected_fault_is_quarantined_with_its_reason(spark, sample_lake):
    faults = sample_lake.manifest["faults"]["records"]
    assert faults, "the sample has no injected faults to look for"
    quarantine = _table(spark, sample_lake, "silver.quarantine")
    quarantine["file"] = [_relative(uri, sample_lake.landing) for uri in quarantine["source_file"]]
    found = Counter(zip(quarantine["feed"], quarantine["file"], quarantine["reason"], strict=True))
    wanted = Counter((f["feed"], f["file"], FAULT_REASON[f["kind"]]) for f in faults)
    short = {key: (count, found[key]) for key, count in wanted.items() if found[key] < count}
    assert not short, f"(feed, file, reason): (injected, quarantined) {short}"
    # A fault whose key survives in the raw line is quarantined with that very line.
    for fault in faults:
        if fault["kind"] != "missing_id":
            key = fault["key"].split("#")[0].split("|")[-1]
            mine = quarantine[
                (quarantine["file"] == fault["file"]) & (quarantine["reason"] == FAULT_REASON[fault["kind"]])
            ]
            assert mine["raw_payload"].str.contains(key, regex=False).any(), fault


# ---------------------------------------------------------------- persons: an independent reading of the landing files


def _canonical_phone(text: str | None) -> str | None:
    digits = re.sub(r"\D", "", text or "")
    for prefix in ("0086", "86"):
        if len(digits) == len(prefix) + 11 and digits.startswith(prefix):
            digits = digits[len(prefix) :]
    return digits if len(digits) == 11 and digits.startswith("1") else None


def _canonical_email(text: str | None) -> str | None:
    email = (text or "").strip().lower()
    return email if "@" in email else None


def _json_records(folder: Path):
    for path in sorted(folder.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a malformed line: quarantined, shows no identity
            if isinstance(record, dict):
                yield record


def _csv_records(folder: Path):
    for path in sorted(folder.rglob("*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        header = rows[0] if rows else []
        for row in rows[1:]:
            if len(row) == len(header):
                yield dict(zip(header, row, strict=True))


class _Persons:
    """Union-find over identities ('namespace:id') and the phone/email values they show."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, node: str) -> str:
        self.parent.setdefault(node, node)
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def identities(self) -> set[str]:
        """Every identity seen (not the phone and email values that link them)."""
        return {node for node in self.parent if not node.startswith(("phone=", "email="))}

    def link(self, identity: str, *values: str | None) -> None:
        for value in values:
            if value:
                self.parent[self.find(value)] = self.find(identity)
        self.find(identity)


def _reference_persons(landing: Path) -> _Persons:
    """Who is who, from the landing files alone: ids linked by a shared phone, email or logged-in device."""
    persons = _Persons()
    namespace = {"web": "online_account", "app": "online_account", "mini_program": "mini_program"}

    def phone(text):
        return "phone=" + p if (p := _canonical_phone(text)) else None

    def email(text):
        return "email=" + e if (e := _canonical_email(text)) else None

    for record in _json_records(landing / "online_orders"):
        if (record.get("customer_id") or "").strip() and record.get("channel") in namespace:
            node = f"{namespace[record['channel']]}:{record['customer_id'].strip()}"
            persons.link(node, phone(record.get("phone")), email(record.get("email")))
    for record in _json_records(landing / "reviews"):
        if (record.get("customer_id") or "").strip() and record.get("channel") in namespace:
            persons.link(f"{namespace[record['channel']]}:{record['customer_id'].strip()}")
    for record in _json_records(landing / "app_clickstream"):
        account, device = (record.get("user_id") or "").strip(), (record.get("device_id") or "").strip()
        if device:
            persons.link(f"app_device:{device}", f"online_account:{account}" if account else None)
        elif account:
            persons.link(f"online_account:{account}")
    for record in _json_records(landing / "mini_program_clickstream"):
        if (record.get("openid") or "").strip():
            persons.link(f"mini_program:{record['openid'].strip()}", phone(record.get("bound_phone")))
    for record in _csv_records(landing / "crm_members"):
        member = re.sub(r"\s+", "", record.get("member_id", "")).upper()
        if member:
            persons.link(f"member:{member}", phone(record.get("phone")), email(record.get("email")))
    for record in _csv_records(landing / "pos_sales"):
        card = re.sub(r"\s+", "", record.get("member_card", "")).upper()
        if card:
            persons.link(f"member:{card}", phone(record.get("phone")))
        elif canonical := _canonical_phone(record.get("phone")):
            persons.link(f"phone:{canonical}", "phone=" + canonical)
    return persons


@pytest.fixture(scope="module")
def reference_persons(sample_lake) -> _Persons:
    """The landing files read once for both identity tests."""
    return _reference_persons(sample_lake.landing)


def test_customer_keys_are_the_persons_the_landing_files_reveal(spark, sample_lake, reference_persons):
    reference = reference_persons
    identity = _table(spark, sample_lake, "silver.customer_identity")
    by_id = identity[identity["channel"] != "phone"]  # phone identities are salted hashes in silver
    nodes = by_id["channel"] + ":" + by_id["source_customer_id"]
    assert set(nodes) == {n for n in reference.identities() if not n.startswith("phone:")}
    component = nodes.map(reference.find)
    pairs = pd.DataFrame({"key": by_id["customer_key"].to_numpy(), "component": component.to_numpy()})
    # One key per component and one component per key: the same partition of identities.
    assert pairs.groupby("key")["component"].nunique().max() == 1
    assert pairs.groupby("component")["key"].nunique().max() == 1
    phones = {n for n in reference.identities() if n.startswith("phone:")}
    assert (
        (identity["channel"] == "phone").sum() == len(phones) == sample_lake.manifest["identities"]["phone"]
    )


def test_no_key_holds_two_persons_and_linked_persons_have_one_key(spark, sample_lake, reference_persons):
    truth = pd.read_csv(sample_lake.landing / "_truth" / "identities.csv", dtype=str, keep_default_na=False)
    truth = truth[truth["namespace"] != "phone"]
    identity = _table(spark, sample_lake, "silver.customer_identity")
    joined = truth.merge(
        identity, left_on=["namespace", "source_customer_id"], right_on=["channel", "source_customer_id"]
    )
    assert len(joined) >= len(truth) - sample_lake.manifest["faults"]["by_kind"].get("missing_id", 0)
    known = joined[joined["person_id"] != ""]
    assert known.groupby("customer_key")["person_id"].nunique().max() == 1, "two persons merged into one key"
    reference = reference_persons
    known = known.assign(
        component=(known["namespace"] + ":" + known["source_customer_id"]).map(reference.find)
    )
    linked = known.groupby("person_id")["component"].nunique() == 1
    keys = known.groupby("person_id")["customer_key"].nunique()
    assert (keys[linked[linked].index] == 1).all(), "a person the files link fully got two keys"
    persons = known["person_id"].nunique()
    assert persons <= sample_lake.manifest["persons"]
    # Anonymous app devices are profiles of their own, never merged into a person.
    anonymous = joined[joined["person_id"] == ""]
    assert anonymous["customer_key"].nunique() == len(anonymous) == sample_lake.manifest["anonymous_devices"]


# ---------------------------------------------------------------- RFM against an independent pandas reference


def _cents(amounts: pd.Series) -> pd.Series:
    """Decimal money as integer cents (exact, no float)."""
    return amounts.map(lambda amount: int(amount.scaleb(2)))


def test_gold_rfm_snapshot_equals_the_pandas_reference_on_silver(spark, sample_lake):
    orders = _table(spark, sample_lake, "silver.orders")[["order_id", "customer_key", "order_ts", "status"]]
    lines = _table(spark, sample_lake, "silver.order_lines")[["order_id", "quantity", "amount"]]
    lines = lines.assign(amount_cents=_cents(lines["amount"]))
    expected = pandas_rfm(orders, lines, sample_lake.as_of, sample_lake.cfg.gold.lookback_days)

    snapshot = (
        lake.read(spark, sample_lake.cfg, "gold.customer_rfm")
        .where(F.col("as_of") == F.lit(sample_lake.as_of))
        .select("customer_key", "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score")
        .toPandas()
    )
    snapshot["monetary_cents"] = _cents(snapshot.pop("monetary"))

    assert len(expected) > 500 and expected["frequency"].duplicated().any()  # enough customers, and ties
    merged = expected.merge(
        snapshot, on="customer_key", how="outer", suffixes=("_pandas", "_gold"), indicator=True
    )
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"].head(10)
    for column in ("recency_days", "frequency", "monetary_cents", "r_score", "f_score", "m_score"):
        differ = merged[merged[f"{column}_pandas"] != merged[f"{column}_gold"]]
        assert differ.empty, f"{column}: {len(differ)} customers differ\n{differ.head(10)}"


# ---------------------------------------------------------------- campaign effect against the simulated lift


def _effect(spark, sample_lake, campaign_id: str) -> dict:
    rows = (
        lake.read(spark, sample_lake.cfg, "gold.campaign_effect")
        .where((F.col("as_of") == F.lit(sample_lake.as_of)) & (F.col("campaign_id") == campaign_id))
        .collect()
    )
    assert len(rows) == 1, campaign_id
    return rows[0].asDict()


def _sent_list(spark, sample_lake, campaign_id: str) -> pd.DataFrame:
    targets = (
        lake.read(spark, sample_lake.cfg, "gold.segment_targets")
        .where((F.col("as_of") == F.lit(sample_lake.list_as_of)) & (F.col("campaign_id") == campaign_id))
        .select("customer_key", "is_control")
    )
    members = lake.read(spark, sample_lake.cfg, "silver.customers").select("customer_key", "member_id")
    return targets.join(members, "customer_key", "left").toPandas()


def test_campaign_effect_interval_holds_the_simulated_lift(spark, sample_lake):
    truth = pd.read_csv(sample_lake.landing / "_truth" / "campaign.csv", dtype={"member_id": str})
    truth = truth.rename(columns={"is_control": "held_out_by_generator"})
    sent = _sent_list(spark, sample_lake, CAMPAIGN["campaign_id"]).merge(truth, on="member_id", how="left")
    members = sent.dropna(subset=["held_out_by_generator"])
    assert len(members) > 100, "too few members on the list to measure anything"
    # Gold holds out exactly the members the generator left without lift (one hash rule, two implementations).
    assert (members["is_control"] == members["held_out_by_generator"].astype(bool)).all()
    treated = ~sent["is_control"].astype(bool)
    # The simulated lift on this very list: P(purchase in the window) with minus without the lift, per
    # treated customer (0 for customers the generator did not treat: non-members, late registrations).
    lift = (sent["p_purchase_with_lift"] - sent["p_purchase_without_lift"]).fillna(0.0)
    expected = float(lift[treated].mean())
    effect = _effect(spark, sample_lake, CAMPAIGN["campaign_id"])
    assert (effect["treated_customers"], effect["control_customers"]) == (
        int(treated.sum()),
        int((~treated).sum()),
    )
    assert expected > 0.02, "the sample's simulated lift is too small to test"
    assert effect["purchase_rate_ci_low"] <= expected <= effect["purchase_rate_ci_high"], (effect, expected)
    assert effect["purchase_rate_ci_low"] > 0, "a doubled purchase rate for 14 days went undetected"


def test_placebo_campaign_interval_holds_zero(spark, sample_lake):
    effect = _effect(spark, sample_lake, PLACEBO_CAMPAIGN)
    assert effect["window_complete"]
    assert effect["purchase_rate_ci_low"] <= 0.0 <= effect["purchase_rate_ci_high"], effect
    assert effect["revenue_ci_low"] <= 0.0 <= effect["revenue_ci_high"], effect


@pytest.mark.parametrize("campaign_id", [CAMPAIGN["campaign_id"], PLACEBO_CAMPAIGN])
def test_campaign_list_is_the_one_sent_the_day_before(spark, sample_lake, campaign_id):
    effect = _effect(spark, sample_lake, campaign_id)
    assert effect["list_as_of"] == sample_lake.list_as_of
    assert effect["days_observed"] == CAMPAIGN["window_days"]


# ---------------------------------------------------------------- PII and reruns

# Raw PII as people type it (the generator's phone styles: plain, dashed, spaced, with +86 / 0086 / 86 in
# front) and any email address; Java regexes, so Spark scans every value. A salted hash (64 hex) cannot
# match: its digit runs are bordered by letters or are shorter.
RAW_PHONE = r"(?<![0-9A-Za-z])(\+86 ?|0086|86)?1[3-9][0-9][ -]?[0-9]{4}[ -]?[0-9]{4}(?![0-9A-Za-z])"
RAW_EMAIL = r"[^@\s\"]+@[^@\s\"]+\.[A-Za-z]{2,}"
RAW_PII_COLUMNS = {"phone", "email", "bound_phone", "phone_e164"}


def _raw_pii_values(df) -> dict[str, int]:
    """column -> values holding a raw phone or email, over every text column (nested ones as JSON); one row."""
    texts = {
        field.name: F.col(field.name) if isinstance(field.dataType, T.StringType) else F.to_json(field.name)
        for field in df.schema.fields
        if isinstance(field.dataType, T.StringType | T.ArrayType | T.StructType | T.MapType)
    }
    if not texts:
        return {}
    counts = df.agg(
        *[
            F.count(F.when(text.rlike(RAW_PHONE) | text.rlike(RAW_EMAIL), 1)).alias(name)
            for name, text in texts.items()
        ]
    ).head()
    return {name: count for name, count in counts.asDict().items() if count}


def test_the_scan_finds_every_raw_phone_and_email_in_bronze(spark, sample_lake):
    # The scan below must be able to fail: in bronze, which keeps the exports as they came, it recognises
    # every phone and email the generator wrote, in every style.
    members = lake.read(spark, sample_lake.cfg, "bronze.crm_members")
    pos = lake.read(spark, sample_lake.cfg, "bronze.pos_sales")
    online = lake.read(spark, sample_lake.cfg, "bronze.online_orders")  # all seven phone styles
    for df, column, pattern in (
        (members, "phone", RAW_PHONE),
        (members, "email", RAW_EMAIL),
        (pos, "phone", RAW_PHONE),
        (online, "phone", RAW_PHONE),
        (online, "email", RAW_EMAIL),
    ):
        # Malformed lines excluded: their fields are shifted ("!!corrupt!!,M8312117,x#,...").
        given = df.where(F.col(column).isNotNull() & F.col("_corrupt_record").isNull())
        assert given.count() > 100
        assert given.where(~F.col(column).rlike(pattern)).count() == 0, column
    assert set(_raw_pii_values(members)) >= {"phone", "email"}


def test_no_silver_gold_or_ops_table_holds_a_raw_phone_or_email(spark, trained_sample_lake):
    cfg = trained_sample_lake.cfg
    scanned = []
    for name in contracts.all_tables():
        if name.startswith("bronze.") or not lake.exists(spark, cfg, name):
            continue
        df = lake.read(spark, cfg, name)
        assert not RAW_PII_COLUMNS & set(df.columns), f"{name} has a raw PII column"
        assert _raw_pii_values(df) == {}, f"raw phone or email in {name}"
        scanned.append(name)
    # The whole lake past bronze: silver, gold (recommendations and model metrics included) and ops.
    assert {"silver.customers", "silver.quarantine", "gold.segment_targets", "gold.recommendations"} <= set(
        scanned
    )
    assert len(scanned) >= 20, scanned


def test_silver_rerun_with_nothing_new_changes_no_table(spark, sample_lake):
    cfg = sample_lake.cfg
    before = {name: lake.version(spark, cfg, name) for name in contracts.all_tables()}
    result = silver_stage.run(spark, cfg, sample_lake.as_of, "rerun-nothing-new")
    assert result.details == {"nothing_new": True}
    assert {name: lake.version(spark, cfg, name) for name in contracts.all_tables()} == before
