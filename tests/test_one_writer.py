"""Nothing a search has finished is ever overwritten (issue 21): one writer per project (the project lock),
one project in any mode (single process, `--workers N`, a script), one config per search (the handshake).

Real `keras-sage` processes and real `kill -9` on the tiny digits config of `test_cli_search` (8×8 images,
3 SGD steps per candidate).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from distributed_harness import free_port
from test_cli_search import PROBE_SIZE, USER_SPACE, user_space_config, write_config, write_teacher

from keras_sage.cli import main
from keras_sage.datasets import digits
from keras_sage.project_files import JOURNAL_FILE, LOCK_FILE, PROJECT_RECORD_FILE
from keras_sage.project_lock import ProjectLockedError, lock_project

REPOSITORY = Path(__file__).resolve().parents[1]
ENVIRONMENT = {**os.environ, "PYTHONPATH": str(REPOSITORY), "TF_CPP_MIN_LOG_LEVEL": "3"}
HOLD_LOCK = (
    "import sys, time\n"
    "from keras_sage.project_lock import lock_project\n"
    "lock_project(sys.argv[1])\n"
    "print('locked', flush=True)\n"
    "time.sleep(120)\n"
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("one_writer")
    data = digits(image_size=8, probe_size=PROBE_SIZE)
    write_teacher(folder / "teacher.h5", data.x_probe, data.y_probe)
    return folder


@pytest.fixture
def user_space(folder, monkeypatch):
    """A user's hypermodel module, `user_space.Space` (see `test_cli_search`), importable from the config."""
    (folder / "user_space.py").write_text(USER_SPACE)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def keras_sage(*arguments: str, **environment: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "keras_sage.cli", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENVIRONMENT, **environment},
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"{process.args} ran past {timeout} s:\n{out}\n{err}") from None
    return process.returncode, out, err


def keras_sage_lines(err: str) -> str:
    """What keras-sage printed on stderr, without TensorFlow's start-up lines (absl prints them before
    TF_CPP_MIN_LOG_LEVEL applies)."""
    noise = ("WARNING: All log messages before absl", "I0000 ", "To enable the following instructions")
    return "".join(line for line in err.splitlines(keepends=True) if not line.startswith(noise))


def trial_bytes(project: Path) -> dict[str, bytes]:
    return {path.parent.name: path.read_bytes() for path in sorted(project.glob("trial_*/trial.json"))}


def examples_processed(project: Path) -> int:
    return sum(
        json.loads(path.read_text()).get("search_examples", 0)
        for path in project.glob("*.json")
        if path.name != PROJECT_RECORD_FILE and path.name != "oracle.json"
    )


def study_states(project: Path) -> list[str]:
    backend = optuna.storages.journal.JournalFileBackend(str(project / JOURNAL_FILE))
    study = optuna.load_study(study_name="keras-sage", storage=optuna.storages.JournalStorage(backend))
    return [trial.state.name for trial in study.trials]


# The lock.


def test_a_locked_project_is_refused_naming_the_holder_and_kill_9_frees_it(tmp_path):
    project = tmp_path / "p"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(project)], stdout=subprocess.PIPE, text=True, env=ENVIRONMENT
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(ProjectLockedError) as refused:
            lock_project(project)
        message = str(refused.value)
        assert "\n" not in message
        assert f"pid {holder.pid}" in message and f"host {socket.gethostname()}" in message
        assert "started 20" in message
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        start = time.monotonic()
        lock = lock_project(project)  # The kernel released the dead process's lock: no stale lock.
        assert time.monotonic() - start < 1
        assert json.loads((project / LOCK_FILE).read_text())["pid"] == os.getpid()
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_holds_of_one_process_share_the_lock_until_the_last_is_released(tmp_path):
    project = tmp_path / "p"
    first, second = lock_project(project), lock_project(project)
    first.release()
    first.release()  # A second release of the same hold gives nothing up.
    refused = subprocess.run(
        [sys.executable, "-c", HOLD_LOCK, str(project)], capture_output=True, text=True, env=ENVIRONMENT
    )
    assert refused.returncode == 1 and f"pid {os.getpid()}" in refused.stderr.splitlines()[-1]
    second.release()
    first.acquire()
    assert first.held
    first.release()


