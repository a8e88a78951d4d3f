"""`keras-sage search CONFIG.toml` (and `worker`, `probe`) on a tiny digits config: 8×8 images, 3 steps."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_sage.cli import main
from keras_sage.cli.progress import format_duration
from keras_sage.datasets import digits
from keras_sage.rsa import rdm
from keras_sage.search_config import oracle_names
from keras_sage.teachers import TeacherStore, probe_fingerprint

PROBE_SIZE = 30
CONFIG = """\
[search]
directory = "searches"
project_name = "{project}"
max_trials = {max_trials}
alpha = 1.0
premature_steps = 3
seed = 1
batch_size = 32
[data]
name = "digits"
image_size = 8
probe_size = {probe_size}
[hypermodel]
name = "cnn"
max_layers = 2
[teacher]
path = "teacher.h5"
[oracle]
name = "{oracle}"
"""


def write_teacher(path: Path, images: np.ndarray, labels: np.ndarray) -> TeacherStore:
    """A 'teacher' whose RDMs come from random features of the probe images."""
    store = TeacherStore.create(path, images, labels, overwrite=True)
    flat = images.reshape(len(images), -1)
    rng = np.random.default_rng(1)
    store.add_rdms(
        {
            "L1": rdm(np.maximum(flat @ rng.normal(size=(flat.shape[1], 32)), 0), name="L1"),
            "L2": rdm(flat @ rng.normal(size=(flat.shape[1], 8)), name="L2"),
        }
    )
    return store


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A folder with a teacher registered on the digits config's probe set."""
    folder = tmp_path_factory.mktemp("search")
    data = digits(image_size=8, probe_size=PROBE_SIZE)
    write_teacher(folder / "teacher.h5", data.x_probe, data.y_probe)
    return folder


def write_config(folder: Path, name: str, **values) -> Path:
    settings = {"project": name, "max_trials": 3, "probe_size": PROBE_SIZE, "oracle": "tpe", **values}
    path = folder / f"{name}.toml"
    path.write_text(CONFIG.format(**settings))
    return path


def trial_states(project: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(project.glob("trial_*/trial.json"))]


def results_table(out: str) -> list[list[str]]:
    """The rows of the printed results table, split into cells."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == ["trial", "score", "P", "TG", "params"])
    rows = []
    for line in lines[start + 2 :]:
        if line.startswith("cost:"):
            break
        rows.append(line.split())
    return rows


def check_finished_search(folder: Path, name: str, out: str) -> None:
    """Three trials ended, none RUNNING; the table and the cost are those on disk."""
    project = folder / "searches" / name
    states = trial_states(project)
    assert len(states) == 3
    assert {state["status"] for state in states} <= {"COMPLETED", "FAILED"}
    completed = sorted(
        (state for state in states if state["status"] == "COMPLETED"), key=lambda state: -state["score"]
    )
    assert completed, out
    rows = results_table(out)
    assert [row[0] for row in rows] == [state["trial_id"] for state in completed]
    assert float(rows[0][1]) == pytest.approx(completed[0]["score"], abs=5e-5)
    tuner_state = json.loads((project / "tuner0.json").read_text())
    assert tuner_state["search_examples"] > 0
    assert f"cost: {tuner_state['search_examples']:,} examples processed" in out


PROGRESS = re.compile(
    r"trial (\d+)/3 · best score (\d\.\d{3}) \(P (\d\.\d{3}), TG (-?\d\.\d{3})\) · ETA (< 1 min|\d+ min)"
)
FAILED_LINE = re.compile(r"trial (\d+)/3 failed: (.+) \(traceback: (.+)\)")
USER_SPACE = """\
import keras, keras_tuner, numpy as np
from keras_sage.hypermodels import CandidateBuildError


class Space(keras_tuner.HyperModel):
    def __init__(self, num_classes, input_shape, modes):
        super().__init__()
        self.num_classes, self.input_shape, self.modes = num_classes, input_shape, modes

    def build(self, hp):
        mode = hp.Choice("mode", self.modes)
        if mode.startswith("unbuildable"):
            raise CandidateBuildError("spatial size below 1 at layer_2")
        image = keras.Input(self.input_shape)
        x = keras.layers.Conv2D(hp.Int("filters", 2, 4), 3, activation="relu", name="layer_1")(image)
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(image, keras.layers.Dense(self.num_classes, activation="softmax")(x))

        def loss(y_true, y_pred):
            value = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
            return value * np.nan if mode.startswith("nan") else value

        model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
        return model
