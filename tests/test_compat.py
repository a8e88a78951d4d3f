"""One test per private KerasTuner, optuna and Keras API keras-sage uses (`keras_sage/tuners/_compat.py`).

Each test fails with the API's name and the versions it was checked on when an upgrade removes or
renames the API, or changes the arguments keras-sage passes it; then it checks that the API still does
what keras-sage relies on.
"""

from __future__ import annotations

import errno
import functools
import inspect
import json
import os

import keras
import keras_tuner
import numpy as np
import optuna
import pytest
from keras_tuner.engine.base_tuner import BaseTuner
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from keras_sage.tuners import _compat
from keras_sage.tuners.oracles.tpe import SplitOnceTPESampler, hyperopt_gamma


def assert_private_api(owner, name: str, api: str, package: str, parameters: list[str] | None = None):
    """Asserts that `owner.name` exists and that its first parameters are still `parameters`."""
    assert hasattr(owner, name), _compat.missing_api_message(api, package)
    if parameters is not None:
        found = list(inspect.signature(getattr(owner, name)).parameters)
        assert found[: len(parameters)] == parameters, (
            f"{api} now takes {found}; keras-sage passes {parameters} (checked on {_compat.CHECKED_VERSIONS})"
        )


def build_dense(hp: keras_tuner.HyperParameters) -> keras.Model:
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(hp.Int("units", 1, 2))(inputs))
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.fixture
def tuner(tmp_path) -> keras_tuner.Tuner:
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="loss", max_trials=1, seed=1)
    return keras_tuner.Tuner(oracle=oracle, hypermodel=build_dense, directory=str(tmp_path), project_name="p")


def new_trial(tuner: keras_tuner.Tuner) -> keras_tuner.engine.trial.Trial:
    return tuner.oracle.create_trial(tuner.tuner_id)


# KerasTuner's Tuner.


def test_tuner_try_build(tuner):
    assert_private_api(
        keras_tuner.Tuner, "_try_build", "keras_tuner.Tuner._try_build", "keras-tuner", ["self", "hp"]
    )
    hp = keras_tuner.HyperParameters()
    hp.Fixed("units", 2)
    model = _compat.build_model(tuner, hp)
    assert isinstance(model, keras.Model)
    assert model.count_params() == 3 * 2 + 2
    tuner.max_model_size = 1
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="Oversized model"):
        _compat.build_model(tuner, hp)


def test_tuner_deepcopy_callbacks(tuner):
    api = "keras_tuner.Tuner._deepcopy_callbacks"
    assert_private_api(keras_tuner.Tuner, "_deepcopy_callbacks", api, "keras-tuner", ["self", "callbacks"])
    stopping = keras.callbacks.EarlyStopping(patience=4)
    (copied,) = _compat.copy_callbacks(tuner, [stopping])
    assert copied is not stopping
    assert copied.patience == 4


def test_tuner_configure_tensorboard_dir(tuner, tmp_path):
    api = "keras_tuner.Tuner._configure_tensorboard_dir"
    assert_private_api(
        keras_tuner.Tuner, "_configure_tensorboard_dir", api, "keras-tuner", ["self", "callbacks", "trial"]
    )
    trial = new_trial(tuner)
    callbacks = [keras.callbacks.TensorBoard(str(tmp_path / "logs"))]
    _compat.configure_tensorboard(tuner, callbacks, trial)
    assert callbacks[0].log_dir == os.path.join(str(tmp_path / "logs"), trial.trial_id, "execution0")
    assert len(callbacks) == 2  # KerasTuner's HParams callback.


def test_tuner_get_checkpoint_fname(tuner):
    api = "keras_tuner.Tuner._get_checkpoint_fname"
    assert_private_api(keras_tuner.Tuner, "_get_checkpoint_fname", api, "keras-tuner", ["self", "trial_id"])
    path = _compat.checkpoint_path(tuner, "7")
    assert path == os.path.join(tuner.get_trial_dir("7"), "checkpoint.weights.h5")


def test_tuner_get_build_config_fname(tuner):
    api = "keras_tuner.Tuner._get_build_config_fname"
    assert_private_api(keras_tuner.Tuner, "_get_build_config_fname", api, "keras-tuner", ["self", "trial_id"])
    assert _compat.build_config_path(tuner, "7") == os.path.join(
        tuner.get_trial_dir("7"), "build_config.json"
    )


