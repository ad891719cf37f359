"""`pygoka run`: the entrypoint of a processor or view pod, configured by flags and PYGOKA_* variables."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from pygoka.cli.exit_codes import OK, USAGE, code_for
from pygoka.cli.loading import Target, UsageError, ViewSpec, add_python_path, codec_by_name, load_target
from pygoka.graph import GroupGraph
from pygoka.options import AT_LEAST_ONCE, GUARANTEES
from pygoka.processor import Processor
from pygoka.view import View

log = logging.getLogger("pygoka.cli")


def env_flag(name: str) -> bool:
    """env_flag reads a boolean environment variable (1/true/yes/on)."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def env_int(name: str, default: int | None) -> int | None:
    """env_int reads an integer environment variable, raising UsageError when it is not one."""
    value = _env_number(name, int, "an integer")
    return default if value is None else value


def env_float(name: str) -> float | None:
    """env_float reads a number from an environment variable, raising UsageError when it is not one."""
    return _env_number(name, float, "a number")


_N = TypeVar("_N", int, float)


def _env_number(name: str, parse: Callable[[str], _N], kind: str) -> _N | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return parse(raw)
    except ValueError:
        raise UsageError(f"${name} must be {kind}, not '{raw}'") from None


def guarantee_of(args: argparse.Namespace) -> str:
    """guarantee_of is --guarantee or $PYGOKA_GUARANTEE (at_least_once by default), checked."""
    guarantee = args.guarantee or os.environ.get("PYGOKA_GUARANTEE", "").strip() or AT_LEAST_ONCE
    if guarantee not in GUARANTEES:
        raise UsageError(f"$PYGOKA_GUARANTEE must be one of {', '.join(GUARANTEES)}, not '{guarantee}'")
    return str(guarantee)


def parse_config(pairs: list[str], flag: str) -> dict[str, str]:
    """parse_config turns repeated KEY=VALUE flags into a librdkafka configuration dictionary."""
    config: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} expects KEY=VALUE, not '{pair}'")
        config[key.strip()] = value
    return config


def config_dir_settings(directory: str | None = None) -> dict[str, str]:
    """config_dir_settings reads $PYGOKA_KAFKA_CONFIG_DIR: each file is a librdkafka setting named by the file.

    The operator mounts the Kafka Secret there (sasl.username, ssl.ca.location, ...). Values are never logged.
    """
    path = directory if directory is not None else os.environ.get("PYGOKA_KAFKA_CONFIG_DIR", "").strip()
    if not path:
        return {}
    if not os.path.isdir(path):
        raise UsageError(f"$PYGOKA_KAFKA_CONFIG_DIR is not a directory: '{path}'")
    settings: dict[str, str] = {}
    for name in sorted(os.listdir(path)):
        file = os.path.join(path, name)
        # A mounted Secret also holds ..data and ..<timestamp> entries (symlink plumbing): skip hidden names.
        if name.startswith(".") or not os.path.isfile(file):
            continue
        with open(file, encoding="utf-8") as handle:
            settings[name] = handle.read().strip()
    log.info("Kafka settings from %s: %s", path, ", ".join(settings) or "none")
    return settings


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """add_connection_flags adds --brokers and --python-path, shared by run, topics and demo."""
    parser.add_argument("--brokers", default=None, help="Kafka bootstrap servers (default $PYGOKA_BROKERS; required)")
    parser.add_argument("--python-path", action="append", default=[], metavar="DIR",
                        help="directory added to sys.path before importing MODULE (repeatable; default: .)")


def brokers_of(args: argparse.Namespace) -> str:
    """brokers_of is --brokers or $PYGOKA_BROKERS; missing both is a usage error."""
    brokers = args.brokers or os.environ.get("PYGOKA_BROKERS", "").strip()
    if not brokers:
        raise UsageError("no Kafka brokers: pass --brokers or set PYGOKA_BROKERS")
    return str(brokers)