"""


def test_search_from_a_config(folder, capsys):
    config = write_config(folder, "in_process")
    assert main(["search", str(config)]) == 0
    out = capsys.readouterr().out
    check_finished_search(folder, "in_process", out)
    states = {state["trial_id"]: state for state in trial_states(folder / "searches" / "in_process")}
    best = -np.inf
    numbers = []
    for line in out.splitlines():
        if not line or line.startswith("results in"):
            break
        progress, failed = PROGRESS.fullmatch(line), FAILED_LINE.fullmatch(line)
        assert progress or failed, line
        number = int((progress or failed).group(1))
        numbers.append(number)
        state = states[str(number - 1)]
        if failed:
            assert state["status"] == "FAILED" and failed.group(2) == state["message"]
            continue
        best = max(best, state["score"])
        assert float(progress.group(2)) == pytest.approx(best, abs=5e-4)
    assert numbers == [1, 2, 3]


@pytest.fixture
def user_space(folder, monkeypatch):
    """A user's hypermodel module, `user_space.Space`, importable from the config."""
    (folder / "user_space.py").write_text(USER_SPACE)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def user_space_config(folder: Path, name: str, modes: list[str], **search) -> Path:
    path = write_config(folder, name, oracle="random", max_trials=search.pop("max_trials", 3))
    text = path.read_text().replace(
        'name = "cnn"\nmax_layers = 2', f'name = "user_space:Space"\nmodes = {modes}'
    )
    extra = "".join(f"{key} = {value}\n" for key, value in search.items())
    path.write_text(text.replace("[data]", extra + "[data]"))
    return path


