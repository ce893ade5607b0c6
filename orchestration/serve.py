"""`make serve`: Dagster's code server, webserver and daemon as three supervised processes, for a
server.

The code server holds the code location (orchestration.definitions) and starts each run's process;
the daemon fires the nightly schedule, queues runs, has the code server launch them and watches
them; the webserver is the UI. Both reach the code location through the one code server
(workspace.server.yaml, on 127.0.0.1:DAGSTER_CODE_SERVER_PORT), which starts first: a daemon given
the code as a module (`-w workspace.yaml`) starts a code server of its own and replaces it every
60 s, importing the definitions again each time (~4-5 s of CPU a minute, measured in the deployment
test), and the webserver would start one more. All three run in the foreground of this process,
each writing its log to its own file (data/logs/code_server.log, webserver.log and daemon.log by
default, rotated at 20 MB). SIGTERM, SIGINT (Ctrl-C) or SIGHUP stops them: each gets SIGTERM, with
the processes it started (the code server's run workers, which mark their run as interrupted), then
SIGKILL after a grace period. If one of them exits by itself, the others are stopped too and this
process exits non-zero, so that a service manager restarts them.

The instance is chosen by DAGSTER_STORAGE: `sqlite` (dagster_home/, the embedded default of
`make dev` and `make demo`) or `postgres` (dagster_home/postgres/, DAGSTER_PG_URL); unset, it is
`postgres` as soon as DAGSTER_PG_URL or DAGSTER_PG_HOST is set. Settings come from the environment,
then from `.env` (which does not override the environment). The README's "Deploying" section runs
the same two commands under systemd instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO
from urllib.parse import quote

from orchestration.settings import PROJECT_ROOT, SettingsError

STORAGES = ("sqlite", "postgres")
# The code server listens on loopback only: whoever reaches it can run code (workspace.server.yaml).
CODE_SERVER_HOST = "127.0.0.1"
CODE_SERVER_PORT_ENV = "DAGSTER_CODE_SERVER_PORT"
DEFAULT_CODE_SERVER_PORT = 4000
LOCATION_NAME = "darksocial_warehouse"  # as in workspace.yaml, so schedules and runs keep theirs
CODE_SERVER_STARTUP_SECONDS = 300
STOP_GRACE_SECONDS = 30
PG_SCHEME = "postgresql+psycopg2://"
# Each service log is rotated at 20 MB, and the 5 files before it kept.
LOG_MAX_BYTES = 20 * 1024 * 1024
LOG_BACKUPS = 5


def storage_of(env: Mapping[str, str]) -> str:
    """`sqlite` or `postgres`, by DAGSTER_STORAGE, else by whether PostgreSQL settings are present."""
    text = (env.get("DAGSTER_STORAGE") or "").strip().lower()
    if not text:
        return "postgres" if env.get("DAGSTER_PG_URL") or env.get("DAGSTER_PG_HOST") else "sqlite"
    if text not in STORAGES:
        raise SettingsError(
            f"DAGSTER_STORAGE={text!r} is not valid; use sqlite (Dagster's embedded storage in "
            "dagster_home/) or postgres (dagster_home/postgres/, with DAGSTER_PG_URL)."
        )
    return text


def postgres_url(env: Mapping[str, str]) -> str:
    """DAGSTER_PG_URL, or the URL the DAGSTER_PG_* parts make (user and password URL-quoted), naming
    the psycopg2 driver.

    dagster-postgres installs psycopg2, but SQLAlchemy 2.1 reads a bare postgresql:// URL as psycopg
    (version 3): a URL without a driver gets `+psycopg2`.

    Raises:
        SettingsError: neither the URL nor DAGSTER_PG_HOST, DAGSTER_PG_USER and DAGSTER_PG_DB are set.
    """
    if env.get("DAGSTER_PG_URL"):
        url = env["DAGSTER_PG_URL"].strip()
        for bare in ("postgresql://", "postgres://"):
            if url.startswith(bare):
                return PG_SCHEME + url.removeprefix(bare)
        return url
    host, user, db = (env.get(f"DAGSTER_PG_{k}") or "" for k in ("HOST", "USER", "DB"))
    if not (host and user and db):
        missing = [f"DAGSTER_PG_{k}" for k, v in (("HOST", host), ("USER", user), ("DB", db)) if not v]
        raise SettingsError(
            "The PostgreSQL instance needs DAGSTER_PG_URL (postgresql://user:password@host:5432/db), "
            f"or DAGSTER_PG_HOST, DAGSTER_PG_USER and DAGSTER_PG_DB; {', '.join(missing)} not set. "
            "Set them in .env, or DAGSTER_STORAGE=sqlite for the embedded storage."
        )
    password = env.get("DAGSTER_PG_PASSWORD") or ""
    credentials = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    port = (env.get("DAGSTER_PG_PORT") or "5432").strip()
    if not port.isdigit():
        raise SettingsError(f"DAGSTER_PG_PORT={port!r} is not a port number; use e.g. 5432.")
    return f"{PG_SCHEME}{credentials}@{host}:{port}/{quote(db, safe='')}"


def service_environment(
    environ: Mapping[str, str], env_file: Path | None, dagster_home: Path | None = None
) -> dict[str, str]:
    """The environment of the code server, the webserver and the daemon: `environ`, then
    `env_file`'s settings that `environ` does not set, DAGSTER_HOME of the chosen storage (unless
    `dagster_home` is given) and, for PostgreSQL, DAGSTER_PG_URL."""
    env: MutableMapping[str, str] = dict(environ)
    if env_file is not None and env_file.is_file():
        from dotenv import dotenv_values

        for name, value in dotenv_values(env_file).items():
            if value is not None and name not in env:
                env[name] = value
    storage = storage_of(env)
    if storage == "postgres":
        env["DAGSTER_PG_URL"] = postgres_url(env)
    home = dagster_home or PROJECT_ROOT / "dagster_home" / ("postgres" if storage == "postgres" else "")
    if not (home / "dagster.yaml").is_file():
        raise SettingsError(f"No dagster.yaml in {home}: the Dagster instance folder of {storage} storage.")
    env["DAGSTER_HOME"] = str(home.resolve())
    env["DAGSTER_STORAGE"] = storage
    return dict(env)


def _commands(host: str, port: int, code_port: int) -> dict[str, list[str]]:
    """In start order: the code server first, which the other two connect to."""
    bin_dir = Path(sys.executable).parent
    workspace = str(PROJECT_ROOT / "workspace.server.yaml")  # reads DAGSTER_CODE_SERVER_PORT
    code_server = [str(bin_dir / "dagster"), "code-server", "start", "-m", "orchestration.definitions"]
    code_server += ["-a", "defs", "-d", str(PROJECT_ROOT), "--location-name", LOCATION_NAME]
    return {
        "code_server": [*code_server, "-h", CODE_SERVER_HOST, "-p", str(code_port)],
        "webserver": [str(bin_dir / "dagster-webserver"), "-w", workspace, "-h", host, "-p", str(port)],
        "daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", workspace],
    }


def _serving(host: str, port: int) -> Callable[[], bool]:
    """Whether the code server there answers gRPC's standard health check as serving: Dagster's
    code server reports its API ("DagsterApi") so once it has loaded the definitions or recorded
    why it could not. Asked through grpcio's own client (installed with Dagster)."""

    def check() -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(f"{host}:{port}") as channel:
            try:
                answer = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service="DagsterApi"), timeout=1
                )
            except grpc.RpcError:  # not listening yet, or not serving the API yet
                return False
        return answer.status == health_pb2.HealthCheckResponse.SERVING

    return check


