"""LLM providers: LiteLLM for real models, and the offline simulation (SPEC §3)."""
