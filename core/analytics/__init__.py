"""Everything read back from telemetry: cost estimates, profiles, cost reports, repricing,
checks, comparisons, and the critical path they share. Each report is a query module
(dataclasses, SQL, assembly) and a `*_render` module (text, JSON, CSV); none parses
arguments.

May import: core.engine (to plan an estimate as the engine would run it), core.telemetry,
core.workflow, core.catalog and the base modules. Never the app or the CLI.
"""
