"""`python -m benchmarks` (`make bench`): run every section, print the tables, write `.bench/results.json`.

Sections, in order: REST on the emulator as the CLI serves it (its own server), on Prism and on the bare
responder; when that misses a REST target (or with `--stacks all`), REST on gunicorn gthread and, for the
comparison only, on gunicorn gevent and granian (neither can serve the emulator's websocket as it is); the
market-data stream (its own server, and gunicorn gthread when measured); a bare Flask app on each serving stack; cold
start (emulator and Prism); the contract suite's wall time.
A section that fails is reported and the others still run; the exit status is 1 if any failed (a harness
error), 130 on Ctrl-C, and 0 otherwise, whatever the targets say.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import OUT_DIR, PRISM_VERSION, ROOT, HarnessError, isolation, report, rest, scale, startup
from benchmarks import stacks as serving_stacks
from benchmarks import stream as streaming
from benchmarks.load import LoadResult, wrk_available
from benchmarks.procs import BENCH_CA_DIR, HOST, CpuMeter, Server, free_port, install_signal_handlers

SPEC = ROOT / "openapi.yaml"
PRISM_BIN = OUT_DIR / "node_modules" / ".bin" / "prism"
REST_CONNECTIONS = (1, 16, 32, 64)  # 32: the p99 target's level (emulator stacks only)
REFERENCE_CONNECTIONS = (1, 16, 64)
STREAM_CLIENTS = (1, 50, 200)
STREAM_TICK_SECONDS = 0.03
BUSY_CORES = 0.25  # background load above this before a section: its figures are noisy, said so
STACK_LABELS = {"gevent": "gunicorn gevent, REST only", "granian": "granian WSGI, REST only"}
EMULATOR_APP = "benchmarks.wsgi:app"
GUNICORN_THREADS = 256  # every websocket holds a thread for its whole life: room for 200 clients and REST
REST_CONFIG = 'starting_cash = "1000000000000.00"\n'
STREAM_CONFIG = REST_CONFIG + f"tick_seconds = {STREAM_TICK_SECONDS}\n"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- servers --------------------------------------------------------------------------------------------------

def _config_file(name: str, text: str) -> Path:
    path = OUT_DIR / f"{name}.toml"
    path.write_text(text)
    return path


def emulator_server(config: Path | None, name: str = "builtin", *, tls: bool = False,
                    extra: Sequence[str] = ()) -> Server:
    """The emulator as `make mock-up` runs it, with Python's default of keeping compiled modules (and the emulator
    its parsed spec) in `__pycache__`. Some environments, this sandbox among them, set PYTHONDONTWRITEBYTECODE=1;
    where nothing was ever cached, every start then compiles the emulator's modules and parses the spec again."""
    argv = [sys.executable, "-m", "mock_server", "--port", "0", "--quiet", *(["--tls"] if tls else []), *extra]
    if config is not None:
        argv += ["--config", str(config)]
    return Server(name, argv, url_line=True,
                  env={"PYTHONDONTWRITEBYTECODE": None, "TRADEFENCE_CA_DIR": str(BENCH_CA_DIR)})


def gunicorn_server(config: Path, worker: str = "gthread") -> Server:
    port = free_port()
    return Server("gunicorn" if worker == "gthread" else worker,
                  serving_stacks.gunicorn_argv(EMULATOR_APP, port, worker, GUNICORN_THREADS), port=port,
                  ready_path="/_mock/rate-limit", env={"TRADEFENCE_BENCH_CONFIG": str(config)})


def granian_server(config: Path) -> Server:
    """REST only: granian serves websockets to ASGI and RSGI apps, not to a WSGI app like the emulator."""
    port = free_port()
    return Server("granian", serving_stacks.granian_argv(EMULATOR_APP, port), port=port,
                  ready_path="/_mock/rate-limit", env={"TRADEFENCE_BENCH_CONFIG": str(config)})