def test_a_read_only_directory_is_one_line_naming_it(tmp_path):
    tmp_path.chmod(0o555)
    try:
        if os.access(tmp_path, os.W_OK):
            pytest.skip("running as a user who may write anywhere")
        with pytest.raises(PermissionError, match=f"cannot write in the project directory {tmp_path}/p "):
            lock_project(tmp_path / "p")
    finally:
        tmp_path.chmod(0o755)


@pytest.mark.slow
def test_two_searches_of_one_project_the_second_exits_2_the_first_runs_every_trial_once(folder):
    config = write_config(folder, "twice", max_trials=4)
    project = folder / "searches" / "twice"
    first = keras_sage("search", str(config), "-q")
    deadline = time.monotonic() + 120
    while not (project / LOCK_FILE).exists() or str(first.pid) not in (project / LOCK_FILE).read_text():
        assert first.poll() is None and time.monotonic() < deadline, finish(first)
        time.sleep(0.05)
    start = time.monotonic()
    status, _, err = finish(keras_sage("search", str(config), "-q"))
    assert time.monotonic() - start < 10
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith(
        f"keras-sage: error: the project {project} is being searched by another process (host "
    ), err
    assert f"pid {first.pid}, started " in err
    status, out, err = finish(first)
    assert status == 0, err
    states = [json.loads(text) for text in trial_bytes(project).values()]
    assert [state["status"] for state in states] == ["COMPLETED"] * 4
    assert examples_processed(project) == 4 * 3 * 32  # Every trial trained once: 3 steps of 32 examples.
    assert study_states(project) == ["COMPLETE"] * 4  # None left RUNNING.
    assert "4 completed, 0 failed" in out


# One project, any mode.


@pytest.mark.slow
def test_a_workers_project_reopened_single_process_trains_nothing_and_rewrites_nothing(folder, capsys):
    config = write_config(folder, "workers_then_single", max_trials=4)
    project = folder / "searches" / "workers_then_single"
    status, out, err = finish(keras_sage("search", str(config), "--workers", "2", "-q"))
    assert status == 0, err
    before, examples = trial_bytes(project), examples_processed(project)
    journal = (project / JOURNAL_FILE).read_bytes()
    assert len(before) == 4 and examples == 4 * 3 * 32
    capsys.readouterr()
    assert main(["search", str(config), "-q"]) == 0
    out = capsys.readouterr().out
    assert trial_bytes(project) == before
    assert examples_processed(project) == examples
    assert (project / JOURNAL_FILE).read_bytes() == journal
    assert "4 completed, 0 failed" in out
    assert not (project / "tuner0.json").exists()  # The project's state file is the chief's.
    record = json.loads((project / PROJECT_RECORD_FILE).read_text())
    assert record["state_file"] == "chief.json"
    assert [run["mode"] for run in record["runs"]] == ["chief", "single"]


@pytest.mark.slow
def test_a_single_process_project_reopened_with_workers_trains_nothing_and_rewrites_nothing(folder, capsys):
    config = write_config(folder, "single_then_workers", max_trials=3)
    project = folder / "searches" / "single_then_workers"
    assert main(["search", str(config), "-q"]) == 0
    before, examples = trial_bytes(project), examples_processed(project)
    assert len(before) == 3 and examples == 3 * 3 * 32
    status, out, err = finish(keras_sage("search", str(config), "--workers", "2", "-q"))
    assert status == 0, err
    assert trial_bytes(project) == before
    assert examples_processed(project) == examples
    assert "3 completed, 0 failed" in out
    record = json.loads((project / PROJECT_RECORD_FILE).read_text())
    assert record["state_file"] == "tuner0.json"
    assert [run["mode"] for run in record["runs"]] == ["single", "chief"]


# One config per search.


