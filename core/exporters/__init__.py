"""Exporters: turning recorded telemetry into other tools' formats.

This package owns the translation of what the telemetry tables hold (finished runs and their
node rows) into OpenTelemetry traces sent over OTLP (`otlp`, `live`), MLflow runs and traces
(`mlflow_runs`, `mlflow_live`), and Slack-compatible alert messages (`webhook`). It reads
the tables and never writes them. It may import `core.telemetry`, `core.workflow` and
`core.settings` only: it sits below the engine, whose end-of-run hook hands it finished
runs (`sinks.live_exporters`), and the engine and the reports stay free to change around
it. The third-party SDKs are the optional extras `otel` and `mlflow`: they are imported
inside functions, so the core works without them, and using an exporter without its extra
raises `MissingExtra` naming the `pip install` command.
"""
