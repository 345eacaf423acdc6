"""What models exist and what they cost: LiteLLM's bundled price map and model list (read
without importing LiteLLM), the workflow's price overrides, model names, tokenizers.

May import: core.errors, core.settings, core.formatting. Nothing here knows a workflow.
"""