@pytest.mark.slow
def test_a_worker_with_another_alpha_is_refused_before_training(folder):
    config = write_config(folder, "handshake", max_trials=2)
    other = folder / "handshake_alpha0.toml"
    other.write_text(config.read_text().replace("alpha = 1.0", "alpha = 0.0"))
    port = free_port()
    chief = keras_sage("search", str(config), "--workers", "0", "--port", str(port), "-q")
    try:
        status, _, err = finish(keras_sage("worker", str(other), "--chief", f"127.0.0.1:{port}"))
        assert status == 2, err
        err = keras_sage_lines(err)
        assert err.count("\n") == 1, err
        assert err.startswith(f"keras-sage: error: worker tuner-{socket.gethostname()}-") and err.endswith(
            f" refused by the chief at 127.0.0.1:{port}: its config differs from the chief's at alpha: "
            "the chief's is '1.0', the worker's '0.0'\n"
        ), err
        assert not list((folder / "searches" / "handshake").glob("trial_*")), "a trial was handed out"
    finally:
        chief.send_signal(signal.SIGKILL)
        _, _, chief_err = finish(chief)
    assert "refused: its config differs from the chief's at alpha" in chief_err


@pytest.mark.slow
def test_a_duplicate_worker_name_is_refused(folder):
    config = write_config(folder, "duplicate", max_trials=30)
    port = free_port()
    chief = keras_sage("search", str(config), "--workers", "0", "--port", str(port), "-q")
    first = keras_sage("worker", str(config), "--chief", f"127.0.0.1:{port}", "--tuner-id", "w", "-q")
    project = folder / "searches" / "duplicate"
    try:
        deadline = time.monotonic() + 120
        while not list(project.glob("trial_*/trial.json")):
            assert first.poll() is None and time.monotonic() < deadline, finish(first)
            time.sleep(0.1)
        status, _, err = finish(
            keras_sage("worker", str(config), "--chief", f"127.0.0.1:{port}", "--tuner-id", "w")
        )
        assert status == 2, err
        err = keras_sage_lines(err)
        assert err.count("\n") == 1, err
        assert err.startswith(f"keras-sage: error: worker w refused by the chief at 127.0.0.1:{port}: ")
        assert "another live worker process" in err and "has its name" in err
        assert first.poll() is None  # The first worker goes on.
    finally:
        for process in (first, chief):
            process.send_signal(signal.SIGKILL)
            finish(process)


# A fixed port after a crash.


def test_a_port_in_time_wait_is_free_and_a_listening_port_is_not(folder, capsys):
    from keras_sage.cli.search import _check_port_free

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with pytest.raises(OSError, match=f"^port {port} on 127.0.0.1 is in use"):
            _check_port_free("127.0.0.1", port)
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # The server's side closes first: its port goes to TIME_WAIT, as a killed chief's.
        client.close()
    time.sleep(0.1)
    states = subprocess.run(["ss", "-tan", f"sport = :{port}"], capture_output=True, text=True).stdout
    if "TIME-WAIT" not in states:
        pytest.skip(f"no TIME-WAIT socket to test with: {states}")
    _check_port_free("127.0.0.1", port)


# Failures before the first trial, in one line.


def test_num_classes_below_the_datas_is_refused_before_training(folder, capsys):
    config = write_config(folder, "three_classes")
    config.write_text(config.read_text().replace("max_layers = 2", "max_layers = 2\nnum_classes = 3"))
    assert main(["search", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"keras-sage: error: {config}: [hypermodel] num_classes = 3, but the data's labels go up to 9 "
        "(10 classes); leave num_classes out to take the data's\n"
    )
    assert not list((folder / "searches" / "three_classes").glob("trial_*"))


@pytest.mark.parametrize("wait", ["nan", "-5", "0", "inf"])
def test_a_worker_wait_that_is_not_a_positive_finite_number_is_refused(folder, capsys, wait):
    config = write_config(folder, "wait")
    with pytest.raises(SystemExit) as exited:
        main(["worker", str(config), "--chief", "127.0.0.1:1", "--wait", wait])
    assert exited.value.code == 2
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .endswith(f"argument --wait: expected a positive, finite number of seconds, got '{wait}'")
    )