def test_tuner_populate_initial_space(tmp_path):
    api = "keras_tuner.Tuner._populate_initial_space"
    assert_private_api(keras_tuner.Tuner, "_populate_initial_space", api, "keras-tuner", ["self"])
    _compat.require_initial_space_hook()

    class CountingTuner(keras_tuner.Tuner):
        calls = 0

        def _populate_initial_space(self):
            CountingTuner.calls += 1
            _compat.populate_initial_space_by_building(self)

    oracle = keras_tuner.oracles.RandomSearchOracle(objective="loss", max_trials=1)
    tuner = CountingTuner(oracle=oracle, hypermodel=build_dense, directory=str(tmp_path))
    # KerasTuner still calls the hook when a tuner is created, and its own version declares the space.
    assert CountingTuner.calls == 1, (
        f"KerasTuner no longer calls {api} (checked on {_compat.CHECKED_VERSIONS})"
    )
    assert [hp.name for hp in tuner.oracle.get_space().space] == ["units"]


def test_tuner_utils_tuner_callback(tuner):
    api = "keras_tuner.src.engine.tuner_utils.TunerCallback"
    from keras_tuner.src.engine import tuner_utils

    assert_private_api(tuner_utils, "TunerCallback", api, "keras-tuner", ["tuner", "trial"])
    calls = []

    class RecordingTuner:
        def on_epoch_begin(self, trial, model, epoch, logs=None):
            calls.append(("epoch_begin", trial, epoch))

        def on_epoch_end(self, trial, model, epoch, logs=None):
            calls.append(("epoch_end", trial, epoch))

        def on_batch_begin(self, trial, model, batch, logs):
            calls.append(("batch_begin", trial, batch))

        def on_batch_end(self, trial, model, batch, logs=None):
            calls.append(("batch_end", trial, batch))

    callback = _compat.tuner_callback(RecordingTuner(), "trial")
    assert isinstance(callback, keras.callbacks.Callback)
    callback.on_epoch_begin(0)
    callback.on_train_batch_begin(0)
    callback.on_train_batch_end(0)
    callback.on_epoch_end(0, {"loss": 1.0})
    kinds = ["epoch_begin", "batch_begin", "batch_end", "epoch_end"]
    assert calls == [(kind, "trial", 0) for kind in kinds]


def test_config_debug_prints_failed_trial_tracebacks(tuner, capsys):
    from keras_tuner.src import config

    assert_private_api(config, "DEBUG", "keras_tuner.src.config.DEBUG", "keras-tuner")
    assert_private_api(
        keras_tuner.Tuner,
        "_try_run_and_update_trial",
        "keras_tuner.Tuner._try_run_and_update_trial",
        "keras-tuner",
        ["self", "trial"],
    )
    _compat.require_trial_end_hook()

    def fail(trial, *args, **kwargs):
        raise keras_tuner.errors.FailedTrialError("no good")

    tuner.run_trial = fail
    trial = new_trial(tuner)
    tuner._try_run_and_update_trial(trial)
    assert "Traceback" in capsys.readouterr().err
    previous = config.DEBUG
    with _compat.no_trial_tracebacks():
        assert config.DEBUG is False
        tuner._try_run_and_update_trial(trial)
    assert config.DEBUG is previous
    assert capsys.readouterr().err == ""
    assert trial.status == "FAILED"
    assert trial.message.startswith("Traceback") and "FailedTrialError: no good" in trial.message


# KerasTuner's Oracle.


def test_oracle_seed_state():
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="loss", max_trials=2, seed=0)
    assert_private_api(oracle, "_seed_state", "keras_tuner.Oracle._seed_state", "keras-tuner")
    assert oracle.seed != 0  # KerasTuner reads 0 as "no seed"...
    _compat.keep_oracle_seed(oracle, 0)
    assert oracle.seed == 0  # ...and keras-sage keeps it.
    assert _compat.next_sample_seed(oracle) == 0
    assert _compat.next_sample_seed(oracle) == 1
    # KerasTuner's random search draws each value with the next seed, as `next_sample_seed` hands them out.
    space = keras_tuner.HyperParameters()
    space.Int("a", 0, 10**6)
    space.Int("b", 0, 10**6)
    oracle.update_space(space)
    values = oracle.populate_space("0")["values"]
    assert values == {"a": space.space[0].random_sample(2), "b": space.space[1].random_sample(3)}
    assert _compat.next_sample_seed(oracle) == 4


def test_oracle_project_dir(tuner, tmp_path):
    assert_private_api(keras_tuner.Oracle, "_project_dir", "keras_tuner.Oracle._project_dir", "keras-tuner")
    assert _compat.oracle_project_dir(tuner.oracle) == os.path.join(str(tmp_path), "p")
    assert os.path.isdir(_compat.oracle_project_dir(tuner.oracle))


