"""Use cases of the hub (ingest, ...), written against the store and broker Protocols."""
