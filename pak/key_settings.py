"""Key settings of every service that sends or receives control messages, mixed into its
settings dataclass beside :class:`~pak.settings.BrokerSettings`:

- :class:`SigningSettings` (``--signing-key FILE``: tracker, API, watchlist CLI) gives a
  :class:`~pak.keys.Signer`;
- :class:`CentreKeySettings` (``--centre-key FILE``, twice or comma-separated during a
  rotation: the gateway) gives a :class:`~pak.keys.Verifier`.

Invariant: a service without keys runs unsigned only with every broker on loopback (a trial
on one box), and says so in the log at start; otherwise :func:`require_keys` refuses with a
ConfigError naming the setting. ``pak.keys`` (and so ``cryptography``) is imported only
when a key is actually configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pak.checks import is_loopback
from pak.errors import ConfigError
from pak.logs import event
from pak.mqtt import Brokers
from pak.settings import setting

if TYPE_CHECKING:
    from pak.keys import Signer, Verifier

__all__ = ["CentreKeySettings", "SigningSettings", "require_keys"]

log = logging.getLogger("pak.keys")


def _check_file(v: Path) -> str | None:
    return None if v.is_file() else f"no such file: {v}"


def _paths(v: tuple[Path, ...]) -> list[Path]:
    # Each flag may itself be a comma list (``--centre-key new.pub,old.pub``).
    return [Path(x.strip()) for p in v for x in str(p).split(",") if x.strip()]


def _check_files(v: tuple[Path, ...]) -> str | None:
    paths = _paths(v)
    if len(paths) > 2:
        return "at most two keys (the current one and the one being rotated)"
    for p in paths:
        if not p.is_file():
            return f"no such file: {p}"
    return None


def _loopback_only(brokers: Brokers | None) -> bool:
    return brokers is None or all(is_loopback(b.host) for b in brokers.urls)


def require_keys(service: str, setting_name: str, brokers: Brokers | None,
                 have_key: bool) -> None:
    """Refuse an unsigned service on a broker off this machine; log the unsigned trial."""
    if have_key:
        return
    if not _loopback_only(brokers):
        raise ConfigError(
            f"setting {setting_name}: required when the broker is not on loopback (without "
            f"keys control messages can be forged by anyone who can publish); make keys with "
            f"`pak keys init --dir DIR`")
    event(log, logging.WARNING, "unsigned_trial", service=service, setting=setting_name,
          note="no key: control messages unsigned and unchecked; allowed on loopback only")


@dataclass(frozen=True)
class SigningSettings:
    """``--signing-key FILE``: the centre's private key (``centre.key``); what the service
    publishes on control topics is signed with it."""

    signing_key: Path | None = setting(
        None, metavar="FILE", check=_check_file,
        help="the centre's private key (centre.key from `pak keys init`): control messages "
             "this service publishes are signed; without it, unsigned and allowed only with a "
             "broker on loopback")

    def signer(self, issuer: str) -> Signer | None:
        """The signer of ``signing_key`` (None without one); ConfigError naming it."""
        if self.signing_key is None:
            return None
        from pak.keys import load_signer

        return load_signer(self.signing_key, issuer, "signing_key")


@dataclass(frozen=True)
class CentreKeySettings:
    """``--centre-key FILE``: the centre's public key(s); control messages are accepted only
    when one of them signed them (two during a rotation)."""

    centre_key: tuple[Path, ...] = setting(
        (), metavar="FILE", check=_check_files, repeat=True,
        help="the centre's public key (centre.pub): only control messages it signed are "
             "accepted; give two (repeat the flag, or comma-separated) during a key rotation; "
             "without it, unchecked and allowed only with a broker on loopback")

    def verifier(self) -> Verifier | None:
        """The verifier of ``centre_key`` (None without one); ConfigError naming it."""
        if not self.centre_key:
            return None
        from pak.keys import load_verifier

        return load_verifier(_paths(self.centre_key), "centre_key")
