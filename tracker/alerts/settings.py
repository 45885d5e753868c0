"""Settings of the alert engine: every threshold of every alert kind, with its debounce.

:class:`AlertSettings` is a settings dataclass in the style of :mod:`pak.settings`: the
tracker's settings class derives from it, so each field is also a ``pak tracker`` flag
(``--alert-max-speed-kmh 150``), a TOML key and an environment variable
(``PAK_TRACKER_ALERT_MAX_SPEED_KMH``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pak.checks import at_least as _at_least
from pak.settings import setting

__all__ = ["AlertSettings"]


def _ratio(v: float) -> str | None:
    return None if 0 < v < 1 else "must be between 0 and 1 (exclusive)"


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """What the alert engine can be told (defaults suit a city of e-bikes)."""

    alerts: bool = setting(True, help="run the alert engine (watchlist hits and the other "
                                      "alert kinds) inside the tracker")
    alert_tick_s: float = setting(1.0, metavar="SECONDS", check=_at_least(0.05),
                                  help="how often the engine's timer runs its due checks")
    # --- stolen_hit
    watchlist_reload_s: float = setting(60.0, metavar="SECONDS", check=_at_least(1),
                                        help="reload the watchlist from storage this often "
                                             "(heals a missed announcement)")
    alert_recent_passes: int = setting(5, metavar="N", check=_at_least(0),
                                       help="earlier passes of the tag a stolen_hit carries")
    alert_predictions: int = setting(3, metavar="N", check=_at_least(0),
                                     help="predicted next readers a stolen_hit carries")
    alert_enrich_queue: int = setting(1000, metavar="N", check=_at_least(1),
                                      help="published stolen hits waiting for their enrichment "
                                           "(vehicle, passes, predictions); beyond it the "
                                           "enrichment is skipped, never the alert")
    model_days: float = setting(7.0, metavar="DAYS", check=_at_least(0.01),
                                help="learn where vehicles go next from this many days of "
                                     "sightings")
    model_refresh_s: float = setting(6 * 3600.0, metavar="SECONDS", check=_at_least(10),
                                     help="relearn the movement model this often")
    model_max_sightings: int = setting(5_000_000, metavar="N", check=_at_least(1),
                                       help="most sightings one learning run reads")
    trip_gap_s: float = setting(1200.0, metavar="SECONDS", check=_at_least(1),
                                help="a longer pause between passes ends a trip")
    # --- clone_suspect
    alert_max_speed_kmh: float = setting(120.0, metavar="KMH", check=_at_least(1),
                                         help="faster than this between two readers: a "
                                              "cloned tag (clone_suspect)")
    clone_min_distance_m: float = setting(300.0, metavar="METRES", check=_at_least(0),
                                          help="readers closer than this never count as a "
                                               "clone (overlapping antennas)")
    clone_slack_s: float = setting(5.0, metavar="SECONDS", check=_at_least(0),
                                   help="clock disagreement between two gateways forgiven "
                                        "by the clone check")
    clone_window_s: float = setting(900.0, metavar="SECONDS", check=_at_least(1),
                                    help="how far back a tag's history is compared (at "
                                         "120 km/h, 15 minutes is 30 km: across a city, a "
                                         "longer gap is never too fast)")
    clone_check_s: float = setting(2.0, metavar="SECONDS", check=_at_least(0.1),
                                   help="how often received sightings are checked for clones "
                                        "(against storage, so every instance's share counts)")
    clone_lag_s: float = setting(1.0, metavar="SECONDS", check=_at_least(0),
                                 help="wait this long after receipt before the clone check, "
                                      "so other instances' batches are committed")
    # --- tamper, low_battery
    tamper_threshold: int = setting(1, metavar="N", check=_at_least(1),
                                    help="tamper-flagged sightings of one tag within "
                                         "--tamper-window-s that raise tamper")
    tamper_window_s: float = setting(600.0, metavar="SECONDS", check=_at_least(0),
                                     help="window of --tamper-threshold")
    tamper_cooldown_s: float = setting(3600.0, metavar="SECONDS", check=_at_least(0),
                                       help="after a tamper alert, that tag's flags are "
                                            "folded into it for this long")
    low_battery_threshold: int = setting(3, metavar="N", check=_at_least(1),
                                         help="low-battery sightings of one tag within the "
                                              "window that raise low_battery")
    low_battery_window_s: float = setting(86400.0, metavar="SECONDS", check=_at_least(0),
                                          help="window of --low-battery-threshold")
    low_battery_cooldown_s: float = setting(7 * 86400.0, metavar="SECONDS",
                                            check=_at_least(0),
                                            help="after a low_battery alert, that tag's "
                                                 "flags are folded into it for this long")
    # --- unaccompanied
    pairing_window_s: float = setting(60.0, metavar="SECONDS", check=_at_least(0),
                                      help="the owner's key tag must pass the same reader "
                                           "within this long of the vehicle (vehicles with "
                                           "the check switched on only)")
    pairing_lag_s: float = setting(2.0, metavar="SECONDS", check=_at_least(0),
                                   help="extra wait for a key sighting stored by another "
                                        "instance")
    # --- reader_silent
    silent_ratio: float = setting(0.1, metavar="RATIO", check=_ratio,
                                  help="a reader below this share of its usual count for the "
                                       "hour is silent")
    silent_window_s: float = setting(900.0, metavar="SECONDS", check=_at_least(60),
                                     help="window the reader's count is taken over")
    silent_min_usual: float = setting(20.0, metavar="N", check=_at_least(1),
                                      help="only readers that usually see this many sightings "
                                           "per window can be silent")
    silent_baseline_days: int = setting(7, metavar="DAYS", check=_at_least(1),
                                        help="usual rate: the mean of the same hour on this "
                                             "many previous days")
    silent_check_s: float = setting(60.0, metavar="SECONDS", check=_at_least(1),
                                    help="how often readers' counts are compared")
    silent_hold_s: float = setting(600.0, metavar="SECONDS", check=_at_least(0),
                                   help="silent this long before reader_silent is raised")
    silent_clear_s: float = setting(600.0, metavar="SECONDS", check=_at_least(0),
                                    help="back to normal this long before it clears")
    # --- gateway_offline
    gateway_check_s: float = setting(5.0, metavar="SECONDS", check=_at_least(0.1),
                                     help="how often gateways' state and health are checked")
    offline_grace_s: float = setting(60.0, metavar="SECONDS", check=_at_least(0),
                                     help="offline (its will) this long before "
                                          "gateway_offline (a reboot is not an alert)")
    health_timeout_s: float = setting(300.0, metavar="SECONDS", check=_at_least(1),
                                      help="no health for this long: gateway_offline")
    offline_clear_s: float = setting(30.0, metavar="SECONDS", check=_at_least(0),
                                     help="back online this long before it clears")
    # --- clock_skew
    skew_tolerance_s: float = setting(120.0, metavar="SECONDS", check=_at_least(0),
                                      help="gateway clock further off than this (beyond its "
                                           "backlog): clock_skew")
    skew_window_s: float = setting(600.0, metavar="SECONDS", check=_at_least(1),
                                   help="clock samples considered")
    skew_hold_s: float = setting(60.0, metavar="SECONDS", check=_at_least(0),
                                 help="skewed this long before clock_skew is raised")
    skew_clear_s: float = setting(600.0, metavar="SECONDS", check=_at_least(0),
                                  help="within tolerance this long before it clears")

    def alert_settings(self) -> AlertSettings:
        """Just these settings (from the tracker's, which derive from this class)."""
        import dataclasses

        names = [f.name for f in dataclasses.fields(AlertSettings)]
        return AlertSettings(**{n: getattr(self, n) for n in names})
