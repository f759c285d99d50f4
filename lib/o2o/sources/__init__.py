"""Landing-data producers: the synthetic channel-feed generator and adapters for real public data sets."""
