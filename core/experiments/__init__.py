"""Experiments: run variants of a workflow over a dataset and prove which is as good,
with statistics (docs/experiments.md).

The file format (`model`), its validation (`validation`, `variants`, `dataset`, `loader`),
the scorers (`scorers`, `python_scorer`, `judge`, dispatched by `scoring`), the runner and
its records in telemetry (`runner`, `records`), the estimate, the report (`report`, on
`stats`) and its renderers.

May import: core.analytics, core.engine and everything below them. Never the demo, the app
or the CLI.
"""