def test_a_negative_n_startup_trials_is_one_line_naming_it(folder, capsys):
    config = write_config(folder, "startup")
    config.write_text(config.read_text().replace('name = "tpe"', 'name = "tpe"\nn_startup_trials = -3'))
    assert main(["search", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "n_startup_trials must be an integer of at least 0, got -3" in err, err


def test_a_search_in_which_every_trial_failed_exits_1_with_the_most_common_cause(user_space, capsys):
    config = user_space_config(user_space, "every_failed", ["nan1", "nan2", "unbuildable"], max_trials=3)
    assert main(["search", str(config), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("keras-sage: error: every trial of the search failed (3); the most common cause ")
    assert err.count("\n") == 1, err
    statuses = [
        json.loads(text)["status"] for text in trial_bytes(user_space / "searches" / "every_failed").values()
    ]
    assert statuses == ["FAILED"] * 3
    causes = [
        json.loads(text)["message"].split(":")[0]
        for text in trial_bytes(user_space / "searches" / "every_failed").values()
    ]
    most_common = max(set(causes), key=causes.count)
    assert f"cause ({causes.count(most_common)} of them): {most_common}" in err, (causes, err)


def small_space():
    from keras_sage.hypermodels import CNNSearchSpace

    return CNNSearchSpace(max_layers=1, num_classes=10, input_shape=(8, 8, 1))


def small_search(folder: Path, project_name: str, **tuner_arguments):
    """A search of one-layer CNNs on 16 digits at 8×8, one step a trial, in `folder / "searches"`."""
    from keras_sage.tuners import SageTuner

    splits = digits(image_size=8, probe_size=PROBE_SIZE)
    tuner = SageTuner(
        small_space(),
        teacher=folder / "teacher.h5",
        premature_steps=1,
        directory=folder / "searches",
        project_name=project_name,
        **tuner_arguments,
    )
    tuner.search(
        splits.x_train[:16],
        splits.y_train[:16],
        validation_data=(splits.x_val[:8], splits.y_val[:8]),
        verbose=0,
    )
    return tuner


def test_a_trial_created_but_not_yet_listed_by_the_oracle_runs_again_on_reopening(folder):
    # A process killed between KerasTuner's writing a new trial's trial.json (RUNNING) and its oracle.json
    # left a trial that the oracle does not list as running: it never ended, so it must run again.
    def search(max_trials: int):
        return small_search(folder, "created_not_listed", max_trials=max_trials, seed=1)

    search(1)
    project = folder / "searches" / "created_not_listed"
    first = (project / "trial_0" / "trial.json").read_bytes()
    planted = json.loads(first)
    planted.update(trial_id="1", status="RUNNING", score=None, best_step=0, message=None)
    planted["metrics"]["metrics"] = {}
    (project / "trial_1").mkdir()
    (project / "trial_1" / "trial.json").write_text(json.dumps(planted))
    reopened = search(2)
    assert (project / "trial_0" / "trial.json").read_bytes() == first
    assert json.loads((project / "trial_1" / "trial.json").read_text())["status"] == "COMPLETED"
    assert reopened.search_examples == 2 * 16  # Trial 0 once (first search), trial 1 once (this one).


class Killed(BaseException):
    """Stands for a kill -9: nothing catches it, and nothing is written after it."""


@pytest.mark.parametrize("kind", ["tpe", "reinforce"])
@pytest.mark.parametrize("max_trials", [2, 3], ids=["the-last-trial", "a-trial-before-the-last"])
def test_a_trial_ended_but_not_yet_listed_by_the_oracle_is_not_run_again_on_reopening(
    folder, monkeypatch, kind, max_trials
):
    # A process killed between KerasTuner's writing an ended trial's trial.json (COMPLETED) and its
    # oracle.json (end_order): the trial ended, so it must not run again, and the oracle must learn from it.
    from keras_sage.tuners import ReinforceOracle, SageTuner, TPEOracle

    space = small_space()
    oracle_class = {"tpe": TPEOracle, "reinforce": ReinforceOracle}[kind]

    class Oracle(oracle_class):
        """Trials 0 and 1 are REINFORCE's first batch. Killed when trial 1 is to be listed as ended."""

        def __init__(self, killed: bool):
            if kind == "tpe":
                super().__init__(max_trials=max_trials, n_startup_trials=2, seed=1)
            else:
                super().__init__(space, max_trials=max_trials, batch_size=2, seed=1)
            self.killed = killed

        def save(self) -> None:
            if self.killed and "1" in self.end_order:
                raise Killed
            super().save()

        def populate_space(self, trial_id: str) -> dict:
            values = super().populate_space(trial_id)
            assert values["status"] != "IDLE", "REINFORCE waits for a batch that has ended"
            return values

    ran: list[str] = []
    run_trial = SageTuner.run_trial

    def record(tuner, trial, *args, **kwargs):
        ran.append(trial.trial_id)
        return run_trial(tuner, trial, *args, **kwargs)

    monkeypatch.setattr(SageTuner, "run_trial", record)
    name = f"ended_not_listed_{kind}_{max_trials}"
    with pytest.raises(Killed):
        small_search(folder, name, oracle=Oracle(killed=True))
    project = folder / "searches" / name
    ended = json.loads((project / "trial_1" / "trial.json").read_text())
    assert ended["status"] == "COMPLETED"
    assert json.loads((project / "oracle.json").read_text())["end_order"] == ["0"]

    ran.clear()
    reopened = small_search(folder, name, oracle=Oracle(killed=False))
    every_trial = [str(i) for i in range(max_trials)]
    assert ran == every_trial[2:]
    assert reopened.oracle.end_order == every_trial
    assert json.loads((project / "oracle.json").read_text())["end_order"] == every_trial
    assert json.loads((project / "trial_1" / "trial.json").read_text()) == ended
    assert reopened.search_examples == max_trials * 16  # Each trial trained once, and counted once.
    if kind == "reinforce":
        assert reopened.oracle.updates == 1
        return
    backend = optuna.storages.journal.JournalFileBackend(str(project / JOURNAL_FILE))
    study = optuna.load_study(study_name="keras-sage", storage=optuna.storages.JournalStorage(backend))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * max_trials
    assert study.trials[1].value == pytest.approx(ended["score"])


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"images": np.array([object(), object()], dtype=object)},
            "Object arrays cannot be loaded when allow_pickle=False (a probe file holds numeric arrays only)",
        ),
        (
            {"images": np.zeros((100, 8, 8), np.float32)},
            "'images' must have shape (n, H, W, C), got (100, 8, 8) (grey images need their channel axis: "
            "images[..., None])",
        ),
        (
            {"images": np.zeros((4, 8, 8, 1), np.float32), "labels": np.zeros((3,), np.int64)},
            "'labels' must have shape (4,), one label per image, got (3,)",
        ),
    ],
)
def test_a_bad_probe_file_is_one_line_naming_it(tmp_path, capsys, arrays, message):
    probe = tmp_path / "probe.npz"
    np.savez(probe, **arrays)
    argv = ["teacher", "register", str(tmp_path / "model.keras"), "--probe", str(probe), "-o", "t.h5"]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"keras-sage: error: {probe}: {message}\n"


