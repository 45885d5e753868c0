"""deploy/mosquitto/ on a real Mosquitto: the shipped listeners.conf and pak.conf (only ports and
paths rewritten), centre.acl, a password file made by mosquitto_passwd, and gateway accounts made
by the shipped gateway-accounts script.

Invariants checked: a gateway may publish only under its own gw/{id}/ and subscribe only to its
own receipts, the centre's presence and the edge watchlist (anything else is refused in the
SUBACK; a forbidden publish never reaches anyone, shown by a positive control sent after it); a
gateway cannot knock another off by claiming its client id; each listener takes only its own
users; and the rights are enough for the pipeline (a gateway's sighting reaches the trackers'
shared subscription, receipts, presence and the edge watchlist reach the gateway, alerts reach
the API, watchlist changes reach the trackers)."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests import services

pytestmark = pytest.mark.mosquitto

DEPLOY = services.REPO / "deploy" / "mosquitto"
ROOT = "pak/v1"  # the topic root the shipped files name
CENTRE_USERS = {"pak-tracker-a": "ta-secret", "pak-tracker-b": "tb-secret",
                "pak-api": "api-secret", "pak-cli": "cli-secret"}
GATEWAYS = {"gw-1": "g1-secret", "gw-2": "g2-secret"}
ADMIN = ("pak-admin", "admin-secret")
PASSWORDS = {**CENTRE_USERS, **GATEWAYS, ADMIN[0]: ADMIN[1]}
V5, V311 = mqtt.MQTTv5, mqtt.MQTTv311
WAIT_S = 5.0


@dataclass(frozen=True)
class Deployed:
    gateways: int  # the gateway listener's port
    centre: int  # the centre listener's port
    admin: list[str]  # mosquitto_ctrl options for gateway-accounts


def deploy_config(m: services.PrivateMosquitto, centre_port: int, passwd: Path,
                  dynsec_file: Path) -> str:
    """listeners.conf then pak.conf (their order in /etc/mosquitto/conf.d), with the listeners
    moved to free ports on loopback and the files moved into the broker's work folder."""
    ports = {"1883": m.port, "1884": centre_port}
    paths = {"password_file": str(passwd), "acl_file": str(DEPLOY / "centre.acl"),
             "plugin_opt_config_file": str(dynsec_file),
             "persistence_location": f"{m.workdir}/",
             "log_dest": f"file {m.workdir}/mosquitto.log"}
    out = []
    for ln in [*(DEPLOY / "listeners.conf").read_text().splitlines(),
               *(DEPLOY / "pak.conf").read_text().splitlines()]:
        key, _, value = ln.partition(" ")
        if key == "listener":
            ln = f"listener {ports.pop(value)} 127.0.0.1"
        elif key in paths:
            ln = f"{key} {paths[key]}"
        elif key == "plugin":
            services.require(Path(value).exists(), f"no Mosquitto plugin {value}")
        out.append(ln)
    assert not ports, f"listeners.conf no longer has listeners {sorted(ports)}"
    return "\n".join(out) + "\n"