def prism_server() -> Server:
    if not PRISM_BIN.exists():
        raise HarnessError(f"Prism is not installed at {PRISM_BIN}: `make bench` installs "
                           f"@stoplight/prism-cli@{PRISM_VERSION} there")
    port = free_port()
    argv = [str(PRISM_BIN), "mock", "-h", HOST, "-p", str(port), "-v", "error", str(SPEC)]
    return Server("prism", argv, port=port, ready_path="/_mock/rate-limit")


def scale_server(config: Path) -> Server:
    """The emulator as the CLI serves it, with a history of filled orders put in before it serves."""
    return Server("loaded", [sys.executable, "-m", "benchmarks.scale_server", "--config", str(config),
                             "--subject", scale.SUBJECT, "--filled", str(scale.FILLED)], url_line=True,
                  start_timeout=600.0, env={"PYTHONDONTWRITEBYTECODE": None})


def bare_server() -> Server:
    return Server("bare", [sys.executable, "-m", "benchmarks.bare"], url_line=True)


# -- sections -------------------------------------------------------------------------------------------------

def _stored(figures: dict[str, dict[int, LoadResult]]) -> dict[str, dict[str, Any]]:
    """One stack's REST figures as results.json keeps them: endpoint -> connections (as text) -> the run."""
    return {endpoint: {str(c): run.as_dict() for c, run in levels.items()} for endpoint, levels in figures.items()
            if levels}


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                                        "machine": machine(), "settings": settings(args), "rest": {},
                                        "stream": {}, "tls": {}, "isolation": {}, "cold_start": {}, "errors": [],
                                        "background_cores": {}}
        self.started = time.monotonic()

    def section(self, name: str, body: Callable[[], None]) -> None:
        idle_load = background_load()
        self.results["background_cores"][name] = round(idle_load, 2)
        busy = f" (machine busy before it starts: {idle_load:.2f} cores in use)" if idle_load > BUSY_CORES else ""
        progress(f"[{time.monotonic() - self.started:6.1f} s] {name}{busy}")
        try:
            body()
        except HarnessError as exc:
            self.results["errors"].append(f"{name}: {exc}")
            progress(f"  harness error: {exc}")
        except Exception as exc:
            self.results["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
            progress(traceback.format_exc())

    def rest(self, stack: str, make: Callable[[], Server], flavour: rest.Flavour,
             connections: tuple[int, ...]) -> None:
        figures: dict[str, dict[int, LoadResult]] = {}
        try:
            with make() as server:
                rest.measure(server, flavour, rest.ENDPOINTS, connections, self.args.seconds, self.args.warmup,
                             progress, figures)
        finally:
            if any(figures.values()):
                self.results["rest"][stack] = _stored(figures)

    def rest_side_by_side(self, config: Path) -> None:
        """The emulator, Prism and the bare responder all running, measured in turns (`rest.side_by_side`): the
        ratios the targets are judged by compare figures taken seconds apart, not minutes."""
        figures: dict[str, dict[str, dict[int, LoadResult]]] = {}
        try:
            with contextlib.ExitStack() as running:
                contenders = [rest.Contender(running.enter_context(emulator_server(config)), rest.EMULATOR,
                                             self.args.connections, self.args.rounds)]
                if not self.args.no_prism:
                    contenders.append(rest.Contender(running.enter_context(prism_server()), rest.PRISM,
                                                     self.args.reference_connections, self.args.rounds))
                # The ceiling, not a contender: one round is enough.
                contenders.append(rest.Contender(running.enter_context(bare_server()), rest.BARE,
                                                 self.args.reference_connections, 1))
                rest.side_by_side(contenders, rest.ENDPOINTS, self.args.seconds, self.args.warmup, progress,
                                  figures)
        finally:
            for stack, endpoints in figures.items():
                self.results["rest"][stack] = _stored(endpoints)

    def tls(self, config: Path) -> None:
        """GET and POST over HTTPS beside plain HTTP: two emulators at once, measured in turns."""
        figures: dict[str, dict[str, dict[int, LoadResult]]] = {}
        try:
            with contextlib.ExitStack() as running:
                contenders = [rest.Contender(running.enter_context(emulator_server(config, name, tls=name == "tls")),
                                             rest.EMULATOR, self.args.reference_connections, self.args.rounds)
                              for name in ("plain", "tls")]
                rest.side_by_side(contenders, ("get_order", "create_order"), self.args.seconds, self.args.warmup,
                                  progress, figures)
        finally:
            self.results["tls"] = {stack: _stored(endpoints) for stack, endpoints in figures.items()}

    def soak(self, config: Path) -> None:
        with emulator_server(config) as server:
            self.results["soak"] = rest.soak(server, self.args.seconds, self.args.warmup, progress=progress)

    def stream(self, stack: str, make: Callable[[], Server]) -> None:
        levels: dict[str, Any] = {}
        self.results["stream"][stack] = levels
        with make() as server:
            for clients in self.args.stream_clients:
                try:
                    run = streaming.measure(server, clients, self.args.stream_seconds, self.args.warmup,
                                            STREAM_TICK_SECONDS)
                except streaming.StreamUnavailable as exc:
                    levels.clear()
                    levels.update({"status": "not available", "detail": str(exc)})
                    progress(f"  stream: not available ({exc})")
                    return
                levels[str(clients)] = run.as_dict()
                progress(f"  {stack:<10} {clients:>3} clients ({run.connected} connected, {run.subscribed} "
                         f"acknowledged, {run.starved} starved): "
                         f"{run.ticks_per_s:>9,.0f} ticks/s of {run.ceiling_per_s:,.0f}  lag p99 "
                         f"{run.lag_p99_ms:6.1f} ms  dropped {run.dropped}  RSS {run.rss_mib:.0f} MiB  "
                         f"server {run.server_cpu:.2f} / client {run.client_cpu:.2f} cores")
                time.sleep(0.5)  # let the server notice the closed sockets before the next level

    def isolation(self, stack: str, make: Callable[[], Server]) -> None:
        """A cheap GET's latency while four clients loop on heavy requests (`benchmarks/isolation.py`)."""
        figures: dict[str, Any] = {}
        self.results["isolation"][stack] = figures
        with make() as server:
            for scenario in ("quiet", *isolation.SCENARIOS):
                with CpuMeter(server) as meter:
                    result = isolation.measure(server, scenario, self.args.seconds, self.args.warmup)
                figures[scenario] = {**result.as_dict(), "foreign_cores": round(meter.foreign_cores, 2)}
                progress(f"  {stack:<10} {isolation.LABELS[scenario]:<46} cheap GET p50 {result.p50_ms:6.1f} ms  "
                         f"p99 {result.p99_ms:6.1f} ms  max {result.max_ms:6.1f} ms  ({result.probes} probes; "
                         f"heavy {result.heavy_rps:,.0f} req/s; others {meter.foreign_cores:.2f} cores)")

    def scale(self, config: Path) -> None:
        """What resting orders and a history cost per call (`benchmarks/scale.py`): in memory, then with --state."""
        figures: dict[str, Any] = {}
        self.results["scale"] = figures
        figures["memory"] = scale.in_memory(lambda: emulator_server(config, "empty"), lambda: scale_server(config),
                                            self.args.seconds, self.args.warmup, self.args.rounds, progress)
        figures["state"] = scale.with_state(
            lambda name, path: emulator_server(config, name, extra=["--state", str(path)]), config,
            self.args.seconds, self.args.warmup, self.args.rounds, progress)

    def cold_start(self) -> None:
        emulator = startup.cold_start(lambda: emulator_server(None, "coldstart"), "/v1", self.args.cold_runs)
        self.results["cold_start"]["emulator"] = emulator.as_dict()
        progress(f"  emulator: median {emulator.median_s:.3f} s")
        if not self.args.no_prism:
            prism = startup.cold_start(prism_server, "", self.args.cold_runs)
            self.results["cold_start"]["prism"] = prism.as_dict()
            progress(f"  prism: median {prism.median_s:.3f} s")

    def stacks(self) -> None:
        self.results["stacks"] = serving_stacks.measure(self.args.reference_connections[:2], self.args.seconds,
                                                        self.args.warmup, progress)

    def contracts(self) -> None:
        outcome = startup.contract_suite()
        self.results["contracts"] = outcome.as_dict()
        progress(f"  {outcome.seconds:.1f} s, exit {outcome.exit_code}: {outcome.summary}")

    def wants_gunicorn(self) -> bool:
        if self.args.stacks == "builtin":
            return False
        if importlib.util.find_spec("gunicorn") is None:
            message = "gunicorn is not installed (pip install -e '.[bench]'): alternative stack not measured"
            if self.args.stacks == "all":
                raise HarnessError(message)
            progress(f"  {message}")
            return False
        if self.args.stacks == "all":
            return True
        rest_targets = [t for t in report.evaluate(self.results)
                        if t["stack"] == "builtin" and t["result"] == "MISS" and "/v1/" in t["target"]]
        for target in rest_targets:
            progress(f"  the built-in server missed: {target['target']} ({target['measured']})")
        return bool(rest_targets)

    def all(self) -> None:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        rest_config = _config_file("emulator-rest", REST_CONFIG)
        stream_config = _config_file("emulator-stream", STREAM_CONFIG)
        sections = self.args.sections
        stacks = ["builtin"]
        if "rest" in sections:
            who = "the emulator (its own server)" + ("" if self.args.no_prism else f", Prism {PRISM_VERSION}")
            self.section(f"REST: {who} and the bare responder, in turns, {self.args.rounds} rounds",
                         lambda: self.rest_side_by_side(rest_config))
            gunicorn = False

            def decide() -> None:
                nonlocal gunicorn
                gunicorn = self.wants_gunicorn()

            self.section("alternative serving stack?", decide)
            if gunicorn:
                stacks.append("gunicorn")
                self.section("REST: emulator (gunicorn gthread)", lambda: self.rest(
                    "gunicorn", lambda: gunicorn_server(rest_config), rest.EMULATOR, self.args.connections))
                # REST-only alternatives, for the comparison: neither can serve this app's websocket as it is.
                for name, make in (("gevent", lambda: gunicorn_server(rest_config, "gevent")),
                                   ("granian", lambda: granian_server(rest_config))):
                    if importlib.util.find_spec(name) is None:
                        progress(f"  {name} is not installed (pip install -e '.[bench]'): not measured")
                        continue
                    self.section(f"REST: emulator ({STACK_LABELS[name]})", functools.partial(
                        self.rest, name, make, rest.EMULATOR, self.args.connections))
        elif self.args.stacks == "all":
            stacks.append("gunicorn")
        if "soak" in sections:
            self.section("REST soak: POST /v1/orders past 10,000 orders (its own server)",
                         lambda: self.soak(rest_config))
        if "stream" in sections:
            self.section("stream: emulator (its own server)",
                         lambda: self.stream("builtin", lambda: emulator_server(stream_config, "builtin-stream")))
            if "gunicorn" in stacks:
                self.section("stream: emulator (gunicorn gthread)",
                             lambda: self.stream("gunicorn", lambda: gunicorn_server(stream_config)))
        if "tls" in sections:
            self.section("REST over TLS beside plain HTTP: two emulators (their own server), in turns",
                         lambda: self.tls(rest_config))
        if "isolation" in sections:
            self.section("isolation: a cheap GET beside 4 clients on heavy requests (its own server)",
                         lambda: self.isolation("builtin", lambda: emulator_server(rest_config, "builtin-isolation")))
            if importlib.util.find_spec("gunicorn") is not None and self.args.stacks != "builtin":
                self.section("isolation: the same on gunicorn gthread", lambda: self.isolation(
                    "gunicorn", lambda: gunicorn_server(rest_config)))
        if "scale" in sections:
            self.section(f"scale: an empty account beside {scale.FILLED:,} filled and up to "
                         f"{scale.LEVELS[-1]:,} resting orders (in memory, then with --state), in turns",
                         lambda: self.scale(rest_config))
        if "stacks" in sections:
            self.section("serving stacks: a bare Flask app on each", self.stacks)
        if "startup" in sections:
            self.section("cold start", self.cold_start)
        if "contracts" in sections:
            self.section("contract suite", self.contracts)


def background_load(seconds: float = 0.5) -> float:
    """Cores busy machine-wide while the bench itself is idle: other work skews every figure it overlaps."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = values[3] + values[4]  # idle, iowait
        return sum(values[:8]) - idle, sum(values[:8])

    busy_before, total_before = sample()
    time.sleep(seconds)
    busy_after, total_after = sample()
    share = (busy_after - busy_before) / max(1, total_after - total_before)
    return share * (os.cpu_count() or 1)


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
        memory_gib = round(int(memory) / 2**20, 1)
    except (OSError, StopIteration):
        memory_gib = 0.0
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gib": memory_gib, "kernel": platform.release(),
            "python": platform.python_version(), "load_generator": "wrk" if wrk_available() else "asyncio",
            "wrk": _version(["wrk", "--version"]), "node": _version(["node", "--version"]),
            "prism": PRISM_VERSION}


def _version(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return ""
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0].split(" [")[0] if text else ""  # wrk: "wrk debian/4.1.0-3+b2 [epoll] Copyright..."


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"seconds_per_run": args.seconds, "warmup_seconds": args.warmup, "stream_seconds": args.stream_seconds,
            "stream_tick_seconds": STREAM_TICK_SECONDS, "stream_symbols": list(streaming.SYMBOLS),
            "batch_operations": f"{rest.BATCH_SIZE} x CANCEL_ORDER of unknown ids",
            "order": rest.MARKET_ORDER, "gunicorn_threads": GUNICORN_THREADS, "rest_rounds": args.rounds}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per REST run (default 3)")
    parser.add_argument("--warmup", type=float, default=1.0, help="discarded seconds before each run (default 1)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of the emulator and Prism taken in turns; each figure is the median (default 3)")
    parser.add_argument("--stream-seconds", type=float, default=4.0, help="measured seconds per stream level")
    parser.add_argument("--stacks", choices=["auto", "builtin", "all"], default="auto",
                        help="auto: measure gunicorn gthread only if the built-in server misses a REST target")
    parser.add_argument("--sections", nargs="+",
                        default=["rest", "soak", "tls", "stream", "isolation", "scale", "stacks", "startup",
                                 "contracts"],
                        choices=["rest", "soak", "tls", "stream", "isolation", "scale", "stacks", "startup",
                                 "contracts"])
    parser.add_argument("--no-prism", action="store_true", help="skip Prism (its ratios then read n/a)")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=OUT_DIR / "results.json")
    parser.add_argument("--markdown", type=Path, metavar="RESULTS",
                        help="only print the figures of an earlier run (its results.json) as Markdown tables")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.connections = REST_CONNECTIONS
    args.reference_connections = REFERENCE_CONNECTIONS
    args.stream_clients = STREAM_CLIENTS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.markdown is not None:
        print(report.markdown(json.loads(args.markdown.read_text())))
        return 0
    install_signal_handlers()
    run = Run(args)
    interrupted = False
    try:
        run.all()
    except KeyboardInterrupt:
        interrupted = True
        run.results["errors"].append("interrupted")
        progress("interrupted: every server started has been stopped")
    run.results["targets"] = report.evaluate(run.results)
    run.results["wall_seconds"] = round(time.monotonic() - run.started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(run.results, indent=2) + "\n")
    print(report.render(run.results))
    busy = report.noisy(run.results, BUSY_CORES)
    if busy:
        print(f"\nWARNING: other work used more than {BUSY_CORES} cores of this {os.cpu_count()}-core machine during "
              f"{len(busy)} runs (or just before a section): their figures are low and noisy: " + "; ".join(busy))
    print(f"\n{run.results['wall_seconds']:.0f} s in all; figures in {args.out}")
    if interrupted:
        return 130
    return 1 if run.results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
