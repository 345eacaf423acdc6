"""Experiments: run variants of a workflow over a dataset and prove which is as good,
with statistics."""
