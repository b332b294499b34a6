"""Private Redis topologies for the high-availability tests: TLS, and Sentinel with a replica.

* :class:`RedisProc` is one ``redis-server`` / ``redis-sentinel`` on a free loopback port in its
  own process group, with a temp dir; :meth:`RedisProc.kill` is a SIGKILL (a crash).
* :class:`SentinelGroup` is a master, one replica and one sentinel (quorum 1, 1 s down-after),
  optionally all TLS-only, and the ``redis+sentinel://`` (``rediss+sentinel://``) URL naming
  them.

* :func:`start_two_servers` / :func:`broadcast_reaches_both`: two ``aiusage serve`` processes
  on such a Redis, one official client on each.

Every wait is bounded; :meth:`SentinelGroup.stop` / :meth:`RedisProc.stop` kill what started.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis

from tests.hubserver.server.certs import make_certs
from tests.support.platform_procs import (
    Deployment,
    NodeClients,
    Proc,
    _kill_group,
    free_port,
    wait_until,
)

HAVE_SENTINEL = shutil.which("redis-sentinel") is not None
SERVICE = "mymaster"
DOWN_AFTER_MS = 1000

# --- processes ---------------------------------------------------------------------------------


class RedisProc:
    """One ``redis-server`` (or ``redis-sentinel`` with ``sentinel=True``) on 127.0.0.1.

    Args:
        directory: Its working dir (sentinel config, logs).
        args: Extra command-line arguments (``--replicaof ...``, TLS files ...).
        port: The port to listen on (default: a free one); with ``tls`` the TLS port.
        tls_ca: CA file when the port speaks TLS only (``--port 0 --tls-port P``).
        config: Sentinel configuration lines (written to ``sentinel.conf``).
    """

    def __init__(
        self,
        directory: Path,
        *args: str,
        port: int | None = None,
        tls_ca: Path | None = None,
        config: list[str] | None = None,
    ) -> None:
        self.directory = directory
        self.args = list(args)
        self.port = port or free_port()
        self.tls_ca = tls_ca
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        """Start and wait (bounded) for PONG.

        Raises:
            RuntimeError: It did not answer within 10 s (its log is in the message).
        """
        listen = (
            ["--port", "0", "--tls-port", str(self.port)]
            if self.tls_ca
            else ["--port", str(self.port)]
        )
        common = ["--bind", "127.0.0.1", "--daemonize", "no", "--dir", str(self.directory)]
        if self.config is not None:
            conf = self.directory / "sentinel.conf"
            ports = [f"port {self.port}"]
            if self.tls_ca is not None:
                ports = ["port 0", f"tls-port {self.port}"]
            conf.write_text("\n".join([*ports, *self.config]) + "\n")
            command = ["redis-sentinel", str(conf), *common]
        else:
            command = ["redis-server", *listen, *common, "--save", "", "--appendonly", "no"]
        log = (self.directory / "redis.log").open("ab")
        try:
            self.proc = subprocess.Popen(
                [*command, *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        if not wait_until(self.answers, 10.0, 0.05):
            self.stop()
            raise RuntimeError(f"{command[0]} did not start:\n{self.log()[-3000:]}")

    def log(self) -> str:
        """What the process wrote."""
        with contextlib.suppress(OSError):
            return (self.directory / "redis.log").read_text("utf-8", "replace")
        return ""

    def client(self) -> redis.Redis:
        """A synchronous admin client (1 s timeouts; TLS when the port speaks TLS)."""
        tls: dict[str, Any] = (
            {"ssl": True, "ssl_ca_certs": str(self.tls_ca)} if self.tls_ca is not None else {}
        )
        return redis.Redis(
            "127.0.0.1", self.port, socket_timeout=1.0, socket_connect_timeout=1.0, **tls
        )

    def answers(self) -> bool:
        """True when it answers PING."""
        with contextlib.closing(self.client()) as client:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

    def info(self, section: str) -> dict[str, Any]:
        """``INFO section`` (empty when nothing answers)."""
        with contextlib.closing(self.client()) as client:
            try:
                return dict(client.info(section))
            except redis.RedisError:
                return {}

    def kill(self) -> None:
        """SIGKILL: the process dies as in a crash, its sockets reset."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)

    def stop(self) -> None:
        """Stop it (idempotent)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            _kill_group(proc, 5.0)


class SentinelGroup:
    """Master + replica + one sentinel watching them as :data:`SERVICE`, on free ports.

    Quorum 1 and ``down-after-milliseconds`` :data:`DOWN_AFTER_MS`: a killed master is
    replaced by the replica within a few seconds.
    """

    def __init__(self, directory: Path, *, tls: bool = False) -> None:
        # With ``tls`` every port (master, replica, sentinel) and the replication link speak
        # TLS only, with a certificate of a CA made for the group.
        directory.mkdir(parents=True, exist_ok=True)
        self.tls_files = make_certs(directory) if tls else None
        # Redis waits 5 s by default before a diskless full sync, for more replicas to join.
        server_args: list[str] = ["--repl-diskless-sync-delay", "0"]
        sentinel_tls: list[str] = []
        ca = None
        if self.tls_files is not None:
            ca = self.tls_files.ca
            files = [
                ("tls-cert-file", self.tls_files.cert),
                ("tls-key-file", self.tls_files.key),
                ("tls-ca-cert-file", ca),
            ]
            server_args += [w for k, v in files for w in (f"--{k}", str(v))]
            server_args += ["--tls-auth-clients", "no", "--tls-replication", "yes"]
            sentinel_tls = [f"{k} {v}" for k, v in files]
            sentinel_tls += ["tls-auth-clients no", "tls-replication yes"]
        self.master = RedisProc(directory / "master", *server_args, tls_ca=ca)
        self.replica = RedisProc(
            directory / "replica",
            *server_args,
            "--replicaof",
            "127.0.0.1",
            str(self.master.port),
            tls_ca=ca,
        )
        self.sentinel = RedisProc(
            directory / "sentinel",
            config=[
                *sentinel_tls,
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 1",
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {SERVICE} 10000",
                f"sentinel parallel-syncs {SERVICE} 1",
            ],
            tls_ca=ca,
        )

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:S/mymaster``, or ``rediss+sentinel://`` with the CA."""
        if self.tls_files is None:
            return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{SERVICE}"
        ca = quote(str(self.tls_files.ca), safe="/")
        return f"rediss+sentinel://127.0.0.1:{self.sentinel.port}/{SERVICE}?ssl_ca_certs={ca}"

    def start(self) -> None:
        """Start master, replica (in sync) and sentinel (seeing the replica), bounded.

        Raises:
            RuntimeError: A step did not complete within its timeout.
        """
        self.master.start()
        self.replica.start()
        if not wait_until(
            lambda: self.replica.info("replication").get("master_link_status") == "up", 15.0, 0.05
        ):
            raise RuntimeError("the replica did not sync:\n" + self.replica.log()[-2000:])
        self.sentinel.start()
        # Sentinel learns replicas from the master's INFO; a failover needs one it knows.
        if not wait_until(self._sentinel_knows_replica, 15.0, 0.1):
            raise RuntimeError(
                "the sentinel did not find the replica:\n" + self.sentinel.log()[-2000:]
            )

    def _sentinel_knows_replica(self) -> bool:
        with contextlib.closing(self.sentinel.client()) as client:
            try:
                replicas = client.sentinel_slaves(SERVICE)
            except redis.RedisError:
                return False
        # A failover picks only a replica whose link to the master is up as the sentinel last
        # heard it (fresh INFO), else it answers NOGOODSLAVE.
        return any(
            r["port"] == self.replica.port
            and not r["is_sdown"]
            and r.get("master-link-status") == "ok"
            and int(r.get("info-refresh", 10**9)) < 2000
            for r in replicas
        )

    def master_port(self) -> int | None:
        """The master's port as the sentinel reports it (None when it does not answer)."""
        with contextlib.closing(self.sentinel.client()) as client:
            try:
                address = client.sentinel_get_master_addr_by_name(SERVICE)
            except redis.RedisError:
                return None
        return int(address[1]) if address else None

    def stop(self) -> None:
        """Stop all three (idempotent)."""
        for proc in (self.sentinel, self.replica, self.master):
            proc.stop()


