"""o2o-lakehouse: omnichannel retail lakehouse jobs (bronze/silver/gold Delta, RFM, KPIs, ALS, quality gates)."""

__version__ = "0.1.0"
