"""`keras-sage dashboard PROJECT_DIR` and `keras-sage export PROJECT_DIR -o trials.csv`: watch a search, or
take every trial away as a table.

```
keras-sage dashboard PROJECT_DIR [--host 127.0.0.1] [--port 8080]   # optuna-dashboard, read-only
keras-sage export PROJECT_DIR -o trials.csv|trials.jsonl            # one row per trial
```

The dashboard opens the search's optuna journal (`project_files.search_journal`: the optuna oracles'
study, or the mirror any other oracle writes) through a journal backend that refuses every write, so it
may run during the search or after it and never changes the project. optuna-dashboard is an optional
extra: `pip install "keras-sage[dashboard]"`.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any

from keras_sage import project_files

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def add_commands(commands: Any) -> None:
    """Adds `dashboard` and `export` to the `keras-sage` subcommands (`argparse` subparsers)."""
    dashboard = commands.add_parser(
        "dashboard",
        help="watch a search in optuna-dashboard (read-only), during or after it",
        description="Serves optuna-dashboard on the search's optuna journal: the study of the TPE and "
        "optuna oracles, or the mirror every other oracle writes after each trial. Nothing in the project "
        "directory is changed. Ctrl-C stops it.",
    )
    dashboard.add_argument("project_dir", metavar="PROJECT_DIR", help="a search's project directory")
    dashboard.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to serve on (default: {DEFAULT_HOST})"
    )
    dashboard.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    dashboard.set_defaults(handler=_dashboard)

    export = commands.add_parser(
        "export",
        help="write every trial of a search (hyperparameters and metrics) to CSV or JSON Lines",
        description="One row per trial: status, score, P, TG, each S_i, params, FLOPs, examples, teacher "
        "version, mature accuracy if reranked, why it failed, a NAS-Bench-201 cell's arch string, and its "
        "hyperparameters as hp.<name>.",
    )
    export.add_argument("project_dir", metavar="PROJECT_DIR", help="a search's project directory")
    export.add_argument(
        "-o", "--output", required=True, metavar="TRIALS.csv|TRIALS.jsonl", help="the file to write"
    )
    export.set_defaults(handler=_export)


def search_journal_or_error(project_dir: str | Path) -> Path:
    """The optuna journal of the search in `project_dir`.

    Raises:
        FileNotFoundError: There is no such directory, or it holds no search journal.
    """
    directory = Path(project_dir)
    if not directory.is_dir():
        raise FileNotFoundError(f"no project directory at {directory}")
    journal = project_files.search_journal(directory)
    if journal is None:
        raise FileNotFoundError(
            f"{directory} holds no search to show: no {project_files.JOURNAL_FILE} and no "
            f"{project_files.MIRROR_JOURNAL_FILE} (a search writes one after its first trial)"
        )
    return journal


def check_port_free(host: str, port: int) -> None:
    """Refuses a port that another program already listens on.

    Raises:
        OSError: The address cannot be bound, naming it.
    """
    if not 0 < port < 65536:
        raise ValueError(f"--port must be between 1 and 65535, got {port}")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise OSError(error.errno, f"cannot serve on {host}:{port}: {error.strerror}") from None


def read_only_storage(journal: Path) -> Any:
    """An optuna storage that reads the journal file and refuses to write it."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import BaseJournalBackend, JournalFileBackend

    class ReadOnlyJournal(BaseJournalBackend):
        def __init__(self) -> None:
            self._file = JournalFileBackend(str(journal))

        def read_logs(self, log_number_from: int) -> Any:
            return self._file.read_logs(log_number_from)

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            raise PermissionError(f"{journal} is opened read-only by keras-sage dashboard")

    return JournalStorage(ReadOnlyJournal())


def _dashboard(args: argparse.Namespace) -> None:
    journal = search_journal_or_error(args.project_dir)
    try:
        import optuna_dashboard
    except ImportError:
        raise ValueError(
            'keras-sage dashboard needs optuna-dashboard: pip install "keras-sage[dashboard]"'
        ) from None
    check_port_free(args.host, args.port)
    storage = read_only_storage(journal)
    print(f"optuna-dashboard of {journal} (read-only) on http://{args.host}:{args.port}/ ; Ctrl-C stops it")
    sys.stdout.flush()
    try:
        optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    except KeyboardInterrupt:
        return


def _export(args: argparse.Namespace) -> None:
    from keras_sage.analysis.export import export_trials

    count = export_trials(args.project_dir, args.output)
    print(f"wrote {count} trials to {args.output}")
