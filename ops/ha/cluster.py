"""A local high-availability Portal: etcd, a three-node Patroni cluster (synchronous
replication), haproxy, and two portal instances behind it. ``up`` starts it all and prints,
as its last two lines, ``URL <load balancer>`` and ``DSN <libpq multi-host URL>``; ``down``
stops everything ``up`` started (the state file lists it) and removes the state directory.

Only the standard library: it runs on any Python 3.11, the portal instances on the one named
by PORTAL_HA_PYTHON (default: this one). Everything listens on 127.0.0.1, on ports from
PORTAL_HA_PORT (default 57400) upwards; the state lives in PORTAL_HA_DIR (default
/tmp/portal-ha). PostgreSQL refuses to run as root, so as root the database side (etcd,
Patroni, PostgreSQL, haproxy) runs as the ``postgres`` user (PORTAL_HA_USER to choose).
This is a development layout: trust authentication on loopback. README.md in this folder
describes a production one.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("PORTAL_HA_PG_BIN", "/usr/lib/postgresql/15/bin"))
BASE = Path(os.environ.get("PORTAL_HA_DIR", "/tmp/portal-ha"))
PORT = int(os.environ.get("PORTAL_HA_PORT", "57400"))
STATE = BASE / "state.json"
PACKAGES = {"patroni": "patroni", "etcd": "etcd-server", "haproxy": "haproxy"}
NODES = ("node1", "node2", "node3")
START_TIMEOUT = 90.0


def ports() -> dict[str, int]:
    return {
        "etcd": PORT, "etcd_peer": PORT + 1,
        **{f"pg_{n}": PORT + 11 + i for i, n in enumerate(NODES)},
        **{f"api_{n}": PORT + 21 + i for i, n in enumerate(NODES)},
        "haproxy_pg": PORT + 30, "lb": PORT + 40, "portal1": PORT + 41, "portal2": PORT + 42,
    }


def log(message: str) -> None:
    print(message, flush=True)


# --- who runs the database side --------------------------------------------------------------

def run_as() -> pwd.struct_passwd | None:
    """The unprivileged user for PostgreSQL when we are root (None: ourselves)."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(os.environ.get("PORTAL_HA_USER", "postgres"))


def demote(user: pwd.struct_passwd | None):
    if user is None:
        return None

    def switch() -> None:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return switch


