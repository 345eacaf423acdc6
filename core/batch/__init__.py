"""Batch runs: a workflow run once per dataset row, on the local or the Ray executor, each
row's outcome recorded so that `--resume` runs exactly the rows that have none, and written
to an output file in dataset order (docs/batch.md).

May import: the executors, the experiments' dataset reader, and what is below them.
"""
