"""Every private KerasTuner, optuna and Keras API that keras-sage uses, in one place.

Each function here wraps one private API (a name with a leading underscore, or a module under
`keras_tuner.src`) and says in its docstring which versions it was checked on: keras-tuner 1.4.8,
optuna 5.0.0, keras 3.15.1 and TensorFlow 2.21, the versions `pyproject.toml` pins ranges around.
A wrapper whose API is gone raises `UnsupportedVersionError`, naming the API, the installed version and
the checked ones; only `symbolic_build` degrades instead, on purpose (see its docstring).
`tests/test_compat.py` has one test per private API, so an upgrade that removes or renames one fails
there first, with the same names in its message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.metadata
import json
import os
from collections.abc import Callable, Iterator
from typing import Any, cast

import keras
import keras_tuner
import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial

from keras_sage._atomic import write_atomically

CHECKED_VERSIONS = "keras-tuner 1.4.8, optuna 5.0.0, keras 3.15.1 and TensorFlow 2.21"


class UnsupportedVersionError(RuntimeError):
    """A private API keras-sage relies on is missing from the installed KerasTuner, optuna or Keras."""


def missing_api_message(api: str, package: str) -> str:
    """The message of an `UnsupportedVersionError`: the API, the installed version, the checked ones.

    Args:
        api: The private API, as `Owner._name`.
        package: Its distribution name (`keras-tuner`, `optuna`, `keras`).

    Returns:
        The message.
    """
    try:
        installed = f"{package} {importlib.metadata.version(package)}"
    except importlib.metadata.PackageNotFoundError:
        installed = f"the installed {package}"
    return (
        f"{api} is not in {installed}; keras-sage uses this private API and was checked on "
        f"{CHECKED_VERSIONS} (see keras_sage/tuners/_compat.py and the ranges pinned in pyproject.toml)."
    )


def _attribute(owner: Any, name: str, api: str, package: str) -> Any:
    """`owner.name`, or an `UnsupportedVersionError` naming `api` when the installed `package` lacks it."""
    try:
        return getattr(owner, name)
    except AttributeError:
        raise UnsupportedVersionError(missing_api_message(api, package)) from None


def _require(owner: Any, name: str, api: str, package: str) -> None:
    """Raises `UnsupportedVersionError`, naming `api`, unless `owner` has `name`."""
    if not hasattr(owner, name):
        raise UnsupportedVersionError(missing_api_message(api, package))


def _require_tuner(name: str) -> None:
    _require(keras_tuner.Tuner, name, f"keras_tuner.Tuner.{name}", "keras-tuner")


def _require_oracle(name: str) -> None:
    _require(keras_tuner.Oracle, name, f"keras_tuner.Oracle.{name}", "keras-tuner")


def _private_module(module: str, api: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UnsupportedVersionError(missing_api_message(api, package)) from None


# KerasTuner's Tuner.


def build_model(tuner: keras_tuner.Tuner, hp: keras_tuner.HyperParameters) -> keras.Model:
    """Builds a candidate as KerasTuner does: `Tuner._try_build` (checked on keras-tuner 1.4.8).

    KerasTuner clears the Keras session, builds under the tuner's distribution strategy, overrides the
    compile arguments given to the tuner and fails a trial whose model exceeds `max_model_size`.

    Args:
        tuner: A `keras_tuner.Tuner`.
        hp: The trial's hyperparameters.

    Returns:
        The built (and compiled) model.

    Example:

    ```python
    model = build_model(tuner, trial.hyperparameters)
    ```
    """
    _require_tuner("_try_build")
    return tuner._try_build(hp)


def copy_callbacks(tuner: keras_tuner.Tuner, callbacks: list[Any]) -> list[Any]:
    """Deep copies of a search's callbacks for one trial: `Tuner._deepcopy_callbacks` (keras-tuner 1.4.8).

    Raises KerasTuner's `FatalValueError` for a callback that cannot be deep-copied.
    """
    _require_tuner("_deepcopy_callbacks")
    return cast("list[Any]", tuner._deepcopy_callbacks(callbacks))


def configure_tensorboard(
    tuner: keras_tuner.Tuner, callbacks: list[Any], trial: keras_tuner.engine.trial.Trial
) -> None:
    """Points TensorBoard callbacks at the trial's log folder and adds KerasTuner's HParams callback.

    `Tuner._configure_tensorboard_dir` (checked on keras-tuner 1.4.8); `callbacks` is changed in place.
    """
    _require_tuner("_configure_tensorboard_dir")
    tuner._configure_tensorboard_dir(callbacks, trial)


def tensorboard_trial_dir(tuner: keras_tuner.Tuner, log_dir: str, trial_id: str) -> str:
    """The folder where `configure_tensorboard` points a TensorBoard callback of base folder `log_dir` for
    a trial (its HParams session): `Tuner._get_tensorboard_dir` (keras-tuner 1.4.8)."""
    _require_tuner("_get_tensorboard_dir")
    return str(tuner._get_tensorboard_dir(log_dir, trial_id, 0))


def checkpoint_path(tuner: keras_tuner.Tuner, trial_id: str) -> str:
    """Where KerasTuner keeps a trial's weights (`get_best_models` loads them from there).

    `Tuner._get_checkpoint_fname` (checked on keras-tuner 1.4.8).
    """
    _require_tuner("_get_checkpoint_fname")
    return str(tuner._get_checkpoint_fname(trial_id))


def build_config_path(tuner: keras_tuner.Tuner, trial_id: str) -> str:
    """Where KerasTuner keeps a trial's model build config, read back before its weights are loaded.

    `Tuner._get_build_config_fname` (checked on keras-tuner 1.4.8).
    """
    _require_tuner("_get_build_config_fname")
    return str(tuner._get_build_config_fname(trial_id))


def require_initial_space_hook() -> None:
    """Checks that KerasTuner still calls the hook `SageTuner._populate_initial_space` overrides.

    `BaseTuner._populate_initial_space` (checked on keras-tuner 1.4.8) declares the search space when a
    tuner is created, by building the model once per conditional scope. If KerasTuner renamed it, the
    override would silently stop running and every search would build those models again; this raises
    instead.
    """
    _require_tuner("_populate_initial_space")


def require_tuner_file_hook() -> None:
    """Checks that KerasTuner still names a tuner's state file with the method `SageTuner` overrides.

    `BaseTuner._get_tuner_fname` (checked on keras-tuner 1.4.8) names the `<tuner id>.json` that decides
    whether a project is reloaded; `SageTuner` names the file its project recorded instead
    (`keras_sage.tuners.project_record`). Renamed, the override would silently stop running and a
    project reopened in another mode would be searched again over its own trials; this raises instead.
    """
    _require_tuner("_get_tuner_fname")


def default_tuner_id() -> str:
    """The tuner id KerasTuner gives this process: `KERASTUNER_TUNER_ID`, else `tuner0` (keras-tuner
    1.4.8's `BaseTuner.__init__`)."""
    return os.environ.get("KERASTUNER_TUNER_ID", "tuner0")


def populate_initial_space_by_building(tuner: keras_tuner.Tuner) -> None:
    """KerasTuner's own `_populate_initial_space`: declares the space by building the model per scope.

    Checked on keras-tuner 1.4.8.
    """
    require_initial_space_hook()
    keras_tuner.Tuner._populate_initial_space(tuner)


def tuner_callback(
    tuner: keras_tuner.Tuner, trial: keras_tuner.engine.trial.Trial
) -> keras.callbacks.Callback:
    """KerasTuner's callback that calls the tuner's `on_epoch_begin/end` and `on_batch_begin/end` hooks.

    `keras_tuner.src.engine.tuner_utils.TunerCallback` (not exported; checked on keras-tuner 1.4.8, whose
    `Tuner.run_trial` adds it to every fit).

    Args:
        tuner: The tuner whose hooks are called.
        trial: The trial being trained, passed to each hook.

    Returns:
        The callback, for `model.fit(callbacks=[...])`.
    """
    api = "keras_tuner.src.engine.tuner_utils.TunerCallback"
    module = _private_module("keras_tuner.src.engine.tuner_utils", api, "keras-tuner")
    return _attribute(module, "TunerCallback", api, "keras-tuner")(tuner, trial)


def require_trial_end_hook() -> None:
    """Checks that KerasTuner still ends each trial through `Tuner.on_trial_end` (keras-tuner 1.4.8).

    `SageTuner.on_trial_end` overrides it to log a failed trial's traceback to the trial's folder and to
    give it a one-line message; `Tuner.on_trial_end` is public, but that KerasTuner calls it right after
    `Tuner._try_run_and_update_trial` set the trial's status and message is not.
    """
    _require_tuner("_try_run_and_update_trial")
    _require_tuner("on_trial_end")


@contextlib.contextmanager
def no_trial_tracebacks() -> Iterator[None]:
    """Stops KerasTuner from printing the traceback of every failed trial while the context is open.

    `BaseTuner._try_run_and_update_trial` prints it when `keras_tuner.src.config.DEBUG` is true, which is
    its default (checked on keras-tuner 1.4.8); the traceback is still kept in the trial's message. The
    flag is restored when the context closes.
    """
    api = "keras_tuner.src.config.DEBUG"
    module = _private_module("keras_tuner.src.config", api, "keras-tuner")
    previous = _attribute(module, "DEBUG", api, "keras-tuner")
    module.DEBUG = False
    try:
        yield
    finally:
        module.DEBUG = previous


# KerasTuner's Oracle.


def keep_oracle_seed(oracle: keras_tuner.Oracle, seed: int | None) -> None:
    """Gives `oracle` the seed it was asked for, 0 included (`None` keeps KerasTuner's random seed).

    KerasTuner's `Oracle` reads a seed of 0 as "no seed" and draws a random one; this sets `Oracle.seed`
    and the private `Oracle._seed_state` it draws random values from (checked on keras-tuner 1.4.8).
    """
    if seed is None:
        return
    _require(oracle, "_seed_state", "keras_tuner.Oracle._seed_state", "keras-tuner")
    oracle.seed = oracle._seed_state = seed


def next_sample_seed(oracle: keras_tuner.Oracle) -> int:
    """The seed for the oracle's next random value, as KerasTuner's random search draws them.

    Returns `Oracle._seed_state` and advances it by one, as `Oracle._random_values` does (checked on
    keras-tuner 1.4.8), so `hp.random_sample(next_sample_seed(oracle))` continues KerasTuner's sequence.
    """
    seed = _attribute(oracle, "_seed_state", "keras_tuner.Oracle._seed_state", "keras-tuner")
    oracle._seed_state = seed + 1
    return int(seed)


def oracle_project_dir(oracle: keras_tuner.Oracle) -> str:
    """The oracle's project directory, created if missing: `Oracle._project_dir` (keras-tuner 1.4.8).

    The tuner sets it when it is created (`set_oracle_project_dir`).
    """
    _require_oracle("_project_dir")
    return str(oracle._project_dir)


def set_oracle_project_dir(oracle: keras_tuner.Oracle, directory: str, project_name: str) -> None:
    """Sets an oracle's project directory without a tuner: `Oracle._set_project_dir` (keras-tuner 1.4.8).

    A tuner does this itself; the oracle tests and benchmarks drive an oracle directly.
    """
    _require_oracle("_set_project_dir")
    oracle._set_project_dir(directory, project_name)


# KerasTuner's parallel tuning (a chief oracle served over gRPC, workers with an `OracleClient`).


def distributed_role() -> str | None:
    """`"chief"` or `"worker"` in KerasTuner's parallel tuning, None in a single-process search.

    KerasTuner decides from its environment variables (`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`,
    `KERASTUNER_ORACLE_PORT`) with `keras_tuner.src.distribute.utils.has_chief_oracle` and
    `is_chief_oracle` (not exported; checked on keras-tuner 1.4.8).
    """
    api = "keras_tuner.src.distribute.utils.has_chief_oracle"
    module = _private_module("keras_tuner.src.distribute.utils", api, "keras-tuner")
    if not _attribute(module, "has_chief_oracle", api, "keras-tuner")():
        return None
    is_chief = _attribute(
        module, "is_chief_oracle", "keras_tuner.src.distribute.utils.is_chief_oracle", "keras-tuner"
    )
    return "chief" if is_chief() else "worker"


def oracle_servicer_class() -> type:
    """KerasTuner's gRPC servicer of a chief oracle, `keras_tuner.src.distribute.oracle_chief.OracleServicer`.

    Not exported; checked on keras-tuner 1.4.8, whose `start_server` serves it (and then polls with
    `sleep(20)`, which `keras_sage.tuners.distributed.serve_chief` replaces).
    """
    api = "keras_tuner.src.distribute.oracle_chief.OracleServicer"
    module = _private_module("keras_tuner.src.distribute.oracle_chief", api, "keras-tuner")
    return cast(type, _attribute(module, "OracleServicer", api, "keras-tuner"))


def oracle_service() -> tuple[Any, Any]:
    """KerasTuner's gRPC service modules: the messages (`service_pb2`) and the stubs (`service_pb2_grpc`).

    `keras_tuner.src.protos.get_service` and `get_service_grpc` (not exported; keras-tuner 1.4.8).
    """
    api = "keras_tuner.src.protos.get_service"
    module = _private_module("keras_tuner.src.protos", api, "keras-tuner")
    get_service = _attribute(module, "get_service", api, "keras-tuner")
    get_grpc = _attribute(
        module, "get_service_grpc", "keras_tuner.src.protos.get_service_grpc", "keras-tuner"
    )
    return get_service(), get_grpc()


def oracle_client_stub(client: Any) -> Any:
    """The gRPC stub a worker's `OracleClient` sends every request through: `OracleClient.stub`.

    `keras_tuner.src.distribute.oracle_client.OracleClient` is not exported (checked on keras-tuner 1.4.8).
    """
    return _attribute(
        client, "stub", "keras_tuner.src.distribute.oracle_client.OracleClient.stub", "keras-tuner"
    )


def set_oracle_client_stub(client: Any, stub: Any) -> None:
    """Replaces the stub of a worker's `OracleClient` (see `oracle_client_stub`)."""
    oracle_client_stub(client)
    client.stub = stub


def retry_queue(oracle: keras_tuner.Oracle) -> list[str]:
    """The trial ids an oracle hands out again before new trials: `Oracle._retry_queue` (keras-tuner 1.4.8).

    `Oracle.reload` puts the trials that were running there, `Oracle.create_trial` pops from its end.
    """
    return cast(
        "list[str]", _attribute(oracle, "_retry_queue", "keras_tuner.Oracle._retry_queue", "keras-tuner")
    )


def install_atomic_json_writes() -> None:
    """Makes KerasTuner write its JSON files (`oracle.json`, `trial.json`, the tuner's) atomically.

    KerasTuner writes them with `keras_tuner.src.utils.save_json` (not exported; checked on keras-tuner
    1.4.8), truncating the file first, so a process killed mid-write or a full disk leaves a half-written
    file that no search can reload. This replaces that function, once per process, with one that writes
    local paths through `keras_sage._atomic.write_atomically` (a temporary file renamed over the old one)
    and leaves other paths (`gs://...`) to KerasTuner.
    """
    api = "keras_tuner.src.utils.save_json"
    module = _private_module("keras_tuner.src.utils", api, "keras-tuner")
    original = _attribute(module, "save_json", api, "keras-tuner")
    if getattr(original, "keras_sage_atomic", False):
        return

    def save_json(path: str, obj: Any) -> str:
        text = json.dumps(obj)
        if "://" in str(path):
            return cast(str, original(path, obj))
        write_atomically(path, lambda file: file.write(text.encode()))
        return text

    save_json.keras_sage_atomic = True  # type: ignore[attr-defined]
    module.save_json = save_json


def install_quiet_condition_protos() -> None:
    """Stops KerasTuner's parallel tuning from printing a stray line per conditional hyperparameter.

    `keras_tuner.src.engine.conditions.Parent.to_proto` (not exported; checked on keras-tuner 1.4.8) prints
    its first value each time a conditional hyperparameter crosses the wire between chief and workers, so a
    search's output fills with lone numbers between its progress lines. This replaces it, once per process,
    with one that builds the same `Condition` proto without printing.
    """
    api = "keras_tuner.src.engine.conditions.Parent.to_proto"
    conditions = _private_module("keras_tuner.src.engine.conditions", api, "keras-tuner")
    protos = _private_module("keras_tuner.src.protos", api, "keras-tuner")
    parent = _attribute(conditions, "Parent", api, "keras-tuner")
    _require(parent, "to_proto", api, "keras-tuner")
    if getattr(parent.to_proto, "keras_sage_quiet", False):
        return

    def to_proto(self: Any) -> Any:
        proto = protos.get_proto()
        first = self.values[0]
        # KerasTuner's order of checks: a bool is also an int.
        if isinstance(first, str):
            field = "string_value"
        elif isinstance(first, bool):
            field = "boolean_value"
        elif isinstance(first, int):
            field = "int_value"
        else:
            field = "float_value"
        values = [proto.Value(**{field: value}) for value in self.values]
        return proto.Condition(parent=proto.Condition.Parent(name=self.name, values=values))

    to_proto.keras_sage_quiet = True  # type: ignore[attr-defined]
    to_proto.keras_tuner_original = parent.to_proto  # type: ignore[attr-defined]
    parent.to_proto = to_proto


# Keras.


def symbolic_build(model: keras.Model, data_batch: Any) -> bool:
    """Creates a compiled model's optimizer, loss and metric variables before `fit` traces its step.

    `Model._symbolic_build(data_batch=...)`, which Keras itself calls before a distributed fit (checked
    on keras 3.15.1 with TensorFlow 2.21). The one wrapper here that degrades instead of raising, on
    purpose: on a Keras without it, nothing is built, `fit` builds the same variables while tracing
    (tracing the first step twice, which only costs time), and this returns False.

    Args:
        model: A compiled model.
        data_batch: A batch of training data, or its `tf.TensorSpec` structure.

    Returns:
        Whether the variables were built.
    """
    build = getattr(model, "_symbolic_build", None)
    if build is None:
        return False
    build(data_batch=data_batch)
    return True


# optuna.


def running_trial(study: optuna.Study, frozen: FrozenTrial) -> optuna.Trial:
    """The `optuna.Trial` of a RUNNING frozen trial, to suggest for or tell it after a reload.

    `FrozenTrial._trial_id`, the storage id `optuna.Trial` needs and that optuna names only privately
    (checked on optuna 5.0.0).
    """
    trial_id = _attribute(frozen, "_trial_id", "optuna.trial.FrozenTrial._trial_id", "optuna")
    return optuna.Trial(study, trial_id)


def sampler_random_states(sampler: optuna.samplers.BaseSampler) -> dict[str, Any]:
    """The numpy random states of an optuna sampler and of the samplers it holds, by attribute path.

    Optuna's samplers keep their random state in private attributes, mostly as a `LazyRandomState`
    (`optuna.samplers._lazy_random_state`, checked on optuna 5.0.0): `TPESampler._rng` and the
    `RandomSampler` it starts with, `_random_sampler._rng`; `CmaEsSampler._cma_rng`; and so on. This
    walks the sampler's attributes (and those of samplers it holds) for `np.random.RandomState`,
    `np.random.Generator` and `LazyRandomState` objects, so that a search can save and restore every
    random state as data.

    Args:
        sampler: Any optuna sampler.

    Returns:
        `{"_rng": RandomState, "_random_sampler._rng": RandomState, ...}`: the live objects, whose state
        `get_state`/`set_state` (RandomState) or `bit_generator.state` (Generator) read and set.
    """
    api = "optuna.samplers._lazy_random_state.LazyRandomState"
    module = _private_module("optuna.samplers._lazy_random_state", api, "optuna")
    lazy = _attribute(module, "LazyRandomState", api, "optuna")
    found: dict[str, Any] = {}

    def walk(owner: Any, prefix: str, depth: int) -> None:
        for name, value in sorted(vars(owner).items()):
            if isinstance(value, (np.random.RandomState, np.random.Generator)):
                found[prefix + name] = value
            elif isinstance(value, lazy):
                found[prefix + name] = value.rng
            elif isinstance(value, optuna.samplers.BaseSampler) and depth < 3:
                walk(value, f"{prefix}{name}.", depth + 1)

    walk(sampler, "", 0)
    return found


@dataclasses.dataclass(frozen=True)
class TPESettings:
    """The settings of a `TPESampler` that decide how it splits the history.

    Attributes:
        gamma: The size of l(x)'s set for N finished trials (None until optuna picks its default).
        constant_liar: Whether running trials count in g(x).
    """

    gamma: Callable[[int], int] | None
    constant_liar: bool


def tpe_settings(sampler: optuna.samplers.TPESampler) -> TPESettings:
    """`TPESampler._gamma` and `TPESampler._constant_liar` (checked on optuna 5.0.0)."""
    return TPESettings(
        gamma=_attribute(sampler, "_gamma", "optuna.samplers.TPESampler._gamma", "optuna"),
        constant_liar=_attribute(
            sampler, "_constant_liar", "optuna.samplers.TPESampler._constant_liar", "optuna"
        ),
    )


def require_tpe_sample_hook() -> None:
    """Checks that `TPESampler._sample(study, trial, search_space)` still exists (optuna 5.0.0).

    It is the step both of optuna's TPE modes call for every suggestion once the start-up trials are
    done; `keras_sage.tuners.oracles.tpe.SplitOnceTPESampler` overrides it.
    """
    _require(optuna.samplers.TPESampler, "_sample", "optuna.samplers.TPESampler._sample", "optuna")


def tpe_sample_as_optuna(
    sampler: optuna.samplers.TPESampler,
    study: optuna.Study,
    trial: FrozenTrial,
    search_space: dict[str, BaseDistribution],
) -> dict[str, Any]:
    """Optuna's own `TPESampler._sample`, for an override to fall back on (checked on optuna 5.0.0)."""
    require_tpe_sample_hook()
    return optuna.samplers.TPESampler._sample(sampler, study, trial, search_space)


def tpe_split_trials(
    study: optuna.Study, trials: list[FrozenTrial], n_below: int
) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
    """Optuna's TPE split of the history into l(x)'s `n_below` best trials and g(x)'s others.

    `optuna.samplers._tpe.sampler._split_trials` (checked on optuna 5.0.0): complete trials by value,
    then pruned and infeasible ones; running trials go to g(x); both lists in trial-number order.
    """
    api = "optuna.samplers._tpe.sampler._split_trials"
    module = _private_module("optuna.samplers._tpe.sampler", api, "optuna")
    split_trials = _attribute(module, "_split_trials", api, "optuna")
    return cast("tuple[list[FrozenTrial], list[FrozenTrial]]", split_trials(study, trials, n_below))


def tpe_trial_params(
    sampler: optuna.samplers.TPESampler, trial: FrozenTrial, study: optuna.Study
) -> dict[str, Any]:
    """A trial's parameters as TPE sees them: `TPESampler._get_params` (checked on optuna 5.0.0).

    A running trial's include what multivariate TPE has already chosen for it.
    """
    get_params = _attribute(sampler, "_get_params", "optuna.samplers.TPESampler._get_params", "optuna")
    return cast("dict[str, Any]", get_params(trial, study))


# The private parts of TPESampler that `tpe_suggest` uses, as (attribute, the API's name).
TPE_ESTIMATOR_INTERNALS = (
    ("_parzen_estimator_cls", "optuna.samplers.TPESampler._parzen_estimator_cls"),
    ("_parzen_estimator_parameters", "optuna.samplers.TPESampler._parzen_estimator_parameters"),
    ("_rng", "optuna.samplers.TPESampler._rng"),
    ("_n_ei_candidates", "optuna.samplers.TPESampler._n_ei_candidates"),
    ("_compute_acquisition_func", "optuna.samplers.TPESampler._compute_acquisition_func"),
    ("_compare", "optuna.samplers.TPESampler._compare"),
)


def tpe_suggest(
    sampler: optuna.samplers.TPESampler,
    search_space: dict[str, BaseDistribution],
    below: dict[str, np.ndarray],
    above: dict[str, np.ndarray],
) -> dict[str, Any]:
    """The second half of optuna's `TPESampler._sample`: l(x) and g(x) from observations, then the choice.

    Builds the sampler's Parzen estimators, draws its `n_ei_candidates` from l(x) with its random state
    and keeps the draw with the highest log l(x) - log g(x), all with the sampler's own private parts
    (`TPE_ESTIMATOR_INTERNALS`, checked on optuna 5.0.0), so the same observations and random state
    give optuna's suggestion.

    Args:
        sampler: A `TPESampler`.
        search_space: The parameters to suggest, with their distributions.
        below: l(x)'s observations: each parameter's internal values, in trial-number order.
        above: g(x)'s observations, likewise.

    Returns:
        The suggested values, in optuna's external representation.
    """
    parts = {name: _attribute(sampler, name, api, "optuna") for name, api in TPE_ESTIMATOR_INTERNALS}
    estimator, parameters = parts["_parzen_estimator_cls"], parts["_parzen_estimator_parameters"]
    below_estimator = estimator(below, search_space, parameters)
    above_estimator = estimator(above, search_space, parameters)
    samples = below_estimator.sample(parts["_rng"].rng, parts["_n_ei_candidates"])
    acquisition = parts["_compute_acquisition_func"](samples, below_estimator, above_estimator)
    chosen = parts["_compare"](samples, acquisition)
    return {name: distribution.to_external_repr(chosen[name]) for name, distribution in search_space.items()}
