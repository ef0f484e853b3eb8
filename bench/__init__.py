"""nanoagent's benchmarks (issue 5): ``uv run python -m bench`` prints every section's table
and writes it, with the machine's description, to bench/RESULTS.md; ``--quick`` is a smoke
check at small sizes. One module per section: step_cost (1), concurrency (2), live (3),
scale (4), crash (5); dashboard drives the Textual dashboard headlessly, bigdb builds the big
databases, agent is the no-op agent, worker_proc a worker process."""
