"""`keras-sage search CONFIG.toml [--workers N]`, `keras-sage worker CONFIG.toml --chief HOST:PORT` and
`keras-sage probe CONFIG.toml -o PROBE.npz`.

A search runs in this process; with `--workers N` this process is KerasTuner's chief (the oracle, over
gRPC on `--host`:`--port`) and starts N worker processes on this machine; `--workers 0` starts only the
chief, for workers on other machines (`keras-sage worker` with the same config). Workers are KerasTuner's:
they find the chief through `KERASTUNER_ORACLE_IP`/`KERASTUNER_ORACLE_PORT` and name themselves with
`KERASTUNER_TUNER_ID`, which these commands set.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from keras_sage import contract, project_files
from keras_sage._errors import first_line
from keras_sage.project_files import CHIEF_TUNER_ID
from keras_sage.project_lock import lock_project

# KerasTuner's distributed mode reads these.
TUNER_ID_VARIABLE = "KERASTUNER_TUNER_ID"
ORACLE_IP_VARIABLE = "KERASTUNER_ORACLE_IP"
ORACLE_PORT_VARIABLE = "KERASTUNER_ORACLE_PORT"
DEFAULT_HOST = "127.0.0.1"
# How long a worker waits for its chief to answer, and how long the chief waits for its local workers to
# exit once the search is over, in seconds.
DEFAULT_CHIEF_WAIT = 120.0
WORKER_EXIT_WAIT = 60.0
# Rows of the results table.
RESULTS_ROWS = 10
# --trials-per-process gives up after this many processes in a row died without ending a trial.
MAX_CRASHES_IN_A_ROW = 3


def add_commands(commands: Any) -> None:
    """Adds `search`, `worker` and `probe` to the `keras-sage` subcommands."""
    search = commands.add_parser(
        "search",
        help="run a search from a TOML config",
        description="Runs the search a TOML config describes ([search], [data], [hypermodel], [teacher], "
        "[oracle]; see keras_sage.search_config), prints one line per trial, then the results and the "
        "cost. A search whose project directory exists resumes, unless [search] overwrite = true.",
    )
    search.add_argument("config", metavar="CONFIG.toml", help="the search config")
    search.add_argument(
        "--workers",
        type=_non_negative_int,
        metavar="N",
        help="run as KerasTuner's chief and start N worker processes on this machine (0: only the chief, "
        "for `keras-sage worker` on other machines)",
    )
    search.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"with --workers: the address the chief listens on (default: {DEFAULT_HOST}; 0.0.0.0 for "
        "workers on other machines)",
    )
    search.add_argument("--port", type=_port, help="with --workers: the chief's port (default: a free port)")
    search.add_argument(
        "--trials-per-process",
        type=_positive_int,
        metavar="K",
        help="run the search in a series of fresh processes of K trials each (each resumes the project): "
        "memory that a long search in one process accumulates is returned every K trials, and a process "
        "that crashes is replaced",
    )
    # Set by --trials-per-process on the processes it starts.
    search.add_argument("--stop-after", type=_positive_int, help=argparse.SUPPRESS)
    search.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)
    _add_verbosity(search)
    search.set_defaults(handler=_search)

    worker = commands.add_parser(
        "worker",
        help="join a search's chief as one more worker",
        description="Runs trials for the chief at HOST:PORT (started by `keras-sage search CONFIG.toml "
        "--workers N --host 0.0.0.0 --port PORT`), from the same config.",
    )
    worker.add_argument("config", metavar="CONFIG.toml", help="the search config (the chief's)")
    worker.add_argument("--chief", required=True, type=_address, metavar="HOST:PORT", help="the chief")
    worker.add_argument(
        "--tuner-id",
        help="this worker's name, unique in the search (default: tuner-HOSTNAME-PID)",
    )
    worker.add_argument(
        "--wait",
        type=_seconds,
        default=DEFAULT_CHIEF_WAIT,
        metavar="SECONDS",
        help=f"how long to wait for the chief to answer (default: {DEFAULT_CHIEF_WAIT:g})",
    )
    _add_verbosity(worker)
    worker.set_defaults(handler=_worker)

    probe = commands.add_parser(
        "probe",
        help="write the probe set a config's data gives, for `teacher register`",
        description="Loads the config's [data] and writes its probe images and labels to an .npz, the "
        "probe set to register the teacher on (`keras-sage teacher register MODEL --probe PROBE.npz`).",
    )
    probe.add_argument("config", metavar="CONFIG.toml", help="the search config")
    probe.add_argument("-o", "--output", required=True, metavar="PROBE.npz", help="the .npz to write")
    probe.set_defaults(handler=_probe)


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="print only the results and errors")
    group.add_argument(
        "-v", "--verbose", action="store_true", help="also each trial's own score, time and hyperparameters"
    )


def _verbosity(args: argparse.Namespace) -> int:
    return 0 if args.quiet else 2 if args.verbose else 1


# The commands.


def _search(args: argparse.Namespace) -> None:
    from keras_sage.search_config import load_search_config

    config = load_search_config(args.config)
    if args.workers is not None:
        if args.trials_per_process:
            raise ValueError(
                "--trials-per-process runs a search on one machine; it does not go with --workers"
            )
        _run_chief(config, args)
        return
    if args.trials_per_process:
        _run_in_processes(config, args)
        return
    overrides = {"overwrite": False} if args.resume else {}
    with _locked(config.project_dir):
        import_tensorflow_quietly()
        tuner, data = _build(config, _verbosity(args), tuner_id=None, **overrides)
        if args.stop_after:
            # This process runs `stop_after` trials more, then stops as if the search had ended.
            tuner.oracle.max_trials = min(tuner.oracle.max_trials, len(tuner.oracle.trials) + args.stop_after)
        tuner.search(*data.fit_args, **data.fit_kwargs, verbose=0)
    if not args.stop_after:
        _print_results(config.project_dir)
        _check_some_trial_completed(tuner.oracle)


@contextlib.contextmanager
def _locked(project_dir: Path) -> Iterator[None]:
    """Holds the project's lock (`keras_sage.project_lock`) from before TensorFlow starts: a second
    search of the project is refused in a second, in one line, naming the first."""
    lock = lock_project(project_dir)
    try:
        yield
    finally:
        lock.release()


def _run_in_processes(config: Any, args: argparse.Namespace) -> None:
    """Runs the search in fresh processes of `args.trials_per_process` trials each, until it has ended.

    A process that dies of a signal (a crash) is replaced; the next one resumes the project. The search
    has ended when `max_trials` trials have ended or a process ends without running any trial (the oracle
    stopped: the space is exhausted).
    """
    import signal

    verbosity = ["--quiet"] if args.quiet else ["--verbose"] if args.verbose else []
    command = [sys.executable, "-m", "keras_sage.cli", "search", str(config.path), *verbosity]
    command += ["--stop-after", str(args.trials_per_process)]
    resume: list[str] = []
    crashes_in_a_row = 0
    while True:
        before = _ended_trials(config.project_dir)
        status = subprocess.call([*command, *resume])
        resume = ["--resume"]
        after = _ended_trials(config.project_dir)
        if status < 0:
            crashes_in_a_row = 0 if after > before else crashes_in_a_row + 1
            signal_name = signal.Signals(-status).name
            if crashes_in_a_row >= MAX_CRASHES_IN_A_ROW:
                raise RuntimeError(
                    f"the search process died {crashes_in_a_row} times in a row without ending a trial "
                    f"(last: {signal_name}); see the last trial's folder in {config.project_dir}"
                )
            if _verbosity(args):
                print(f"the search process died ({signal_name}); a new one resumes the search", flush=True)
            continue
        if status != 0:
            raise SystemExit(status)
        if after >= config.search["max_trials"] or after == before:
            break
    _print_results(config.project_dir)
    from keras_sage.analysis import project_records
    from keras_sage.tuners.failures import check_some_outcome_completed

    records = project_records(config.project_dir).records
    check_some_outcome_completed([(record.status, record.message) for record in records])


def _ended_trials(project_dir: Path) -> int:
    """How many trials of the project have ended (completed or failed), from their `trial.json`."""
    ended = 0
    for path in project_files.trial_files(project_dir).values():
        status = project_files.read_json(path).get("status")
        ended += status in ("COMPLETED", "FAILED", "INVALID")
    return ended


def _run_chief(config: Any, args: argparse.Namespace) -> None:
    """Runs the chief in this process and `args.workers` workers as child processes."""
    with _locked(config.project_dir):
        oracle = _run_locked_chief(config, args)
    _print_results(config.project_dir)
    _check_some_trial_completed(oracle)


def _check_some_trial_completed(oracle: Any) -> None:
    """Exit status 1, with the most common cause, for a search in which every trial failed."""
    from keras_sage.tuners.failures import check_some_trial_completed

    check_some_trial_completed(oracle)


def _run_locked_chief(config: Any, args: argparse.Namespace) -> Any:
    """The chief's part of `_run_chief`, the project locked; returns the chief's oracle."""
    port = args.port if args.port is not None else _free_port(args.host)
    _check_port_free(args.host, port)
    os.environ.update(
        {TUNER_ID_VARIABLE: CHIEF_TUNER_ID, ORACLE_IP_VARIABLE: args.host, ORACLE_PORT_VARIABLE: str(port)}
    )
    import_tensorflow_quietly()
    tuner, data = _build(config, 0, tuner_id=CHIEF_TUNER_ID)
    connect_host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "[::]") else args.host
    if _verbosity(args):
        print(
            f"chief listening on {args.host}:{port}; workers join with: keras-sage worker {args.config} "
            f"--chief {connect_host}:{port}",
            flush=True,
        )
    worker_environment = {
        name: value
        for name, value in os.environ.items()
        if name not in (TUNER_ID_VARIABLE, ORACLE_IP_VARIABLE, ORACLE_PORT_VARIABLE)
    }
    verbosity = ["--quiet"] if args.quiet else ["--verbose"] if args.verbose else []
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "keras_sage.cli",
                "worker",
                str(config.path),
                "--chief",
                f"{connect_host}:{port}",
                "--tuner-id",
                f"tuner{index}",
                *verbosity,
            ],
            env=worker_environment,
        )
        for index in range(1, args.workers + 1)
    ]
    try:
        tuner.search(*data.fit_args, **data.fit_kwargs, verbose=0)
    finally:
        _stop(workers)
    return tuner.oracle


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    """Waits for the local workers to exit, then ends any still running."""
    deadline = time.monotonic() + WORKER_EXIT_WAIT
    for worker in workers:
        try:
            worker.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.terminate()
            worker.wait()


def _worker(args: argparse.Namespace) -> None:
    from keras_sage.search_config import load_search_config

    config = load_search_config(args.config)
    host, port = args.chief
    _wait_for_chief(host, port, args.wait)
    tuner_id = args.tuner_id or f"tuner-{socket.gethostname()}-{os.getpid()}"
    if CHIEF_TUNER_ID in tuner_id:
        raise ValueError(f"--tuner-id {tuner_id!r}: a worker's name must not contain {CHIEF_TUNER_ID!r}")
    os.environ.update(
        {TUNER_ID_VARIABLE: tuner_id, ORACLE_IP_VARIABLE: host, ORACLE_PORT_VARIABLE: str(port)}
    )
    import_tensorflow_quietly()
    tuner, data = _build(config, _verbosity(args), tuner_id=tuner_id)
    tuner.search(*data.fit_args, **data.fit_kwargs, verbose=0)


def _probe(args: argparse.Namespace) -> None:
    from keras_sage.cli.probe_file import save_probe
    from keras_sage.search_config import load_search_config, load_search_data
    from keras_sage.teachers import probe_fingerprint

    config = load_search_config(args.config)
    import_tensorflow_quietly()
    data = load_search_data(config)
    save_probe(args.output, data.probe_images, data.probe_labels)
    shape = tuple(data.probe_images.shape[1:])
    fingerprint = probe_fingerprint(data.probe_images, data.probe_labels)
    count = len(data.probe_images)
    print(f"wrote {args.output}: {count} probe images, shape {shape}, fingerprint {fingerprint[:12]}")


# Building the tuner.


def _build(config: Any, verbosity: int, tuner_id: str | None, **overrides: Any) -> tuple[Any, Any]:
    """The config's data and its tuner; a worker never overwrites the chief's project directory."""
    from keras_sage.cli.progress import ProgressTuner
    from keras_sage.search_config import build_tuner, load_search_data

    data = load_search_data(config)
    if tuner_id is not None and tuner_id != CHIEF_TUNER_ID:
        overrides["overwrite"] = False
    prefix = "" if tuner_id is None else f"[{tuner_id}] "
    tuner = build_tuner(
        config,
        data,
        ProgressTuner,
        verbosity=verbosity,
        prefix=prefix,
        total_trials=config.search["max_trials"],
        **overrides,
    )
    return tuner, data


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and Keras with stderr's descriptor sent to /dev/null meanwhile: TensorFlow's C++
    start-up lines (absl's "All log messages before absl::InitializeLog()", oneDNN, CPU features), which
    `TF_CPP_MIN_LOG_LEVEL` no longer silences, never come before a command's one-line error. An error of
    the import itself is raised as usual, after stderr is restored."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import keras  # noqa: F401  (imports TensorFlow, its backend)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


# The results.


def _print_results(project_dir: Path) -> None:
    """The best trials of the project, the failed ones counted, and the cost in examples processed."""
    from keras_sage.analysis import format_table, project_records

    records = project_records(project_dir).records
    completed = sorted(
        (record for record in records if record.status == "COMPLETED"), key=lambda record: -record.score
    )
    rows = [
        {
            "trial": record.trial_id,
            contract.SCORE: record.score,
            "P": record.premature_accuracy,
            "TG": record.teacher_guidance,
            "params": record.params if math.isnan(record.params) else int(record.params),
        }
        for record in completed[:RESULTS_ROWS]
    ]
    failed = len(records) - len(completed)
    print(f"\nresults in {project_dir}: {len(completed)} completed, {failed} failed")
    if rows:
        print(format_table(rows))
    print(f"cost: {_examples_processed(project_dir):,} examples processed by SGD (M1·E1 + M2·E2)")


def _examples_processed(project_dir: Path) -> int:
    """M1·E1 + M2·E2 (and a teacher schedule's training) summed over every process of the project."""
    states = project_files.tuner_states(project_dir)
    keys = (project_files.SEARCH_EXAMPLES, project_files.RERANK_EXAMPLES, project_files.BOOTSTRAP_EXAMPLES)
    return sum(project_files.summed_examples(states, key) for key in keys)


# Addresses.


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _check_port_free(host: str, port: int) -> None:
    """Refuses a port another live process listens on; a port left in TIME_WAIT by a chief that just
    died is free, as for the chief's gRPC server, which binds with SO_REUSEADDR too."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise OSError(
                f"port {port} on {host} is in use or cannot be bound ({first_line(error)}); "
                "choose another with --port, or leave --port out for a free one"
            ) from None


def _wait_for_chief(host: str, port: int, wait: float) -> None:
    """Returns once something accepts connections at host:port; raises after `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(5.0, max(wait, 0.1))):
                return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise ConnectionError(
                    f"no chief answers at {host}:{port} (waited {wait:g} s: {first_line(error)}); start it "
                    f"first with `keras-sage search CONFIG.toml --workers 0 --host 0.0.0.0 --port {port}`"
                ) from None
            time.sleep(0.5)


def _address(text: str) -> tuple[str, int]:
    host, separator, port = text.rpartition(":")
    if not separator or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, _port(port)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 1 and 65535, got {port}")
    return port


def _integer_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse `type` that reads an integer of at least `minimum`, `what` naming it in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    """An argparse `type` that reads a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive, finite number of seconds, got {text!r}")
    return value


_positive_int = _integer_at_least(1, "a positive integer")
_non_negative_int = _integer_at_least(0, "a number of workers (0 or more)")
