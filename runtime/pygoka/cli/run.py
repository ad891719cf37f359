"""`pygoka run`: the entrypoint of a processor or view pod, configured by flags and PYGOKA_* variables."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from pygoka.cli.exit_codes import OK, USAGE, code_for
from pygoka.cli.loading import (
    RunConfig,
    Target,
    UsageError,
    ViewSpec,
    add_python_path,
    codec_by_name,
    load_target,
)
from pygoka.cli.options import add_option_flags, resolve_options
from pygoka.cli.scale_in import in_cluster_scale_in
from pygoka.graph import GroupGraph
from pygoka.logs import LOG_FORMATS, configure_logging
from pygoka.processor import Processor
from pygoka.topology import Topology, differences
from pygoka.view import View

log = logging.getLogger("pygoka.cli")


def env_int(name: str, default: int | None) -> int | None:
    """env_int reads an integer environment variable, raising UsageError when it is not one."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"${name} must be an integer, not '{raw}'") from None


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
                        help="a GroupGraph, ViewSpec, or a callable (of nothing or a RunConfig) returning one, "
                             "a Processor or a View")
    parser.add_argument("--view", metavar="TABLE", help="serve TABLE with a View instead of running MODULE:ATTR")
    parser.add_argument("--codec", default="bytes", help="codec of --view's values: int64, string, json, bytes")
    add_connection_flags(parser)
    parser.add_argument("--http-port", type=int, default=None,
                        help="monitoring/query HTTP port (default $PYGOKA_HTTP_PORT or 8080; 0 disables)")
    parser.add_argument("--http-host", default=None, help="HTTP address (default $PYGOKA_HTTP_HOST or 0.0.0.0)")
    parser.add_argument("--query-port", type=int, default=None,
                        help="serve the table query API only on this port (default $PYGOKA_QUERY_PORT; "
                             "unset: on --http-port)")
    parser.add_argument("--query-host", default=None,
                        help="address of --query-port (default $PYGOKA_QUERY_HOST or --http-host)")
    parser.add_argument("--expect-topology", default=None, metavar="JSON",
                        help="refuse to start unless the group's code has these topology fields "
                             "(default $PYGOKA_EXPECTED_TOPOLOGY; the operator sets it)")
    parser.add_argument("--log-level", default=None, help="logging level (default $PYGOKA_LOG_LEVEL or INFO)")
    parser.add_argument("--log-format", default=None, choices=LOG_FORMATS,
                        help="text, or json: one object per line (default $PYGOKA_LOG_FORMAT or text)")
    add_option_flags(parser)
    parser.set_defaults(handler=handle)


def setup_logging(args: argparse.Namespace) -> None:
    """setup_logging applies --log-level/$PYGOKA_LOG_LEVEL and --log-format/$PYGOKA_LOG_FORMAT."""
    level = args.log_level or os.environ.get("PYGOKA_LOG_LEVEL", "").strip() or "INFO"
    log_format = args.log_format or os.environ.get("PYGOKA_LOG_FORMAT", "").strip() or "text"
    try:
        configure_logging(level, log_format)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def build(args: argparse.Namespace) -> Processor | View:
    """build makes the Processor or View that args describe."""
    if (args.view is None) == (args.target is None):
        raise UsageError("run needs exactly one of MODULE:ATTR or --view TABLE")
    kafka = config_dir_settings()
    options = resolve_options(args, os.environ, kafka)
    leaving = in_cluster_scale_in(options.get("group_instance_id"))
    if leaving is not None:
        options["leaving"] = leaving
    config = RunConfig(brokers_of(args), options, kafka)
    target: Target
    if args.view is not None:
        target = ViewSpec(args.view, codec_by_name(args.codec))
    else:
        add_python_path(args.python_path)
        target = load_target(args.target, config)
    check_topology(target, args.expect_topology or os.environ.get("PYGOKA_EXPECTED_TOPOLOGY", "").strip())
    if isinstance(target, GroupGraph):
        return config.processor(target)
    if isinstance(target, ViewSpec):
        return config.view(target.table, target.codec, **target.options)
    # A Processor or View built by the user's callable keeps its own configuration (a factory taking the
    # RunConfig passes the resolved options on itself).
    return target


def check_topology(target: Target, expected: str) -> None:
    """check_topology refuses (UsageError naming each field and both values) a group whose code contradicts the
    expected topology: the fields of a JSON object as a ProcessorGroup spec names them (what the operator sets)."""
    graph = target if isinstance(target, GroupGraph) else target.graph if isinstance(target, Processor) else None
    if not expected or graph is None:
        return
    try:
        declared = json.loads(expected)
    except json.JSONDecodeError as exc:
        raise UsageError(f"$PYGOKA_EXPECTED_TOPOLOGY is not JSON: {exc}") from None
    if not isinstance(declared, dict):
        raise UsageError("$PYGOKA_EXPECTED_TOPOLOGY must be a JSON object of topology fields")
    found = differences(declared, Topology.from_graph(graph))
    if found:
        raise UsageError("the group's code contradicts its ProcessorGroup: " +
                         "; ".join(difference.message("spec", "the code") for difference in found))


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
    setup_logging(args)
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
