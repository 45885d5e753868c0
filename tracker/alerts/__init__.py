"""Alerts: an engine that routes sightings and timer ticks to one handler per alert kind.

Layout (each module's docstring states its invariants):

* engine.py: :class:`AlertEngine`, the ingest hook and the timer; routes only;
* handler.py: the :class:`AlertHandler` interface and :class:`Job`;
* stolen.py, flags.py, pairing.py, clones.py, monitors.py: the handlers;
* outbox.py: which alert a cause belongs to, publishing, storing with retries;
* context.py: the registry cache and what an alert tells besides the tag;
* rules.py (pure rules, injected times), episodes.py (monitors' debounced episodes),
  ids.py (alert ids from causes), lifecycle.py (new -> ... -> closed), settings.py.

Importing the package loads only this docstring: take what you need from its modules.
"""
