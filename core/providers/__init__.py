"""LLM providers: LiteLLM for real models, and the offline simulated provider.

May import: core.workflow (its settings models), core.catalog and the base modules.
"""
