"""Topic names of wire contract v1 under a configurable root (default ``pak/v1``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_ROOT", "Topics"]

DEFAULT_ROOT: Final = "pak/v1"


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names of wire contract v1 under a configurable root (default ``pak/v1``)."""

    root: str = DEFAULT_ROOT

    def sightings(self, gateway_id: str) -> str:
        return f"{self.root}/gw/{gateway_id}/sightings"

    def state(self, gateway_id: str) -> str:
        return f"{self.root}/gw/{gateway_id}/state"

    def health(self, gateway_id: str) -> str:
        return f"{self.root}/gw/{gateway_id}/health"

    def receipts(self, gateway_id: str) -> str:
        return f"{self.root}/gw/{gateway_id}/receipts"

    def hits(self, gateway_id: str) -> str:
        """The priority lane (pak/wire/hits.py)."""
        return f"{self.root}/gw/{gateway_id}/hits"

    @property
    def edge_watchlist(self) -> str:
        """The edge list, retained (pak/wire/edge_watchlist.py)."""
        return f"{self.root}/edge/watchlist"

    def alerts(self, kind: str) -> str:
        return f"{self.root}/alerts/{kind}"

    @property
    def watchlist(self) -> str:
        return f"{self.root}/watchlist"

    @property
    def centre(self) -> str:
        """The centre's presence (retained; pak/wire/presence.py)."""
        return f"{self.root}/centre"

    def all_gateways(self, leaf: str) -> str:
        """Wildcard subscription for one leaf (``sightings``, ``state``, ``health``, ``hits``)."""
        return f"{self.root}/gw/+/{leaf}"

    def shared(self, group: str, topic: str) -> str:
        """An MQTT 5 shared subscription of ``topic`` for ``group``."""
        return f"$share/{group}/{topic}"

    def gateway_of(self, topic: str, leaf: str) -> str | None:
        """The gateway id in ``{root}/gw/{id}/{leaf}``, or None when the topic is not one."""
        prefix = f"{self.root}/gw/"
        suffix = f"/{leaf}"
        if not (topic.startswith(prefix) and topic.endswith(suffix)):
            return None
        gid = topic[len(prefix) : len(topic) - len(suffix)]
        return gid if "/" not in gid and gid else None