def register(commands: Any) -> None:
    """register adds the run subcommand."""
    parser = commands.add_parser("run", help="run a processor group or view until SIGTERM",
                                 description="Run the processor group or view MODULE:ATTR names (or --view TABLE).")
    parser.add_argument("target", nargs="?", metavar="MODULE:ATTR",
                        help="a GroupGraph, ViewSpec, or zero-argument callable returning a GroupGraph/Processor/View")
    parser.add_argument("--view", metavar="TABLE", help="serve TABLE with a View instead of running MODULE:ATTR")
    parser.add_argument("--codec", default="bytes", help="codec of --view's values: int64, string, json, bytes")
    add_connection_flags(parser)
    parser.add_argument("--state-dir", default=None, help="local state directory (default $PYGOKA_STATE_DIR)")
    parser.add_argument("--instance-id", default=None,
                        help="static group membership id, e.g. the pod name (default $PYGOKA_INSTANCE_ID)")
    parser.add_argument("--partitions", type=int, default=None,
                        help="partition count topics are created with (default $PYGOKA_PARTITIONS)")
    parser.add_argument("--hot-standby", action="store_true", default=None,
                        help="keep every table partition up to date (default $PYGOKA_HOT_STANDBY)")
    parser.add_argument("--http-port", type=int, default=None,
                        help="monitoring/query HTTP port (default $PYGOKA_HTTP_PORT or 8080; 0 disables)")
    parser.add_argument("--http-host", default=None, help="HTTP address (default $PYGOKA_HTTP_HOST or 0.0.0.0)")
    parser.add_argument("--query-port", type=int, default=None,
                        help="serve the table query API only on this port (default $PYGOKA_QUERY_PORT; "
                             "unset: on --http-port)")
    parser.add_argument("--query-host", default=None,
                        help="address of --query-port (default $PYGOKA_QUERY_HOST or --http-host)")
    parser.add_argument("--guarantee", choices=GUARANTEES, default=None,
                        help="delivery guarantee (default $PYGOKA_GUARANTEE or at_least_once)")
    parser.add_argument("--max-outage", type=float, default=None, metavar="SECONDS",
                        help="how long Kafka may be unreachable with work pending before the processor "
                             "fails (default $PYGOKA_MAX_OUTAGE or 300)")
    parser.add_argument("--consumer-config", action="append", default=[], metavar="KEY=VALUE",
                        help="librdkafka consumer setting (repeatable)")
    parser.add_argument("--producer-config", action="append", default=[], metavar="KEY=VALUE",
                        help="librdkafka producer setting (repeatable)")
    parser.add_argument("--log-level", default=None, help="logging level (default $PYGOKA_LOG_LEVEL or INFO)")
    parser.set_defaults(handler=handle)


