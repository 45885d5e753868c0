#!/usr/bin/env bash
# Install and start the services the test suite needs: Mosquitto, PostgreSQL and the
# timescaledb extension. Idempotent: quick when everything is already in place.
#
# Debian 13 ships postgresql-17-timescaledb. Debian 12 (PostgreSQL 15) has no binary
# package, so we build the Apache-only edition from trixie's source package (~15 s).
set -euo pipefail

log() { printf '[setup-services] %s\n' "$*" >&2; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() {
  if ((apt_updated == 0)); then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- Mosquitto -------------------------------------------------------------------------
if ! command -v mosquitto >/dev/null; then
  log "installing mosquitto"
  apt_install mosquitto mosquitto-clients
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  log "starting the shared mosquitto on 127.0.0.1:1883"
  as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
fi

# --- PostgreSQL --------------------------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null; then
  log "installing postgresql"
  apt_install postgresql
fi
pgver=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
pgbin=/usr/lib/postgresql/$pgver/bin
sharedir=/usr/share/postgresql/$pgver

# --- TimescaleDB -------------------------------------------------------------------------
if ! ls "$sharedir"/extension/timescaledb.control >/dev/null 2>&1; then
  if apt-cache policy "postgresql-$pgver-timescaledb" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    log "installing postgresql-$pgver-timescaledb"
    apt_install "postgresql-$pgver-timescaledb"
  else
    log "building timescaledb (Apache-only) from Debian trixie's source for PostgreSQL $pgver"
    src_list=/etc/apt/sources.list.d/pak-trixie-src.list
    if [[ ! -f $src_list ]]; then
      echo 'deb-src http://deb.debian.org/debian trixie main' | as_root tee "$src_list" >/dev/null
      apt_updated=0
    fi
    apt_install "postgresql-server-dev-$pgver" cmake dpkg-dev build-essential libssl-dev
    work=$(mktemp -d /tmp/pak-timescaledb.XXXXXX)
    (cd "$work" && apt-get source -qq timescaledb >/dev/null 2>&1)
    srcdir=$(find "$work" -maxdepth 1 -mindepth 1 -type d -name 'timescaledb-*' | head -n 1)
    [[ -n $srcdir ]] || { log "apt-get source timescaledb found nothing"; exit 1; }
    (cd "$srcdir" && ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DAPACHE_ONLY=ON \
        -DWARNINGS_AS_ERRORS=OFF -DPG_CONFIG="$pgbin/pg_config" >/dev/null \
      && make -s -C build -j"$(nproc)" >/dev/null && as_root make -s -C build install >/dev/null)
    rm -rf "$work"
  fi
fi

# --- Tools the deploy/ checks use: systemd-analyze and systemd-sysusers (units), promtool
# (Prometheus rules and scrape configuration) and nginx -t (the API's reverse proxy). The
# packages bring a Prometheus server and nginx too, which the tests never use.
if ! command -v systemd-analyze >/dev/null || ! command -v systemd-sysusers >/dev/null; then
  log "installing systemd (systemd-analyze verify for deploy/systemd)"
  apt_install systemd
fi
if ! command -v promtool >/dev/null; then
  log "installing prometheus (promtool check for deploy/prometheus)"
  apt_install prometheus
fi
if ! command -v nginx >/dev/null; then
  log "installing nginx (nginx -t for deploy/nginx)"
  apt_install nginx
fi

# --- Headless Chromium for the console's browser tests (tests/console), with a CJK font so
# the Chinese interface renders as glyphs in the screenshots, and its WebDriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
    || ! fc-list 2>/dev/null | grep -qi 'WenQuanYi Micro Hei'; then
  log "installing chromium, chromium-driver and fonts-wqy-microhei (console browser tests)"
  apt_install chromium chromium-driver fonts-wqy-microhei fontconfig
fi

# Preload the extension in the shared cluster and (re)start it when needed.
conf=/etc/postgresql/$pgver/main/postgresql.conf
if [[ -f $conf ]] && ! grep -qE "^shared_preload_libraries *= *'[^']*timescaledb" "$conf"; then
  log "adding timescaledb to shared_preload_libraries of the $pgver/main cluster"
  echo "shared_preload_libraries = 'timescaledb'" | as_root tee -a "$conf" >/dev/null
  echo "timescaledb.telemetry_level = off" | as_root tee -a "$conf" >/dev/null
  as_root pg_ctlcluster --skip-systemctl-redirect "$pgver" main restart
fi
if ! as_root runuser -u postgres -- psql -qtAc 'select 1' >/dev/null 2>&1; then
  log "starting PostgreSQL $pgver"
  as_root pg_ctlcluster --skip-systemctl-redirect "$pgver" main start
fi
log "ready: mosquitto $(mosquitto -h 2>/dev/null | head -n1 | awk '{print $3}'), PostgreSQL $pgver, timescaledb $(ls "$sharedir"/extension/timescaledb--*.sql 2>/dev/null | sed -n 's/.*timescaledb--\([0-9.]*\)\.sql$/\1/p' | sort -V | tail -n1)"