# --- two aiusage servers with one official client each ------------------------------------------


def start_two_servers(deployment: Deployment, node: NodeClients, org: str = "orgA") -> list[Proc]:
    """Migrate, create ``org``, start two ready servers and connect client ``c<i>`` to server i.

    Raises:
        AssertionError: A server did not become ready (its log is in the message).
    """
    deployment.migrate()
    deployment.create_org(org)
    servers = [deployment.start_server(wait=False) for _ in range(2)]
    for server in servers:
        deployment.wait_healthy(server)
        assert server.wait_ready_status(200, 10), server.log()[-3000:]
    node.connect_many(
        [
            (f"c{i}", f"{s.hub_url}?organizationId={org}", deployment.token(f"u{i}", org))
            for i, s in enumerate(servers)
        ]
    )
    return servers


def broadcast_reaches_both(node: NodeClients, sender: str, tag: str, org: str = "orgA") -> bool:
    """``sender`` invokes ``BroadcastDashboardUpdate``; True when c0 and c1 both got it (5 s)."""
    node.invoke(sender, "BroadcastDashboardUpdate", org, {"tag": tag})
    got = node.wait_messages(2, "DashboardUpdate", lambda r: r.args[0].get("tag") == tag, timeout=5)
    return sorted(r.name for r in got) == ["c0", "c1"]


def assert_no_tracebacks(servers: list[Proc]) -> None:
    """Every server is alive and logged no traceback."""
    for server in servers:
        assert server.alive(), server.log()[-3000:]
        assert not [line for line in server.log().splitlines() if line.startswith("Traceback")], (
            server.log()[-3000:]
        )
