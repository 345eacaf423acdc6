"""Sandboxes for code nodes: a separate OS process with hard limits, or a Docker container.

May import: core.workflow (resource presets and sandbox settings) and the base modules.
"""