def ensure_packages() -> None:
    missing = [pkg for binary, pkg in PACKAGES.items() if shutil.which(binary) is None
               and not Path(f"/usr/sbin/{binary}").exists()]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    log(f"Installing {' '.join(missing)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-q"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", *missing], check=True, env=env)


def binary(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


# --- processes -------------------------------------------------------------------------------

def spawn(name: str, command: list[str], *, user=None, env=None, cwd=None) -> int:
    """Start a long-running process in its own session, output to BASE/<name>.log."""
    log_path = BASE / f"{name}.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   preexec_fn=demote(user), env=env, cwd=cwd or BASE)
    return process.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def http_json(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def wait_for(what: str, check, pids: list[int], timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        dead = [pid for pid in pids if not alive(pid)]
        if dead:
            raise RuntimeError(f"{what}: a process exited (see the logs in {BASE})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready within {timeout:.0f} s (logs in {BASE})")
        time.sleep(0.3)


def save_state(state: dict) -> None:
    STATE.write_text(json.dumps(state, indent=2))


# --- the pieces ------------------------------------------------------------------------------

def patroni_config(node: str, p: dict[str, int]) -> str:
    data = BASE / node / "data"
    api = p[f"api_{node}"]
    pg = p[f"pg_{node}"]
    return f"""scope: portal-ha
namespace: /portal-ha/
name: {node}
log:
  level: INFO
restapi:
  listen: 127.0.0.1:{api}
  connect_address: 127.0.0.1:{api}
etcd3:
  hosts: 127.0.0.1:{p['etcd']}
bootstrap:
  dcs:
    # A lost primary is noticed within a second or two and its leader key expires after
    # ttl; a crashed primary is not restarted in place (primary_start_timeout 0): a
    # synchronous standby, which has every acknowledged commit, takes over.
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
    primary_start_timeout: 0
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        max_connections: 100
        synchronous_commit: "on"
  initdb:
  - encoding: UTF8
  - locale: C.UTF-8
  - data-checksums
postgresql:
  listen: 127.0.0.1:{pg}
  connect_address: 127.0.0.1:{pg}
  data_dir: {data}
  bin_dir: {PG_BIN}
  pgpass: {BASE / node / 'pgpass'}
  authentication:
    superuser:
      username: postgres
      password: postgres
    replication:
      username: replicator
      password: replicator
    rewind:
      username: rewinder
      password: rewinder
  parameters:
    unix_socket_directories: {BASE / node}
    shared_buffers: 32MB
    fsync: "on"
  pg_hba:
  - local all all trust
  - host all all 127.0.0.1/32 trust
  - host replication all 127.0.0.1/32 trust
  basebackup:
  - checkpoint: fast
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
"""


def haproxy_config(p: dict[str, int]) -> str:
    pg_servers = "\n".join(
        f"  server {node} 127.0.0.1:{p[f'pg_{node}']} check port {p[f'api_{node}']}"
        for node in NODES)
    return f"""global
  maxconn 2000

defaults
  timeout connect 3s
  timeout client 60s
  timeout server 60s
  timeout check 2s

# The primary for tools (psql, backups): Patroni's REST API answers 200 on /primary only on
# the leader. The portal itself connects with the multi-host DSN and needs no proxy.
listen postgres_primary
  bind 127.0.0.1:{p['haproxy_pg']}
  mode tcp
  option httpchk GET /primary
  http-check expect status 200
  default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions
{pg_servers}

# The portal instances. /healthz is 503 while an instance cannot reach the primary, so it is
# taken out; a refused connection (an instance restarting) is retried on the other. Nothing
# else is retried: a request that reached an instance may have written.
frontend portal
  bind 127.0.0.1:{p['lb']}
  mode http
  option forwardfor
  timeout client 60s
  default_backend portal_instances

backend portal_instances
  mode http
  balance roundrobin
  option httpchk GET /healthz
  http-check expect status 200
  retry-on conn-failure
  retries 2
  option redispatch
  default-server inter 1s fall 2 rise 2
  server portal1 127.0.0.1:{p['portal1']} check
  server portal2 127.0.0.1:{p['portal2']} check
"""


def cluster_members(p: dict[str, int]) -> list[dict]:
    for node in NODES:
        data = http_json(f"http://127.0.0.1:{p[f'api_{node}']}/cluster")
        if data:
            return data.get("members", [])
    return []


def cluster_ready(p: dict[str, int]) -> bool:
    members = cluster_members(p)
    roles = {m.get("role") for m in members}
    running = [m for m in members if m.get("state") in ("running", "streaming")]
    return len(running) == 3 and "leader" in roles and "sync_standby" in roles


def primary_port(p: dict[str, int]) -> int | None:
    for node in NODES:
        if http_status(f"http://127.0.0.1:{p[f'api_{node}']}/primary") == 200:
            return p[f"pg_{node}"]
    return None


def dsn(p: dict[str, int]) -> str:
    hosts = ",".join(f"127.0.0.1:{p[f'pg_{node}']}" for node in NODES)
    return f"postgresql://postgres@{hosts}/portal?target_session_attrs=read-write"


def portal_environment(p: dict[str, int], index: int, secret_key: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("PORTAL_") or key in ("PORTAL_SMTP_URL", "PORTAL_DEV",
                                                       "PORTAL_MAIL_FROM",
                                                       "PORTAL_API_RATE_PER_MINUTE")}
    data_dir = BASE / f"portal{index}"
    data_dir.mkdir(exist_ok=True)
    src = str(ROOT / "src")
    env.update(
        PORTAL_DATABASE_URL=dsn(p),
        PORTAL_DATA_DIR=str(data_dir),
        PORTAL_SECRET_KEY=secret_key,
        PORTAL_BASE_URL=os.environ.get("PORTAL_BASE_URL") or f"http://127.0.0.1:{p['lb']}",
        # haproxy connects from loopback and adds X-Forwarded-For: believe it, nobody else.
        PORTAL_TRUSTED_PROXIES="127.0.0.1",
        PYTHONPATH=os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    return env


# --- up and down -----------------------------------------------------------------------------

def up() -> int:
    if STATE.exists():
        state = json.loads(STATE.read_text())
        if any(alive(pid) for pid in state.get("pids", {}).values()):
            print(f"already running (state in {STATE}); run ops/ha/down first", file=sys.stderr)
            return 1
        shutil.rmtree(BASE, ignore_errors=True)
    ensure_packages()
    p = ports()
    user = run_as()
    BASE.mkdir(parents=True, exist_ok=True)
    for node in NODES:
        (BASE / node).mkdir(exist_ok=True)
    (BASE / "etcd").mkdir(exist_ok=True)
    if user is not None:
        for path in [BASE, *BASE.iterdir()]:
            os.chown(path, user.pw_uid, user.pw_gid)
    for node in NODES:
        os.chmod(BASE / node, 0o700)
    os.chmod(BASE / "etcd", 0o700)
    state: dict = {"ports": p, "pids": {}, "base": str(BASE)}
    save_state(state)
    pids = state["pids"]
    try:
        log(f"etcd on 127.0.0.1:{p['etcd']}")
        pids["etcd"] = spawn("etcd", [
            binary("etcd"), "--name", "portal-ha", "--data-dir", str(BASE / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{p['etcd']}",
            "--advertise-client-urls", f"http://127.0.0.1:{p['etcd']}",
            "--listen-peer-urls", f"http://127.0.0.1:{p['etcd_peer']}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{p['etcd_peer']}",
            "--initial-cluster", f"portal-ha=http://127.0.0.1:{p['etcd_peer']}",
            "--initial-cluster-state", "new", "--enable-v2=true",
        ], user=user)
        save_state(state)
        wait_for("etcd", lambda: http_status(f"http://127.0.0.1:{p['etcd']}/health") == 200,
                 [pids["etcd"]])
        for index, node in enumerate(NODES):
            config = BASE / f"{node}.yml"
            config.write_text(patroni_config(node, p))
            if user is not None:
                os.chown(config, user.pw_uid, user.pw_gid)
            log(f"Patroni {node}: PostgreSQL on 127.0.0.1:{p[f'pg_{node}']}, "
                f"REST API on 127.0.0.1:{p[f'api_{node}']}")
            pids[f"patroni_{node}"] = spawn(f"patroni_{node}", [binary("patroni"), str(config)],
                                            user=user)
            save_state(state)
            if index == 0:  # the first one bootstraps; the others copy it
                wait_for("the first PostgreSQL", lambda: primary_port(p) is not None,
                         [pids[f"patroni_{node}"]])
        wait_for("the cluster (a primary and a synchronous standby)",
                 lambda: cluster_ready(p), [pids[f"patroni_{n}"] for n in NODES])
        primary = primary_port(p)
        subprocess.run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(primary), "-U",
                        "postgres", "-qAtc", "CREATE DATABASE portal"], check=True,
                       preexec_fn=demote(user), cwd="/", stdout=subprocess.DEVNULL)
        log(f"haproxy: the primary on 127.0.0.1:{p['haproxy_pg']}, "
            f"the portal on 127.0.0.1:{p['lb']}")
        (BASE / "haproxy.cfg").write_text(haproxy_config(p))
        pids["haproxy"] = spawn("haproxy", [binary("haproxy"), "-db", "-f",
                                            str(BASE / "haproxy.cfg")], user=user)
        save_state(state)
        secret_key = secrets.token_urlsafe(48)
        (BASE / "secret_key").write_text(secret_key)
        os.chmod(BASE / "secret_key", 0o600)
        python = os.environ.get("PORTAL_HA_PYTHON") or sys.executable
        for index in (1, 2):
            port = p[f"portal{index}"]
            log(f"portal {index} on 127.0.0.1:{port}")
            pids[f"portal{index}"] = spawn(f"portal{index}", [
                python, "-m", "portal.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
            ], env=portal_environment(p, index, secret_key), cwd=str(ROOT))
            save_state(state)
        for index in (1, 2):
            port = p[f"portal{index}"]
            wait_for(f"portal {index}",
                     lambda port=port: http_status(f"http://127.0.0.1:{port}/healthz") == 200,
                     [pids[f"portal{index}"]])
        wait_for("haproxy", lambda: http_status(f"http://127.0.0.1:{p['lb']}/healthz") == 200,
                 [pids["haproxy"]])
    except BaseException:
        print(f"ops/ha/up failed; stopping what started (logs in {BASE})", file=sys.stderr)
        down(keep=True)
        raise
    state["url"] = f"http://127.0.0.1:{p['lb']}"
    state["dsn"] = dsn(p)
    save_state(state)
    log(f"State and logs: {BASE}; stop with ops/ha/down")
    log(f"URL {state['url']}")
    log(f"DSN {state['dsn']}")
    return 0


def _ours(pid: int) -> bool:
    """One of the programs we start whose command line names our state directory (a
    postmaster whose Patroni was killed, say); a shell or an editor there is left alone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = [arg.decode(errors="replace") for arg in cmdline.read().split(b"\0")]
    except OSError:
        return False
    if not any(str(BASE) in arg for arg in argv):
        return False
    program = Path(argv[0]).name
    return program in ("postgres", "etcd", "haproxy", "patroni") or (
        len(argv) > 1 and Path(argv[1]).name == "patroni")


def _stragglers() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and _ours(int(entry.name)):
            found.append(int(entry.name))
    return found


def _stop(pids: list[int], timeout: float) -> None:
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def down(keep: bool = False) -> int:
    if not STATE.exists():
        log(f"nothing to stop ({STATE} does not exist)")
        return 0
    state = json.loads(STATE.read_text())
    pids = state.get("pids", {})
    # The front first (no new requests), then the database side, etcd last (Patroni needs it
    # to stop cleanly).
    _stop([pids[name] for name in ("portal1", "portal2", "haproxy") if name in pids], 15)
    _stop([pids[name] for name in pids if name.startswith("patroni_")], 30)
    _stop(_stragglers(), 10)  # a postmaster whose Patroni was killed
    _stop([pids[name] for name in ("etcd",) if name in pids], 10)
    _stop(_stragglers(), 5)
    if keep:
        log(f"stopped; state kept in {BASE}")
    else:
        shutil.rmtree(BASE, ignore_errors=True)
        log("stopped")
    return 0


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "up":
        return up()
    if command == "down":
        return down(keep="--keep" in argv)
    print("usage: cluster.py up|down [--keep]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