def test_a_probe_of_another_size_than_the_teachers_input_is_one_line(tmp_path, capsys):
    import keras

    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="L1"), keras.layers.Flatten(name="L2")]
    )
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "probe.npz", images=np.zeros((6, 16, 16, 1), np.float32))
    argv = ["teacher", "register", str(tmp_path / "model.keras"), "--probe", str(tmp_path / "probe.npz")]
    assert main([*argv, "-o", str(tmp_path / "t.h5"), "-q"]) == 2
    assert capsys.readouterr().err == (
        "keras-sage: error: the probe images have shape (16, 16, 1), but the model "
        f"{tmp_path / 'model.keras'} takes inputs of shape (8, 8, 1); register the teacher on probe images "
        "of its input size\n"
    )
    assert not (tmp_path / "t.h5").exists()


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (
            lambda v: np.where(np.arange(v.size) == 0, -5.0, v),
            "holds values from -5 to {high}, outside [0, 2], the range of correlation distances; register "
            "the teacher again",
        ),
        (
            lambda v: np.full_like(v, 0.5),
            "is constant (every pair of probe images equally dissimilar), so it scores every candidate "
            "S = 0; register it on varied probe images",
        ),
    ],
)
def test_teacher_show_reports_what_search_refuses(tmp_path, capsys, values, problem):
    import dataclasses

    from keras_sage.rsa import rdm
    from keras_sage.teachers import TeacherStore

    images = np.random.default_rng(0).random((6, 4, 4, 1)).astype(np.float32)
    good = rdm(images.reshape(6, -1), name="L1")
    bad = dataclasses.replace(good, values=values(good.values).astype(np.float32))
    path = tmp_path / "teacher.h5"
    TeacherStore.create(path, images, None).add_rdms({"L1": bad})
    assert main(["teacher", "show", str(path)]) == 0
    message = f"teacher file {path}: RDM 'L1' " + problem.format(high=f"{bad.values.max():.4g}")
    assert f"\nnot usable for a search: {message}\n" in capsys.readouterr().out
    from keras_sage.objective import TeacherGuidedScorer
    from keras_sage.score import ScoringConfig

    with pytest.raises(ValueError) as refused:
        TeacherGuidedScorer(path, ScoringConfig())
    assert str(refused.value) == message


