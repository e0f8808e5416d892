"""Ways to run ``python -m search`` past one process: ``search.launchers.ray`` shards the
problems over a Ray cluster (``+launcher=ray``). Ray is an optional dependency, imported
only when a launcher runs."""
