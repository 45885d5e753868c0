"""Reading Prometheus metrics in tests through prometheus_client's public API.

`sample(registry, name, **labels)` is the value the registry would export for that sample
(a counter's ``_total``, a histogram's ``_sum`` or ``_count``), as a scrape would see it. A
labelled child never touched exports nothing and reads as 0; a name the registry does not
know at all fails, so a misspelt metric cannot make ``== 0`` pass.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

_SUFFIXES = ("", "_total", "_sum", "_count", "_bucket", "_created")


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    if value is not None:
        return value
    families = {m.name for m in registry.collect()}
    if not any(name == f + s for f in families for s in _SUFFIXES):
        raise AssertionError(f"no metric {name!r} in the registry (it has {sorted(families)})")
    return 0.0