class Supervisor:
    """The processes, each in its own process group so that a stop reaches what they started.

    `ready`: for a process the next ones need, whether it is ready; they start once it is, or after
    `ready_timeout` anyway, and not at all if it exits first (then `wait` returns its name).
    """

    def __init__(
        self,
        commands: Mapping[str, list[str]],
        env: Mapping[str, str],
        log_dir: Path,
        log_max_bytes: int = LOG_MAX_BYTES,
        ready: Mapping[str, Callable[[], bool]] | None = None,
        ready_timeout: float = CODE_SERVER_STARTUP_SECONDS,
    ):
        self.commands, self.env, self.log_dir, self.log_max_bytes = commands, env, log_dir, log_max_bytes
        self.ready, self.ready_timeout = dict(ready or {}), ready_timeout
        self.processes: dict[str, subprocess.Popen] = {}
        self.pumps: list[threading.Thread] = []
        self.stop_requested: int | None = None

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name, command in self.commands.items():
            # Its own session: Ctrl-C in a terminal reaches this process only, which then stops
            # each group in order instead of both racing to die.
            process = subprocess.Popen(
                command,
                env=dict(self.env),
                # Dagster reads .env from its working directory; this process already did.
                cwd=self.env["DAGSTER_HOME"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.processes[name] = process
            pump = threading.Thread(
                target=_write_rotating,
                args=(process.stdout, self.log_dir / f"{name}.log", self.log_max_bytes),
                name=f"log-{name}",
                daemon=True,
            )
            pump.start()
            self.pumps.append(pump)
            if name in self.ready and not self._wait_ready(name, process):
                return

    def _wait_ready(self, name: str, process: subprocess.Popen) -> bool:
        deadline = time.monotonic() + self.ready_timeout
        while self.stop_requested is None and process.poll() is None and time.monotonic() < deadline:
            if self.ready[name]():
                return True
            time.sleep(0.5)
        return process.poll() is None and self.stop_requested is None

    def wait(self) -> str | None:
        """Until a stop signal (returns None) or one process exits (returns its name)."""
        while self.stop_requested is None:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    return name
            time.sleep(0.5)
        return None

    def stop(self) -> None:
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # Whatever is left of the group (a code server slow to exit) goes now.
            _signal_group(process, signal.SIGKILL)
            process.wait()
        for pump in self.pumps:
            pump.join(timeout=10)


def _write_rotating(stream: IO[bytes], path: Path, max_bytes: int) -> None:
    """Copy a process's output to `path`, rotated at `max_bytes` (LOG_BACKUPS older files kept):
    the daemon's log carries every run's events, night after night."""
    handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=LOG_BACKUPS, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    try:
        for line in iter(stream.readline, b""):
            handler.emit(logging.makeLogRecord({"msg": line.decode("utf-8", "replace").rstrip("\n")}))
    finally:
        handler.close()
        stream.close()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--host", help="default: DAGSTER_WEBSERVER_HOST, else 127.0.0.1")
    parser.add_argument("--port", type=int, help="default: DAGSTER_WEBSERVER_PORT, else 3000")
    parser.add_argument("--log-dir", type=Path, default=PROJECT_ROOT / "data" / "logs")
    parser.add_argument("--env-file", type=Path, default=PROJECT_ROOT / ".env")
    parser.add_argument(
        "--dagster-home", type=Path, default=None, help="instance folder (default: by DAGSTER_STORAGE)"
    )
    parser.add_argument(
        "--code-server-port",
        type=int,
        help=f"default: {CODE_SERVER_PORT_ENV}, else {DEFAULT_CODE_SERVER_PORT}",
    )
    args = parser.parse_args(argv)
    try:
        env = service_environment(os.environ, args.env_file, args.dagster_home)
        host = args.host or env.get("DAGSTER_WEBSERVER_HOST") or "127.0.0.1"
        port_text = str(args.port or env.get("DAGSTER_WEBSERVER_PORT") or 3000)
        if not port_text.isdigit():
            raise SettingsError(f"DAGSTER_WEBSERVER_PORT={port_text!r} is not a port number; use e.g. 3000.")
        code_port = str(args.code_server_port or env.get(CODE_SERVER_PORT_ENV) or DEFAULT_CODE_SERVER_PORT)
        if not code_port.isdigit():
            raise SettingsError(f"{CODE_SERVER_PORT_ENV}={code_port!r} is not a port number; use e.g. 4000.")
        env[CODE_SERVER_PORT_ENV] = code_port
    except SettingsError as exc:
        print(f"make serve: {exc}", file=sys.stderr)
        return 2

    supervisor = Supervisor(
        _commands(host, int(port_text), int(code_port)),
        env,
        args.log_dir,
        ready={"code_server": _serving(CODE_SERVER_HOST, int(code_port))},
    )

    def request_stop(signum, _frame):
        supervisor.stop_requested = signum

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, request_stop)
    print(f"Starting the code server ({CODE_SERVER_HOST}:{code_port}), then the webserver and daemon.")
    supervisor.start()
    print(
        f"Dagster webserver at http://{host}:{port_text} and daemon started "
        f"({env['DAGSTER_STORAGE']} instance {env['DAGSTER_HOME']}); logs in {args.log_dir}. "
        "Ctrl-C stops them.",
        flush=True,
    )
    died = supervisor.wait()
    if died is not None:
        code = supervisor.processes[died].returncode
        print(
            f"The {died} exited (code {code}); stopping the others. See {args.log_dir / (died + '.log')}.",
            file=sys.stderr,
            flush=True,
        )
    supervisor.stop()
    if died is not None:
        return 1
    print("Stopped the code server, the webserver and the daemon.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