def test_oracle_set_project_dir(tmp_path):
    api = "keras_tuner.Oracle._set_project_dir"
    parameters = ["self", "directory", "project_name"]
    assert_private_api(keras_tuner.Oracle, "_set_project_dir", api, "keras-tuner", parameters)
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="loss", max_trials=1)
    _compat.set_oracle_project_dir(oracle, str(tmp_path), "q")
    assert _compat.oracle_project_dir(oracle) == os.path.join(str(tmp_path), "q")


# KerasTuner's parallel tuning.


def test_distribute_utils_roles(monkeypatch):
    from keras_tuner.src.distribute import utils

    for name in ("has_chief_oracle", "is_chief_oracle"):
        assert_private_api(utils, name, f"keras_tuner.src.distribute.utils.{name}", "keras-tuner", [])
    for variable in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(variable, raising=False)
    assert _compat.distributed_role() is None
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert _compat.distributed_role() == "chief"
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker3")
    assert _compat.distributed_role() == "worker"


def test_oracle_chief_servicer_and_protos(tmp_path):
    from keras_tuner.src.distribute import oracle_chief

    api = "keras_tuner.src.distribute.oracle_chief.OracleServicer"
    assert_private_api(oracle_chief, "OracleServicer", api, "keras-tuner", ["oracle"])
    servicer_class = _compat.oracle_servicer_class()
    for method in ("CreateTrial", "UpdateTrial", "EndTrial", "GetTrial"):
        assert_private_api(
            servicer_class, method, f"{api}.{method}", "keras-tuner", ["self", "request", "context"]
        )
    service, service_grpc = _compat.oracle_service()
    assert hasattr(service_grpc, "add_OracleServicer_to_server") and hasattr(service_grpc, "OracleStub")
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="loss", max_trials=1, seed=1)
    _compat.set_oracle_project_dir(oracle, str(tmp_path), "p")
    servicer = servicer_class(oracle)
    assert servicer.oracle is oracle and servicer.stop_triggered is False
    response = servicer.CreateTrial(service.CreateTrialRequest(tuner_id="worker0"), None)
    assert response.trial.trial_id == "0"
    assert servicer.GetTrial(service.GetTrialRequest(trial_id="0"), None).trial.trial_id == "0"


def test_oracle_client_stub(monkeypatch):
    from keras_tuner.src.distribute import oracle_client

    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker0")
    client = oracle_client.OracleClient(
        keras_tuner.oracles.RandomSearchOracle(objective="loss", max_trials=1)
    )
    stub = _compat.oracle_client_stub(client)
    assert hasattr(stub, "CreateTrial") and hasattr(stub, "GetTrial")
    replacement = object()
    _compat.set_oracle_client_stub(client, replacement)
    # Every request of the client goes through its `stub` attribute.
    source = inspect.getsource(oracle_client.OracleClient)
    assert source.count("self.stub.") >= 6 and client.stub is replacement


def test_oracle_retry_queue(tuner):
    assert_private_api(keras_tuner.Oracle(), "_retry_queue", "keras_tuner.Oracle._retry_queue", "keras-tuner")
    trial = new_trial(tuner)
    _compat.retry_queue(tuner.oracle).append(trial.trial_id)
    del tuner.oracle.ongoing_trials[tuner.tuner_id]
    # The oracle hands a queued trial out again before it creates a new one.
    assert tuner.oracle.create_trial("other").trial_id == trial.trial_id


@pytest.mark.parametrize("values", [["relu", "tanh"], [True], [1, 3], [0.5, 0.25]])
def test_conditions_travel_as_the_same_protos_without_keras_tuners_stray_print(values, capsys):
    from keras_tuner.src.engine import conditions

    assert_private_api(conditions, "Parent", "keras_tuner.src.engine.conditions.Parent", "keras-tuner")
    _compat.install_quiet_condition_protos()
    _compat.install_quiet_condition_protos()  # Once per process, however often called.
    quiet = conditions.Parent.to_proto
    original = quiet.keras_tuner_original
    parent = conditions.Parent("layers", values)

    expected = original(parent)
    assert capsys.readouterr().out == f"{values[0]}\n"  # what KerasTuner 1.4.8 prints
    assert quiet(parent) == expected
    assert capsys.readouterr().out == ""
    assert conditions.Parent.from_proto(quiet(parent)) == parent


