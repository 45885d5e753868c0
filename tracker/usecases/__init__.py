"""Use cases: each business action written once, called by the API, the CLIs and the console.

* audit.py: record an audit entry (:func:`record_audit`);
* watchlist.py: report a stolen vehicle, withdraw (or recover) one: store, audit, announce;
* alerts.py: move an alert through its lifecycle (new -> acknowledged -> dispatched -> closed).

Each takes the storage port it needs and, where it announces, an injected publish function:
no use case opens a connection of its own.
"""