@pytest.mark.slow
def test_a_chief_killed_with_kill_9_restarts_at_once_on_its_fixed_port(folder):
    config = write_config(folder, "restart", max_trials=6)
    project = folder / "searches" / "restart"
    port = free_port()
    chief_command = ("search", str(config), "--workers", "0", "--port", str(port), "-q")
    chief = keras_sage(*chief_command)
    # The worker waits for its chief longer than a loaded machine may take to start one again.
    worker = keras_sage(
        "worker",
        str(config),
        "--chief",
        f"127.0.0.1:{port}",
        "--tuner-id",
        "w",
        KERAS_SAGE_CHIEF_TIMEOUT_S="240",
    )
    restarted = None
    try:
        deadline = time.monotonic() + 180
        while not any(json.loads(text)["status"] == "COMPLETED" for text in trial_bytes(project).values()):
            assert chief.poll() is None and time.monotonic() < deadline, finish(chief)
            time.sleep(0.1)
        chief.send_signal(signal.SIGKILL)
        chief.wait()
        # The chief's side of the worker's connection is in TIME_WAIT now; the restart must not wait it out.
        restarted = keras_sage(*chief_command)
        worker_status, worker_out, worker_err = finish(worker)
        assert worker_status == 0, worker_out + worker_err
        status, out, err = finish(restarted)
        assert status == 0, err
        assert "is in use" not in err
    finally:
        for process in (chief, worker, restarted):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    states = [json.loads(text) for text in trial_bytes(project).values()]
    assert [state["status"] for state in states] == ["COMPLETED"] * 6
    assert "6 completed, 0 failed" in out


def test_an_error_after_tensorflow_started_is_the_only_line_on_stderr(folder):
    config = write_config(folder, "quiet_error")
    config.write_text(config.read_text().replace("max_layers = 2", "max_layers = 2\nnum_classes = 3"))
    environment = {name: value for name, value in ENVIRONMENT.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_sage.cli", "search", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    status, _, err = finish(process)
    assert status == 2
    assert (
        err == f"keras-sage: error: {config}: [hypermodel] num_classes = 3, but the data's labels go up to 9 "
        "(10 classes); leave num_classes out to take the data's\n"
    )


def test_the_progress_count_does_not_go_back_when_a_trial_runs_again():
    import types

    import keras_tuner

    from keras_sage.cli.progress import ProgressTuner

    progress = object.__new__(ProgressTuner)  # Only its progress lines, without a search behind it.
    progress.total_trials, progress.verbosity = 6, 1
    progress._search_start, progress._trial_start, progress._first_number = time.monotonic(), {}, 1
    progress._highest_number = 0
    progress.oracle = types.SimpleNamespace(
        get_best_trials=lambda count: [], objective=keras_tuner.Objective("score", "max")
    )
    space = keras_tuner.HyperParameters()
    lines = [
        progress.progress_line(keras_tuner.engine.trial.Trial(space, trial_id=trial_id, status="COMPLETED"))
        for trial_id in ("4", "5", "2")
    ]
    assert [line.split(" · ")[0] for line in lines] == [
        "trial 5/6",
        "trial 6/6",
        "trial 3/6 (run again; 6/6 handed out)",
    ]


def test_a_graph_execution_error_is_reported_with_what_went_wrong():
    import tensorflow as tf

    from keras_sage.tuners.failures import failure_cause, failure_reason

    @tf.function
    def loss(labels, logits):
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)

    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        loss(tf.constant([9]), tf.zeros((1, 3)))
    reason = failure_reason(raised.value)
    assert reason == (
        "InvalidArgumentError: Graph execution error: Received a label value of 9 which is outside the valid "
        "range of [0, 3)."
    )
    assert failure_cause(reason) == "InvalidArgumentError"