def test_utils_save_json_is_made_atomic(tmp_path, monkeypatch):
    from keras_tuner.src import utils

    assert_private_api(utils, "save_json", "keras_tuner.src.utils.save_json", "keras-tuner", ["path", "obj"])
    _compat.install_atomic_json_writes()
    _compat.install_atomic_json_writes()  # Once per process, however often called.
    assert getattr(utils.save_json, "keras_sage_atomic", False)
    path = tmp_path / "state.json"
    utils.save_json(str(path), {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}

    def interrupted(descriptor: int) -> None:
        raise OSError(errno.EIO, "interrupted")

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(OSError, match=r"cannot write .*state\.json \(interrupted"):
        utils.save_json(str(path), {"a": 2})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"a": 1} and os.listdir(tmp_path) == ["state.json"]
    # KerasTuner's oracle, trial and tuner files all go through it.
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="loss", max_trials=1, seed=1)
    _compat.set_oracle_project_dir(oracle, str(tmp_path), "p")
    oracle.save()
    assert json.loads((tmp_path / "p" / "oracle.json").read_text())["seed"] == 1


# optuna's random states.


def test_optuna_lazy_random_state():
    from optuna.samplers import _lazy_random_state

    api = "optuna.samplers._lazy_random_state.LazyRandomState"
    assert_private_api(_lazy_random_state, "LazyRandomState", api, "optuna", ["seed"])
    sampler = optuna.samplers.TPESampler(seed=1)
    states = _compat.sampler_random_states(sampler)
    assert sorted(states) == ["_random_sampler._rng", "_rng"]
    assert all(isinstance(state, np.random.RandomState) for state in states.values())
    # They are the sampler's own: setting one's state changes what the sampler draws.
    saved = states["_random_sampler._rng"].get_state()
    first = states["_random_sampler._rng"].rand()
    _compat.sampler_random_states(sampler)["_random_sampler._rng"].set_state(saved)
    assert sampler._random_sampler._rng.rng.rand() == first
    assert sorted(_compat.sampler_random_states(optuna.samplers.CmaEsSampler(seed=1))) == [
        "_cma_rng",
        "_independent_sampler._rng",
    ]


# Keras.


def test_model_symbolic_build():
    api = "keras.Model._symbolic_build"
    assert_private_api(keras.Model, "_symbolic_build", api, "keras", ["self"])
    assert "data_batch" in inspect.signature(keras.Model._symbolic_build).parameters, (
        f"{api} no longer takes data_batch (checked on {_compat.CHECKED_VERSIONS})"
    )
    model = build_dense(keras_tuner.HyperParameters())
    assert not model.optimizer.built
    assert _compat.symbolic_build(model, (np.zeros((1, 3), "float32"), np.zeros((1, 1), "float32")))
    assert model.optimizer.built
    # On a Keras without it, the wrapper degrades on purpose: nothing is built.
    assert not _compat.symbolic_build(object(), None)


# optuna.


def test_frozen_trial_trial_id():
    study = optuna.create_study()
    study.ask()
    (frozen,) = study.get_trials(deepcopy=False)
    assert_private_api(frozen, "_trial_id", "optuna.trial.FrozenTrial._trial_id", "optuna")
    trial = _compat.running_trial(study, frozen)
    assert trial.number == frozen.number
    trial.suggest_float("x", 0.0, 1.0)
    study.tell(trial, 0.5)
    assert set(study.trials[0].params) == {"x"}
    assert study.trials[0].state == TrialState.COMPLETE


def test_tpe_sampler_sample():
    api = "optuna.samplers.TPESampler._sample"
    parameters = ["self", "study", "trial", "search_space"]
    assert_private_api(optuna.samplers.TPESampler, "_sample", api, "optuna", parameters)
    calls = []

    class CountingSampler(SplitOnceTPESampler):
        def _sample(self, study, trial, search_space):
            calls.append(sorted(search_space))
            return super()._sample(study, trial, search_space)

    study = optuna.create_study(sampler=CountingSampler(n_startup_trials=2, multivariate=False, seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("k", 0, 3), n_trials=4)
    # Optuna's independent TPE calls the hook once per parameter after the start-up trials.
    assert calls == [["x"], ["k"]] * 2, (
        f"optuna no longer calls {api} (checked on {_compat.CHECKED_VERSIONS})"
    )
    # A multi-objective study falls back on optuna's own `_sample`: the same trials as a TPESampler.
    trials = []
    for sampler_class in (optuna.samplers.TPESampler, SplitOnceTPESampler):
        study = optuna.create_study(
            directions=["minimize", "maximize"], sampler=sampler_class(n_startup_trials=2, seed=0)
        )
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_int("k", 0, 3)), n_trials=6)
        trials.append([trial.params for trial in study.trials])
    assert trials[0] == trials[1]


