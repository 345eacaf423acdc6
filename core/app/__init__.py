"""What the Streamlit pages use to draw: page setup, charts (pure Altair, no widgets),
widgets, forms, background runs and exports. Pages stay thin: every figure comes from
core.analytics or core.engine, and these helpers only shape and draw it.

May import everything below it (analytics, demo, engine, workflow, ...); never the CLI.
"""