def test_failed_trials_print_one_line_and_log_their_traceback(user_space, capsys):
    config = user_space_config(
        user_space, "failing", ["nan", "unbuildable", "ok"], max_consecutive_failed_trials=5
    )
    status = main(["search", str(config)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    failed = [FAILED_LINE.fullmatch(line) for line in captured.out.splitlines()]
    failed = [match for match in failed if match]
    reasons = sorted(match.group(2) for match in failed)
    states = trial_states(user_space / "searches" / "failing")
    # A search in which every trial failed exits 1 (test_one_writer), one with a result 0.
    assert status == (0 if any(state["status"] == "COMPLETED" for state in states) else 1)
    assert len(failed) == sum(state["status"] == "FAILED" for state in states) >= 1
    assert set(reasons) <= {
        "candidate cannot be built: spatial size below 1 at layer_2",
        "training diverged: the loss became NaN or infinite at step 1",
    }
    for match in failed:
        log = Path(match.group(3))
        assert log == user_space / "searches" / "failing" / f"trial_{int(match.group(1)) - 1}" / "trial.log"
        assert log.read_text().startswith("Traceback (most recent call last):")


def test_consecutive_failures_exit_1_naming_the_cause(user_space, capsys):
    config = user_space_config(
        user_space, "all_nan", ["nan1", "nan2", "nan3"], max_consecutive_failed_trials=2
    )
    assert main(["search", str(config), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "trial" not in captured.out
    assert captured.err == (
        "keras-sage: error: the search stopped after 2 failed trials in a row (trials 0, 1), all for the "
        "same cause: training diverged: the loss became NaN or infinite at step 1; each trial's traceback "
        "is in its folder's trial.log\n"
    )


def test_verbose_adds_the_trials_own_score_and_hyperparameters(user_space, capsys):
    config = user_space_config(user_space, "verbose", ["ok"], max_trials=1)
    assert main(["search", str(config), "-v"]) == 0
    lines = capsys.readouterr().out.splitlines()
    states = {state["trial_id"]: state for state in trial_states(user_space / "searches" / "verbose")}
    first = next(i for i, line in enumerate(lines) if line.startswith("trial 1/1"))
    score = states["0"]["score"]
    assert re.fullmatch(
        rf"trial 1/1 · score {score:.3f} \(P \d\.\d{{3}}, TG -?\d\.\d{{3}}\) in \d+ s · .*", lines[first]
    )
    values = states["0"]["hyperparameters"]["values"]
    assert lines[first + 1] == "  " + ", ".join(f"{name}={value}" for name, value in values.items())


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "< 1 min"), (29, "< 1 min"), (31, "1 min"), (12 * 60, "12 min"), (125 * 60, "2 h 05 min")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.slow
def test_search_as_a_command(folder):
    config = write_config(folder, "command")
    result = subprocess.run(
        [sys.executable, "-m", "keras_sage.cli", "search", str(config)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    check_finished_search(folder, "command", result.stdout)
    assert "Traceback" not in result.stderr


def test_probe_writes_the_configs_probe_set(folder, capsys):
    config = write_config(folder, "probe")
    output = folder / "probe.npz"
    assert main(["probe", str(config), "-o", str(output)]) == 0
    data = digits(image_size=8, probe_size=PROBE_SIZE)
    with np.load(output) as archive:
        np.testing.assert_array_equal(archive["images"], data.x_probe)
        np.testing.assert_array_equal(archive["labels"], data.y_probe)
    fingerprint = probe_fingerprint(data.x_probe, data.y_probe)
    assert f"fingerprint {fingerprint[:12]}" in capsys.readouterr().out


@pytest.mark.slow
def test_search_with_two_local_workers(folder):
    config = write_config(folder, "workers", max_trials=4)
    result = subprocess.run(
        [sys.executable, "-m", "keras_sage.cli", "search", str(config), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    states = trial_states(folder / "searches" / "workers")
    assert len(states) == 4
    assert all(state["status"] == "COMPLETED" for state in states), [state["message"] for state in states]
    assert re.search(r"4 completed, 0 failed", result.stdout)


# Bad input: one line naming the culprit, exit status 2.


def edited_config(folder: Path, name: str, old: str, new: str) -> Path:
    path = write_config(folder, name)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("keras-sage: error: "), err
    return err.removeprefix("keras-sage: error: ").rstrip("\n")


# TPE, REINFORCE, random, then optuna's samplers by class name.
ORACLES = ", ".join(oracle_names())


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'name = "cnn"',
            'name = "resnet"',
            '[hypermodel] unknown name "resnet"; valid names: cnn, cells, nasbench201 or '
            '"package.module:callable"',
        ),
        (
            'name = "tpe"',
            'name = "bayesian"',
            f'[oracle] unknown name "bayesian"; valid names: {ORACLES}',
        ),
        (
            'name = "digits"',
            'name = "mnist"',
            '[data] unknown name "mnist"; valid names: digits, cifar10, cifar100, imagenet64, image_folder',
        ),
        (
            "seed = 1",
            "seed = 1\nlearning_rate = 0.1",
            "[search] unknown key(s) learning_rate; valid keys: directory, project_name, max_trials, alpha, "
            "premature_epochs, premature_steps, seed, batch_size, overwrite, max_consecutive_failed_trials, "
            "distribution_strategy, objectives, proxy_weights",
        ),
        (
            "image_size = 8",
            "image_size = 8\nresolution = 8",
            "[data] unknown key(s) resolution for data set 'digits'; valid keys: name, image_size, channels, "
            "validation_fraction, probe_size, seed, standardized",
        ),
        (
            "[teacher]",
            "[teachers]",
            "unknown section(s) [teachers]; valid sections: [search], [data], [hypermodel], [teacher], "
            "[oracle]",
        ),
        ("alpha = 1.0", "alpha = -1.0", "[search] alpha must be a number of at least 0; got -1.0 (a number)"),
        (
            "alpha = 1.0",
            'alpha = "1.0"',
            '[search] alpha must be a number of at least 0; got "1.0" (a string)',
        ),
        (
            "alpha = 1.0",
            "alpha = true",
            "[search] alpha must be a number of at least 0; got true (a boolean)",
        ),
        (
            "premature_steps = 3",
            "premature_steps = 0",
            "[search] premature_steps must be a positive integer; got 0 (an integer)",
        ),
        (
            "premature_steps = 3",
            'premature_epochs = "2"',
            '[search] premature_epochs must be a positive integer; got "2" (a string)',
        ),
        (
            "premature_steps = 3",
            "premature_steps = 2.5",
            "[search] premature_steps must be a positive integer; got 2.5 (a number)",
        ),
        (
            "max_trials = 3",
            "max_trials = true",
            "[search] max_trials must be a positive integer; got true (a boolean)",
        ),
        (
            "premature_steps = 3",
            "premature_steps = 3\npremature_epochs = 1",
            "[search] give premature_epochs or premature_steps, not both",
        ),
        ('path = "teacher.h5"', "", "[teacher] path is missing (the teacher file)"),
        (
            "seed = 1",
            "seed = 1\nproxy_weights = { synfow = 1.0 }",
            "[search] proxy_weights must be a table of finite numbers by proxy name (params, flops, synflow, "
            "snip, grad_norm, naswot); got { synfow = 1.0 } (a table)",
        ),
        (
            "seed = 1",
            'seed = 1\nproxy_weights = { params = "-1" }',
            "[search] proxy_weights must be a table of finite numbers by proxy name (params, flops, synflow, "
            'snip, grad_norm, naswot); got { params = "-1" } (a table)',
        ),
    ],
)
def test_bad_config_is_one_line_naming_the_culprit(folder, capsys, old, new, message):
    config = edited_config(folder, "bad", old, new)
    assert main(["search", str(config)]) == 2
    assert one_error_line(capsys) == f"{config}: {message}"
    assert not (folder / "searches" / "bad").exists()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "max_layers = 2",
            "max_layers = 2\ndepth = 3",
            "[hypermodel] unknown key(s) depth for 'cnn'; valid keys: name, max_layers, optimizer, "
            "learning_rate, batch_norm_momentum, tunable",
        ),
        (
            "max_layers = 2",
            "max_layers = 0",
            "[hypermodel] cnn: max_layers must be a positive integer, got 0.",
        ),
        (
            'name = "tpe"',
            'name = "tpe"\nn_startup = 3',
            "[oracle] unknown key(s) n_startup for 'tpe'; valid keys: name, n_startup_trials, "
            "n_ei_candidates, gamma, ",
        ),
        (
            'name = "tpe"',
            'name = "CmaEsSampler"\nsigma = 0.5',
            "[oracle] unknown key(s) sigma for 'CmaEsSampler'; valid keys: name, x0, sigma0, ",
        ),
        (
            'name = "cnn"',
            'name = "no_such_module:space"',
            "[hypermodel] cannot import 'no_such_module': No module named 'no_such_module'",
        ),
    ],
)
def test_bad_hypermodel_or_oracle_arguments_are_one_line(folder, capsys, old, new, message):
    config = edited_config(folder, "bad_arguments", old, new)
    assert main(["search", str(config)]) == 2
    assert one_error_line(capsys).startswith(f"{config}: {message}")


def test_a_teacher_on_another_probe_set_prints_both_fingerprints(folder, capsys):
    config = edited_config(folder, "other_probe", "probe_size = 30", "probe_size = 40")
    assert main(["search", str(config)]) == 2
    expected = digits(image_size=8, probe_size=40)
    teacher = TeacherStore.open(folder / "teacher.h5")
    assert one_error_line(capsys) == (
        f"teacher file {folder / 'teacher.h5'} was registered on a different probe set: its fingerprint is "
        f"{teacher.fingerprint[:16]}…, the expected probe set's is "
        f"{probe_fingerprint(expected.x_probe, expected.y_probe)[:16]}…"
    )


def test_a_port_in_use_is_refused(folder, capsys):
    import socket

    config = write_config(folder, "port")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["search", str(config), "--workers", "1", "--port", str(port)]) == 2
    assert one_error_line(capsys).startswith(f"port {port} on 127.0.0.1 is in use or cannot be bound")


