"""Demo history: weeks of simulated runs of the example workflows, bulk-loaded so that a
first start of the app has something on every page.

May import: core.analytics, core.engine, core.providers, core.telemetry, core.workflow,
core.catalog and the base modules. Never the app or the CLI.
"""
