"""Streamlit glue shared by the pages: layout, the simulated-mode banner, cache keys, charts.

Pages stay thin: they call `core` for every figure and use these helpers only to draw.
"""
