"""Dask pipelines that write the store: import, rebuild."""
