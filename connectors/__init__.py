"""Connectors: one module per API (auth, requests, pagination, parsing of pages into Arrow batches).

A connector knows nothing of Dagster, dbt or DuckDB. `connectors.sandbox` imitates every API
offline.
"""