def test_a_chief_that_does_not_answer_is_reported_after_the_wait(folder, capsys):
    import time

    from distributed_harness import free_port

    config = write_config(folder, "no_chief")
    port = free_port()
    start = time.monotonic()
    assert main(["worker", str(config), "--chief", f"127.0.0.1:{port}", "--wait", "1"]) == 2
    assert time.monotonic() - start < 10
    assert one_error_line(capsys).startswith(f"no chief answers at 127.0.0.1:{port} (waited 1 s: ")


def test_bad_config_as_a_command_is_one_line_without_traceback(folder):
    config = edited_config(folder, "bad_command", 'name = "tpe"', 'name = "bayesian"')
    result = subprocess.run(
        [sys.executable, "-m", "keras_sage.cli", "search", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f'keras-sage: error: {config}: [oracle] unknown name "bayesian"; ')
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_oracle_names_are_ours_then_optunas_samplers():
    import optuna

    names = oracle_names()
    assert names[:3] == ("tpe", "reinforce", "random")
    assert {"TPESampler", "CmaEsSampler", "RandomSampler", "NSGAIISampler"} <= set(names[3:])
    for name in names[3:]:
        assert issubclass(getattr(optuna.samplers, name), optuna.samplers.BaseSampler)
    assert "BaseSampler" not in names and "PartialFixedSampler" not in names


ABORTING_SPACE = """\
import os
from pathlib import Path

from user_space import Space


class AbortOnce(Space):
    \"\"\"Crashes its process (SIGABRT, as glibc does on a corrupted heap) at its first build after the
    space was declared, once.\"\"\"

    def build(self, hp):
        marker = Path(__file__).with_name("aborted")
        if hp.values and not marker.exists():
            marker.write_text("")
            os.abort()
        return super().build(hp)
"""


@pytest.mark.slow
def test_trials_per_process_replaces_a_crashed_process(user_space):
    (user_space / "aborting_space.py").write_text(ABORTING_SPACE)
    config = user_space_config(user_space, "per_process", ["ok"])
    config.write_text(config.read_text().replace("user_space:Space", "aborting_space:AbortOnce"))
    result = subprocess.run(
        [sys.executable, "-m", "keras_sage.cli", "search", str(config), "--trials-per-process", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(user_space), *sys.path])},
    )
    assert result.returncode == 0, result.stderr
    assert "the search process died (SIGABRT); a new one resumes the search" in result.stdout
    states = trial_states(user_space / "searches" / "per_process")
    completed = [state for state in states if state["status"] == "COMPLETED"]
    assert len(completed) >= 2
    assert re.search(rf"{len(completed)} completed", result.stdout)


