"""Sandboxes for code nodes: a separate OS process with hard limits, or a Docker container."""