def accounts(*args: str, stdin: str) -> None:
    subprocess.run([str(DEPLOY / "gateway-accounts"), *args], input=stdin, text=True,
                   check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    with services.private_mosquitto(start=False) as m:
        services.require((DEPLOY / "gateway-accounts").exists(), "no gateway-accounts")
        passwd = m.password_file(CENTRE_USERS, "pak-centre.passwd")
        dynsec_file = m.workdir / "pak-gateways.json"
        accounts("init", str(dynsec_file), ADMIN[0], stdin=ADMIN[1] + "\n")
        os.chmod(dynsec_file, 0o666)  # the plugin rewrites it as the broker's own user
        centre_port = services.free_port()
        m.start(deploy_config(m, centre_port, passwd, dynsec_file))
        services.wait_port("127.0.0.1", centre_port)
        admin = ["-h", "127.0.0.1", "-p", str(m.port), "-u", ADMIN[0], "-P", ADMIN[1]]
        for gw, secret in GATEWAYS.items():
            accounts(*admin, "add", gw, stdin=secret + "\n")
        yield Deployed(m.port, centre_port, admin)


class Client:
    """One MQTT connection that records what the broker answers; waits are on those answers."""

    # One condition for every connection: a wait may look at several (a shared subscription).
    _cond = threading.Condition()

    def __init__(self, port: int, user: str | None, *, password: str | None = None,
                 client_id: str = "", protocol: MQTTProtocolVersion = V5,
                 will: tuple[str, bytes] | None = None) -> None:
        self.connack: ReasonCode | None = None
        self.got: list[tuple[str, bytes]] = []
        self.disconnects: list[ReasonCode] = []
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._pubacks: dict[int, ReasonCode] = {}
        # A refused or dropped connection stays down while the test looks at it.
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                        reconnect_on_failure=False)
        if user:
            c.username_pw_set(user, password if password is not None else PASSWORDS[user])
        if will:
            c.will_set(*will, qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_publish = self._on_publish
        self.c = c
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.wait(lambda: self.connack is not None, f"a CONNACK for {user}")

    def _note(self, f: Callable[[], None]) -> None:
        with self._cond:
            f()
            self._cond.notify_all()

    def _on_connect(self, cl: object, u: object, f: object, rc: ReasonCode, p: object) -> None:
        self._note(lambda: setattr(self, "connack", rc))

    def _on_disconnect(self, cl: object, u: object, f: object, rc: ReasonCode,
                       p: object) -> None:
        self._note(lambda: self.disconnects.append(rc))

    def _on_message(self, cl: object, u: object, m: mqtt.MQTTMessage) -> None:
        self._note(lambda: self.got.append((m.topic, bytes(m.payload))))

    def _on_subscribe(self, cl: object, u: object, mid: int, rcs: list[ReasonCode],
                      p: object) -> None:
        self._note(lambda: self._subacks.__setitem__(mid, rcs))

    def _on_publish(self, cl: object, u: object, mid: int, rc: ReasonCode, p: object) -> None:
        self._note(lambda: self._pubacks.__setitem__(mid, rc))

    def wait(self, done: Callable[[], bool], what: str) -> None:
        with self._cond:
            assert self._cond.wait_for(done, WAIT_S), f"no {what} within {WAIT_S}s"

    def wait_message(self, topic: str, payload: bytes) -> None:
        self.wait(lambda: (topic, payload) in self.got, f"{payload!r} on {topic}")

    @property
    def refused(self) -> bool:
        return self.connack is not None and self.connack.is_failure

    def subscribe(self, *filters: str) -> dict[str, ReasonCode]:
        """SUBSCRIBE to ``filters`` at QoS 1; the SUBACK's reason code for each."""
        _, sub_mid = self.c.subscribe([(f, 1) for f in filters])
        assert sub_mid is not None
        mid = sub_mid
        self.wait(lambda: mid in self._subacks, f"SUBACK for {filters}")
        return dict(zip(filters, self._subacks[mid], strict=True))

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> ReasonCode:
        """Publish at QoS 1 and wait for the PUBACK; its reason code (MQTT 5 only says no)."""
        mid = self.c.publish(topic, payload, qos=1, retain=retain).mid
        self.wait(lambda: mid in self._pubacks, f"PUBACK for {topic}")
        return self._pubacks[mid]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def clients() -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(*args: object, **kw: object) -> Client:
        made.append(Client(*args, **kw))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for c in made:
        c.close()


def gw(leaf: str, gateway: str = "gw-1") -> str:
    return f"{ROOT}/gw/{gateway}/{leaf}"


# A gateway may subscribe to these, literally, and to nothing else.
ALLOWED_FILTERS = [gw("receipts"), f"{ROOT}/centre", f"{ROOT}/edge/watchlist"]
FORBIDDEN_FILTERS = [
    f"$share/pak-tracker/{ROOT}/gw/+/sightings",  # the trackers' group: issue 9's hole
    f"$share/pak-tracker/{ROOT}/gw/gw-1/sightings",
    f"$share/mine/{ROOT}/gw/gw-1/receipts",  # its own receipts, but shared
    f"$share/mine/{ROOT}/centre",
    *(f"{ROOT}/gw/+/{leaf}" for leaf in ("sightings", "state", "health", "hits", "receipts")),
    gw("receipts", "gw-2"), gw("sightings", "gw-2"), gw("#", "gw-2"),
    gw("sightings"), gw("state"), gw("#"), f"{ROOT}/gw/#",
    f"{ROOT}/watchlist",  # the watchlist in clear: centre services only
    f"{ROOT}/alerts/#", f"{ROOT}/alerts/stolen_hit",
    f"{ROOT}/+", f"{ROOT}/edge/#", f"{ROOT}/#", "#", "+/+/centre",
    "$SYS/#", "$CONTROL/dynamic-security/#",
]


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_a_gateway_may_subscribe_only_to_its_own_receipts_presence_and_edge_list(
        deployed: Deployed, clients: Callable[..., Client], protocol: MQTTProtocolVersion) -> None:
    g = clients(deployed.gateways, "gw-1", protocol=protocol)
    granted = g.subscribe(*ALLOWED_FILTERS, *FORBIDDEN_FILTERS)
    assert {f: granted[f].is_failure for f in ALLOWED_FILTERS} == dict.fromkeys(
        ALLOWED_FILTERS, False)
    refused = {f: granted[f].is_failure for f in FORBIDDEN_FILTERS}
    assert refused == dict.fromkeys(FORBIDDEN_FILTERS, True)


# What a gateway (gw-1) must not publish, each where a privileged subscriber would see it.
FORBIDDEN_PUBLISHES = [
    *(gw(leaf, "gw-2") for leaf in ("sightings", "state", "health", "hits")),  # speak for gw-2
    gw("receipts", "gw-2"), gw("receipts"),  # forge receipts (its own: drop its spool)
    f"{ROOT}/watchlist", f"{ROOT}/centre", f"{ROOT}/edge/watchlist",
    f"{ROOT}/alerts/stolen_hit",
]


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_a_gateways_forbidden_publishes_reach_nobody(
        deployed: Deployed, clients: Callable[..., Client], protocol: MQTTProtocolVersion) -> None:
    # Observers that may read every topic above: a tracker (gateways' traffic, watchlist,
    # centre), the API (alerts), gw-2 (its receipts, centre, edge list), gw-1 (its receipts).
    tracker = clients(deployed.centre, "pak-tracker-a", client_id="acl-tracker-a")
    api = clients(deployed.centre, "pak-api", client_id="acl-api")
    gw2 = clients(deployed.gateways, "gw-2")
    gw1 = clients(deployed.gateways, "gw-1", protocol=protocol)
    for c, filters in [(tracker, [f"{ROOT}/#"]), (api, [f"{ROOT}/alerts/#"]),
                       (gw2, [gw("receipts", "gw-2"), f"{ROOT}/centre", f"{ROOT}/edge/watchlist"]),
                       (gw1, [gw("receipts")])]:
        assert not any(rc.is_failure for rc in c.subscribe(*filters).values())

    pubacks = {t: gw1.publish(t, b"forged " + t.encode(), retain=True)
               for t in FORBIDDEN_PUBLISHES}
    # A gateway asking the accounts plugin for a user of its own.
    gw1.publish("$CONTROL/dynamic-security/v1",
                b'{"commands":[{"command":"createClient","username":"intruder",'
                b'"password":"intruder"}]}')

    # Positive controls, sent after the forgeries through the same broker: gw-1's own sighting
    # reaches the tracker once the broker has handled (and queued for every subscriber)
    # everything gw-1 sent before it; then a message to each other observer queues behind
    # whatever forgery would have been queued for it.
    gw1.publish(gw("sightings"), b"control")
    tracker.wait_message(gw("sightings"), b"control")
    for topic, observer in [(gw("receipts", "gw-2"), gw2), (gw("receipts"), gw1),
                            (f"{ROOT}/alerts/control", api)]:
        tracker.publish(topic, b"control")
        observer.wait_message(topic, b"control")

    for observer in (tracker, api, gw2, gw1):
        assert [m for m in observer.got if m[1].startswith(b"forged")] == []
    if protocol == V5:  # MQTT 5 also says so in the PUBACK
        assert {t: rc.is_failure for t, rc in pubacks.items()} == dict.fromkeys(
            FORBIDDEN_PUBLISHES, True)

    # A will on another gateway's topic. Mosquitto sends the will of a connection taken over
    # before it answers the newcomer's CONNACK, so the newcomer's sighting comes after it.
    clients(deployed.gateways, "gw-1", protocol=protocol,
            will=(gw("state", "gw-2"), b"forged will"))
    successor = clients(deployed.gateways, "gw-1")
    successor.publish(gw("sightings"), b"control after the will")
    tracker.wait_message(gw("sightings"), b"control after the will")
    assert [m for m in tracker.got if m[1] == b"forged will"] == []
    assert clients(deployed.gateways, "intruder", password="intruder").refused


def test_a_gateway_cannot_knock_another_off(deployed: Deployed,
                                            clients: Callable[..., Client]) -> None:
    tracker = clients(deployed.centre, "pak-tracker-a", client_id="acl-tracker-a")
    assert not tracker.subscribe(f"{ROOT}/gw/+/sightings")[f"{ROOT}/gw/+/sightings"].is_failure
    first = clients(deployed.gateways, "gw-1", client_id="gw-1")
    assert not first.refused
    # gw-2's credentials, gw-1's client id: admitted, but as client "gw-2".
    impostor = clients(deployed.gateways, "gw-2", client_id="gw-1")
    assert not impostor.refused
    # gw-1 is still connected: a round trip through the broker after the impostor's CONNACK
    # (Mosquitto drops a taken-over client before it answers the newcomer).
    assert not first.publish(gw("sightings"), b"still here").is_failure
    tracker.wait_message(gw("sightings"), b"still here")
    assert first.disconnects == []
    # The same check does see a takeover: gw-1's own credentials replace its old connection.
    clients(deployed.gateways, "gw-1", client_id="elsewhere")
    first.wait(lambda: bool(first.disconnects), "takeover of gw-1 by its own user")


def test_each_listener_takes_only_its_own_users(deployed: Deployed,
                                                clients: Callable[..., Client]) -> None:
    assert clients(deployed.gateways, None).refused  # no anonymous clients
    assert clients(deployed.centre, None).refused
    assert clients(deployed.centre, "gw-1").refused  # gateway credentials: gateways only
    assert clients(deployed.gateways, "pak-tracker-a").refused  # and the centre's, centre only
    assert clients(deployed.gateways, "gw-1", password="wrong").refused
    assert clients(deployed.centre, "pak-tracker-a", password="wrong").refused
    assert not clients(deployed.centre, "pak-tracker-a", client_id="acl-a").refused
    assert not clients(deployed.gateways, "gw-2").refused


def test_the_pipeline_has_the_rights_it_needs(deployed: Deployed,
                                              clients: Callable[..., Client]) -> None:
    shared = f"$share/pak-tracker/{ROOT}/gw/+/sightings"
    plain = [f"{ROOT}/gw/+/{leaf}" for leaf in ("state", "health", "hits")]
    trackers = [clients(deployed.centre, u, client_id=f"acl-{u}")
                for u in ("pak-tracker-a", "pak-tracker-b")]
    for t in trackers:
        granted = t.subscribe(shared, *plain, f"{ROOT}/watchlist", f"{ROOT}/centre")
        assert not any(rc.is_failure for rc in granted.values())
    api = clients(deployed.centre, "pak-api", client_id="acl-api")
    assert not api.subscribe(f"{ROOT}/alerts/#")[f"{ROOT}/alerts/#"].is_failure
    cli = clients(deployed.centre, "pak-cli", client_id="acl-cli")
    gw1 = clients(deployed.gateways, "gw-1")
    assert not any(rc.is_failure for rc in gw1.subscribe(*ALLOWED_FILTERS).values())

    # Sightings reach the trackers' shared subscription, each message one tracker, none lost.
    sent = [f"sighting {i}".encode() for i in range(6)]
    for p in sent:
        assert not gw1.publish(gw("sightings"), p).is_failure

    def shared_got() -> list[bytes]:
        return sorted(p for t in trackers for (topic, p) in t.got
                      if topic == gw("sightings") and p.startswith(b"sighting"))

    trackers[0].wait(lambda: len(shared_got()) >= len(sent), "every sighting")
    assert shared_got() == sorted(sent)
    # State (retained; the offline one is the will), health and hits reach every tracker.
    for leaf in ("state", "health", "hits"):
        assert not gw1.publish(gw(leaf), leaf.encode(), retain=leaf == "state").is_failure
        for t in trackers:
            t.wait_message(gw(leaf), leaf.encode())
    # The centre answers: receipts, presence and the edge list reach the gateway, alerts the API.
    for topic, retain in [(gw("receipts"), False), (f"{ROOT}/centre", True),
                          (f"{ROOT}/edge/watchlist", True)]:
        assert not trackers[0].publish(topic, b"from the centre", retain=retain).is_failure
        gw1.wait_message(topic, b"from the centre")
    assert not trackers[1].publish(f"{ROOT}/alerts/stolen_hit", b"alert").is_failure
    api.wait_message(f"{ROOT}/alerts/stolen_hit", b"alert")
    # Watchlist changes from the API and from `pak watchlist` reach every tracker.
    for who, c in [(b"api", api), (b"cli", cli)]:
        assert not c.publish(f"{ROOT}/watchlist", who).is_failure
        for t in trackers:
            t.wait_message(f"{ROOT}/watchlist", who)
    # The offline state is a gateway's will, sent when its connection is lost or taken over.
    clients(deployed.gateways, "gw-1", will=(gw("state"), b"offline"))
    clients(deployed.gateways, "gw-1")
    for t in trackers:
        t.wait_message(gw("state"), b"offline")
    # A tracker sees the retained presence it and the others published (epochs only grow).
    later = clients(deployed.centre, "pak-tracker-b", client_id="acl-later")
    later.subscribe(f"{ROOT}/centre")
    later.wait_message(f"{ROOT}/centre", b"from the centre")


def test_a_removed_gateway_is_cut_off_and_an_added_one_gets_in(
        deployed: Deployed, clients: Callable[..., Client]) -> None:
    accounts(*deployed.admin, "add", "gw-3", stdin="g3-secret\n")
    g3 = clients(deployed.gateways, "gw-3", password="g3-secret")
    assert not g3.subscribe(gw("receipts", "gw-3"))[gw("receipts", "gw-3")].is_failure
    accounts(*deployed.admin, "remove", "gw-3", stdin="")
    g3.wait(lambda: bool(g3.disconnects), "gw-3 disconnected on removal")
    assert clients(deployed.gateways, "gw-3", password="g3-secret").refused