def configure_logging(level: str | None) -> None:
    """configure_logging logs to stderr at level (a name like INFO or DEBUG)."""
    name = (level or os.environ.get("PYGOKA_LOG_LEVEL") or "INFO").upper()
    if not isinstance(logging.getLevelName(name), int):
        raise UsageError(f"unknown log level '{name}'")
    logging.basicConfig(level=name, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def build(args: argparse.Namespace) -> Processor | View:
    """build makes the Processor or View that args describe."""
    if (args.view is None) == (args.target is None):
        raise UsageError("run needs exactly one of MODULE:ATTR or --view TABLE")
    brokers = brokers_of(args)
    state_dir = args.state_dir or os.environ.get("PYGOKA_STATE_DIR") or None
    # The files apply to consumers and producers alike (admin clients take their connection settings from the
    # consumer config); explicit flags win.
    shared = config_dir_settings()
    consumer_config = {**shared, **parse_config(args.consumer_config, "--consumer-config")}
    producer_config = {**shared, **parse_config(args.producer_config, "--producer-config")}
    target: Target
    if args.view is not None:
        target = ViewSpec(args.view, codec_by_name(args.codec))
    else:
        add_python_path(args.python_path)
        target = load_target(args.target)
    if isinstance(target, GroupGraph):
        hot_standby = args.hot_standby if args.hot_standby is not None else env_flag("PYGOKA_HOT_STANDBY")
        options: dict[str, Any] = {
            "state_dir": state_dir,
            "group_instance_id": args.instance_id or os.environ.get("PYGOKA_INSTANCE_ID") or None,
            "partitions": args.partitions if args.partitions is not None else env_int("PYGOKA_PARTITIONS", None),
            "hot_standby": hot_standby,
            "consumer_config": consumer_config,
            "producer_config": producer_config,
            "guarantee": guarantee_of(args),
        }
        max_outage = args.max_outage if args.max_outage is not None else env_float("PYGOKA_MAX_OUTAGE")
        if max_outage is not None:
            options["max_outage"] = max_outage
        return Processor(brokers, target, **options)
    if isinstance(target, ViewSpec):
        view_options: dict[str, Any] = {"state_dir": state_dir, "consumer_config": consumer_config,
                                        **target.options}
        return View(brokers, target.table, target.codec, **view_options)
    # A Processor or View built by the user's callable keeps its own configuration.
    return target


def start_http(args: argparse.Namespace, target: Processor | View) -> Any:
    """start_http starts pygoka.web.MonitorServer for target, or returns None when --http-port is 0."""
    port = args.http_port if args.http_port is not None else env_int("PYGOKA_HTTP_PORT", 8080)
    if port == 0:
        return None
    host = args.http_host or os.environ.get("PYGOKA_HTTP_HOST") or "0.0.0.0"
    query_port = args.query_port if args.query_port is not None else env_int("PYGOKA_QUERY_PORT", None)
    query_host = args.query_host or os.environ.get("PYGOKA_QUERY_HOST") or None
    try:
        # Imported lazily: the web server is only needed when serving, and pulls in its own dependencies.
        web = importlib.import_module("pygoka.web")
    except ImportError as exc:
        raise UsageError(f"the HTTP server (pygoka.web) is not available ({exc}); use --http-port 0") from exc
    server = web.MonitorServer(host=host, port=port, query_port=query_port, query_host=query_host)
    if isinstance(target, Processor):
        server.attach_processor(target)
    else:
        server.attach_view(target)
    server.start()
    log.info("HTTP server listening on %s (table queries on %s)", server.url, server.query_url)
    return server


def install_signal_handlers(target: Processor | View) -> threading.Event:
    """install_signal_handlers makes SIGTERM/SIGINT stop target; run() then commits, closes and returns."""
    stopping = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return stopping

    def handle(signum: int, frame: Any) -> None:
        log.info("signal %d received, stopping", signum)
        stopping.set()
        target.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handle)
    return stopping


def handle(args: argparse.Namespace) -> int:
    """handle runs the processor or view until it stops and returns the exit code."""
    configure_logging(args.log_level)
    try:
        target = build(args)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a user module's errors are reported with their exit code
        return report(exc, code_for(exc) if code_for(exc) != 1 else USAGE)
    stopping = install_signal_handlers(target)
    server = start_http(args, target)
    try:
        # run() forgets a stop() that came before it, so a signal received while starting is checked here.
        if not stopping.is_set():
            target.run()
    except Exception as exc:  # noqa: BLE001 - every failure becomes an exit code
        return report(exc, code_for(exc))
    finally:
        if server is not None:
            server.stop()
    log.info("stopped cleanly")
    return OK


def report(error: BaseException, code: int) -> int:
    """report prints error (ProcessingError names topic, partition and offset) and returns code."""
    print(f"pygoka: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
    cause = error.__cause__
    if cause is not None:
        print(f"pygoka: caused by {type(cause).__name__}: {cause}", file=sys.stderr, flush=True)
    return code
