"""The report's reads of the lake: each runs once per page, and the sections and headline tiles share it."""

from __future__ import annotations

from datetime import date

import pytest

from o2o.report import LakeReads, NotComputed

AS_OF = date(2026, 8, 29)


def test_a_read_runs_once_and_every_caller_gets_its_result():
    calls = []

    def segment_sizes(spark, cfg, as_of):
        calls.append(as_of)
        return AS_OF, [{"segment": "champions", "customers": 3}]

    reads = LakeReads(spark=None, cfg=None, as_of=AS_OF)

    assert reads(segment_sizes) == (AS_OF, [{"segment": "champions", "customers": 3}])
    assert reads(segment_sizes) == (AS_OF, [{"segment": "champions", "customers": 3}])
    assert calls == [AS_OF]


def test_a_table_not_computed_is_looked_up_once_and_reported_to_every_caller():
    calls = []

    def channel_days(spark, cfg, as_of):
        calls.append(as_of)
        raise NotComputed("gold.channel_kpis not computed yet")

    reads = LakeReads(spark=None, cfg=None, as_of=AS_OF)

    for _ in range(2):
        with pytest.raises(NotComputed, match="gold.channel_kpis"):
            reads(channel_days)
    assert calls == [AS_OF]


def test_other_failures_are_not_kept_so_the_next_caller_tries_again():
    calls = []

    def quality_summary(spark, cfg, as_of):
        calls.append(as_of)
        raise RuntimeError("the lake could not be read")

    reads = LakeReads(spark=None, cfg=None, as_of=AS_OF)

    for _ in range(2):
        with pytest.raises(RuntimeError):
            reads(quality_summary)
    assert calls == [AS_OF, AS_OF]


def test_table_versions_given_by_the_caller_are_not_looked_up_again():
    rows = [{"table": "silver.orders", "version": 3, "rows": 10}]

    # No session: looking the versions up would fail.
    assert LakeReads(spark=None, cfg=None, as_of=AS_OF, tables=rows).tables() == rows