def test_tpe_sampler_module_split_trials():
    api = "optuna.samplers._tpe.sampler._split_trials"
    from optuna.samplers._tpe import sampler as tpe_sampler_module

    assert_private_api(tpe_sampler_module, "_split_trials", api, "optuna", ["study", "trials", "n_below"])
    study = optuna.create_study()
    for value in (3.0, 1.0, 2.0, 0.5):
        study.tell(study.ask(), value)
    study.ask()  # A running trial: always in g(x).
    below, above = _compat.tpe_split_trials(study, study.get_trials(deepcopy=False), 2)
    assert [trial.number for trial in below] == [1, 3]
    assert [trial.number for trial in above] == [0, 2, 4]


def test_tpe_sampler_get_params():
    api = "optuna.samplers.TPESampler._get_params"
    assert_private_api(optuna.samplers.TPESampler, "_get_params", api, "optuna", ["self", "trial", "study"])
    study = optuna.create_study()
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    sampler = optuna.samplers.TPESampler()
    assert _compat.tpe_trial_params(sampler, study.trials[0], study) == study.trials[0].params


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_tpe_sampler_gamma_and_constant_liar():
    gamma = functools.partial(hyperopt_gamma)
    for name in ("_gamma", "_constant_liar"):
        api = f"optuna.samplers.TPESampler.{name}"
        assert_private_api(optuna.samplers.TPESampler(), name, api, "optuna")
    settings = _compat.tpe_settings(optuna.samplers.TPESampler(gamma=gamma, constant_liar=False))
    assert settings == _compat.TPESettings(gamma=gamma, constant_liar=False)


@pytest.mark.parametrize(("name", "api"), _compat.TPE_ESTIMATOR_INTERNALS)
def test_tpe_sampler_parzen_estimator_internals(name, api):
    parameters = {
        "_parzen_estimator_cls": ["observations", "search_space", "parameters"],
        "_compute_acquisition_func": ["samples", "mpe_below", "mpe_above"],
        "_compare": ["samples", "acquisition_func_vals"],
    }.get(name)
    sampler = optuna.samplers.TPESampler(seed=0, n_ei_candidates=5)
    assert_private_api(sampler, name, api, "optuna", parameters)
    # The second half of optuna's TPE on fixed observations: l(x) sits at x = 0.9 and the choice "b".
    search_space = {"x": FloatDistribution(0.0, 1.0), "c": CategoricalDistribution(("a", "b"))}
    below = {"x": np.array([0.9, 0.91]), "c": np.array([1.0, 1.0])}
    above = {"x": np.array([0.1, 0.2, 0.15, 0.3]), "c": np.array([0.0, 0.0, 0.0, 0.0])}
    suggestion = _compat.tpe_suggest(sampler, search_space, below, above)
    assert suggestion["c"] == "b"
    assert 0.6 < suggestion["x"] <= 1.0


@pytest.mark.parametrize(
    ("call", "api", "package"),
    [
        (lambda: _compat.keep_oracle_seed(object(), 1), "keras_tuner.Oracle._seed_state", "keras-tuner"),
        (lambda: _compat.next_sample_seed(object()), "keras_tuner.Oracle._seed_state", "keras-tuner"),
        (lambda: _compat.running_trial(None, object()), "optuna.trial.FrozenTrial._trial_id", "optuna"),
        (lambda: _compat.tpe_settings(object()), "optuna.samplers.TPESampler._gamma", "optuna"),
        (
            lambda: _compat.tpe_trial_params(object(), None, None),
            "optuna.samplers.TPESampler._get_params",
            "optuna",
        ),
    ],
)
def test_a_missing_private_api_is_an_error_naming_it_and_the_checked_versions(call, api, package):
    with pytest.raises(_compat.UnsupportedVersionError) as error:
        call()
    message = str(error.value)
    assert api in message
    assert "keras-tuner 1.4.8, optuna 5.0.0, keras 3.15.1 and TensorFlow 2.21" in message
    assert f"{package} " in message  # The installed version.


def test_a_renamed_tuner_method_is_an_error_naming_it(tuner, monkeypatch):
    monkeypatch.delattr(keras_tuner.Tuner, "_try_build")
    with pytest.raises(_compat.UnsupportedVersionError, match=r"keras_tuner\.Tuner\._try_build is not in"):
        _compat.build_model(tuner, keras_tuner.HyperParameters())
    monkeypatch.delattr(BaseTuner, "_populate_initial_space")
    with pytest.raises(_compat.UnsupportedVersionError, match="_populate_initial_space"):
        _compat.require_initial_space_hook()