def test_the_cost_sums_every_tuner_of_the_project(tmp_path):
    from keras_sage.cli.search import _examples_processed

    (tmp_path / "oracle.json").write_text(json.dumps({"ongoing_trials": {}, "start_order": ["0"]}))
    (tmp_path / "chief.json").write_text(json.dumps({"search_examples": 0, "rerank_examples": 0}))
    (tmp_path / "tuner1.json").write_text(json.dumps({"search_examples": 120, "rerank_examples": 30}))
    (tmp_path / "node1-gpu0.json").write_text(json.dumps({"search_examples": 64}))
    assert _examples_processed(tmp_path) == 214


def test_fatal_errors_of_a_running_search_exit_1_bad_values_2():
    import keras_tuner

    from keras_sage.cli import _is_search_stop
    from keras_sage.tuners import SearchStoppedError

    assert _is_search_stop(SearchStoppedError("stopped"))
    assert _is_search_stop(keras_tuner.errors.FatalError("the chief is gone"))
    assert not _is_search_stop(keras_tuner.errors.FatalValueError("probe shape"))
    assert not _is_search_stop(ValueError("bad"))


def test_a_config_with_proxy_weights_scores_by_p_alpha_tg_and_beta_proxy(folder, capsys):
    """`proxy_weights` in [search]: every completed trial's score is P + α·TG + β·log10(params)."""
    config = edited_config(folder, "proxies", "seed = 1", "seed = 1\nproxy_weights = { params = -0.05 }")
    assert main(["search", str(config)]) == 0
    capsys.readouterr()
    completed = [
        state for state in trial_states(folder / "searches" / "proxies") if state["status"] == "COMPLETED"
    ]
    assert completed
    for state in completed:
        metrics = {
            name: metric["observations"][-1]["value"][0]
            for name, metric in state["metrics"]["metrics"].items()
        }
        expected = (
            metrics["premature_accuracy"] + metrics["teacher_guidance"] - 0.05 * np.log10(metrics["params"])
        )
        assert metrics["score"] == pytest.approx(expected, abs=1e-6)
