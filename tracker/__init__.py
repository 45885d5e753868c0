"""The central tracker: storage, ingest wiring, watchlist and alerts, trails and prediction.

Layering inside the centre: ``pak`` <- ``tracker.storage`` <- ``ingest`` <- ``tracker``
services; ``api`` reads through ``tracker.storage`` and the query functions. Nothing here
loads serial code."""
