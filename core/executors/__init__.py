"""Executors: how many runs of one workflow over many rows get done, in this process
(`local`: the engine's asyncio loop, N runs at once) or across cores and machines (`ray`:
actors, each running the same loop on a chunk of rows).

Both return one `RowResult` per row; the caller records them. The Ray executor also returns
each chunk's telemetry, captured in the worker, so that the driver records it where the
telemetry lives (docs/batch.md).

May import: the engine and what is below it.
"""
