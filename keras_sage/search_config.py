"""A whole search from one TOML file: what `keras-sage search CONFIG.toml` and `keras-sage worker` read.

```toml
[search]
directory = "searches"      # relative paths are read from the config file's folder
project_name = "digits"     # default: the config file's name
max_trials = 20
alpha = 1.0
premature_epochs = 1        # or premature_steps
seed = 1
proxy_weights = { naswot = 0.0066 }  # optional: P + α·TG + β·proxy, β by proxy name
[data]
name = "digits"             # digits | cifar10 | cifar100 | imagenet64 | image_folder (with path = ...)
image_size = 16
[hypermodel]
name = "cnn"                # cnn | cells | nasbench201 | "package.module:callable"; other keys: arguments
max_layers = 10
[teacher]
path = "teacher.h5"
[oracle]
name = "tpe"                # tpe | reinforce | random | an optuna sampler's class name; other keys: its
                            # arguments
```

Every key is checked when the file is read, before any data is loaded: an unknown section or key, a
value of the wrong type or out of range, or an unknown name is a `ConfigError` (a `ValueError`) that names
the file, the section and the key and lists what is valid. The keys of `[hypermodel]` and `[oracle]`
other than `name` are the arguments of the hypermodel's or the oracle's constructor (for an optuna
sampler, of the sampler or of `keras_sage.tuners.OptunaOracle`) and are checked against its signature.

A `"package.module:callable"` hypermodel is imported and called with the other keys (and with
`num_classes` and `input_shape` from the data when it takes them); it returns a `keras_tuner.HyperModel`
or a build function `build(hp) -> keras.Model`. The config names code to run: only run configs you trust.

Example:

```python
config = load_search_config("search.toml")
data = load_search_data(config)
tuner = build_tuner(config, data)
tuner.search(*data.fit_args, **data.fit_kwargs)
```
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keras_sage import contract
from keras_sage._errors import first_line

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SECTIONS = ("search", "data", "hypermodel", "teacher", "oracle")
HYPERMODELS = ("cnn", "cells", "nasbench201")
ORACLES = ("tpe", "reinforce", "random")
DATASETS = ("digits", "cifar10", "cifar100", "imagenet64", "image_folder")
DISTRIBUTION_STRATEGIES = ("none", "mirrored")

# [search] and [teacher]: key -> (type check, default). `None` as a default means "not set".
_INT = "an integer"
_POSITIVE_INT = "a positive integer"
_NON_NEGATIVE_NUMBER = "a number of at least 0"
_STRING = "a string"
_BOOLEAN = "true or false"
_NAMES = "an array of metric names"
_PROXY_WEIGHTS = f"a table of finite numbers by proxy name ({', '.join(contract.PROXY_NAMES)})"
SEARCH_KEYS: dict[str, tuple[str, Any]] = {
    "directory": (_STRING, "searches"),
    "project_name": (_STRING, None),
    "max_trials": (_POSITIVE_INT, 10),
    "alpha": (_NON_NEGATIVE_NUMBER, 1.0),
    "premature_epochs": (_POSITIVE_INT, None),
    "premature_steps": (_POSITIVE_INT, None),
    "seed": (_INT, None),
    "batch_size": (_POSITIVE_INT, 64),
    "overwrite": (_BOOLEAN, False),
    "max_consecutive_failed_trials": (_POSITIVE_INT, 10),
    "distribution_strategy": (_STRING, "none"),
    # A Pareto search (keras_sage.tuners.pareto): e.g. ["premature_accuracy", "teacher_guidance"].
    "objectives": (_NAMES, None),
    # The field's proxies at initialisation as score terms (SageTuner's proxy_weights).
    "proxy_weights": (_PROXY_WEIGHTS, None),
}
TEACHER_KEYS: dict[str, tuple[str, Any]] = {
    "path": (_STRING, None),
    "max_features": (_POSITIVE_INT, None),
    "probe_batch_size": (_POSITIVE_INT, 128),
}
# [data]: the keys each data set takes besides `name` (batch_size comes from [search]).
DATA_KEYS: dict[str, tuple[str, ...]] = {
    "digits": ("image_size", "channels", "validation_fraction", "probe_size", "seed", "standardized"),
    "cifar10": ("data_dir", "validation_size", "seed", "download", "cache", "probe_size"),
    "cifar100": ("data_dir", "validation_size", "seed", "download", "cache", "probe_size"),
    "imagenet64": (
        "data_dir",
        "source",
        "manual_dir",
        "validation_size",
        "seed",
        "download",
        "shuffle_buffer",
        "cache",
        "probe_size",
    ),
    "image_folder": ("path", "image_size", "validation_split", "seed", "color_mode", "probe_size"),
}
# Keys that hold paths, read relative to the config file's folder.
_PATH_KEYS = {"search": ("directory",), "teacher": ("path",), "data": ("path", "data_dir", "manual_dir")}
# Probe images drawn from the validation split of the data sets that have no probe split of their own.
DEFAULT_FOLDER_PROBE_SIZE = 1000
DEFAULT_FOLDER_VALIDATION_SPLIT = 0.1
# Arguments the search sets itself, never taken from [oracle] or [hypermodel].
_ORACLE_ARGUMENTS_SET_BY_SEARCH = (
    "self",
    "objective",
    "max_trials",
    "seed",
    "hyperparameters",
    "max_consecutive_failed_trials",
    "search_space",
    "sampler",
)


class ConfigError(ValueError):
    """A search config is invalid; the message names the file, the section and the key."""


@dataclass(frozen=True)
class SearchConfig:
    """A checked search config: each section's keys, with the defaults of `[search]` and `[teacher]`.

    Attributes:
        path: The config file.
        search: `[search]`, every key of `SEARCH_KEYS` (unset ones `None`), paths made absolute.
        data: `[data]`, with `name`.
        hypermodel: `[hypermodel]`, with `name`.
        teacher: `[teacher]`, every key of `TEACHER_KEYS`, `path` absolute.
        oracle: `[oracle]`, with `name` (`"random"` when the section is absent).
    """

    path: Path
    search: dict[str, Any]
    data: dict[str, Any]
    hypermodel: dict[str, Any]
    teacher: dict[str, Any]
    oracle: dict[str, Any] = field(default_factory=lambda: {"name": "random"})

    @property
    def project_dir(self) -> Path:
        """The search's project directory, `directory/project_name`."""
        return Path(str(self.search["directory"])) / str(self.search["project_name"])

    def error(self, section: str, problem: str) -> ConfigError:
        """A `ConfigError` naming this file and `[section]`."""
        return ConfigError(f"{self.path}: [{section}] {problem}")


@dataclass(frozen=True)
class SearchData:
    """The data a config's search trains and scores on.

    Attributes:
        fit_args: Positional arguments of `tuner.search` (the training arrays, or dataset).
        fit_kwargs: Its keyword arguments (`validation_data`, and `batch_size` for arrays).
        input_shape: The shape of one image.
        num_classes: The number of classes.
        probe_images: The probe images the teacher must have been registered on.
        probe_labels: Their labels.
    """

    fit_args: tuple[Any, ...]
    fit_kwargs: dict[str, Any]
    input_shape: tuple[int, ...]
    num_classes: int
    probe_images: np.ndarray
    probe_labels: np.ndarray | None


def load_search_config(path: str | os.PathLike[str]) -> SearchConfig:
    """Reads and checks a search config (TOML).

    Args:
        path: The config file.

    Returns:
        The `SearchConfig`.

    Raises:
        FileNotFoundError: The file does not exist.
        ConfigError: The file is not TOML, or a section, key, value or name is invalid.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"search config not found: {path}")
    try:
        document = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not a valid TOML file ({first_line(error)})") from None
    unknown = [name for name in document if name not in SECTIONS]
    if unknown:
        raise ConfigError(
            f"{path}: unknown section(s) {', '.join(f'[{name}]' for name in unknown)}; "
            f"valid sections: {', '.join(f'[{name}]' for name in SECTIONS)}"
        )
    for name, section in document.items():
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: {name} must be a section [{name}], not a value")
    for required in ("data", "hypermodel", "teacher"):
        if required not in document:
            raise ConfigError(f"{path}: the section [{required}] is missing")
    folder = path.resolve().parent
    search = _checked_keys(path, "search", document.get("search", {}), SEARCH_KEYS)
    search["project_name"] = search["project_name"] or path.stem
    if search["premature_epochs"] is not None and search["premature_steps"] is not None:
        raise ConfigError(f"{path}: [search] give premature_epochs or premature_steps, not both")
    if search["distribution_strategy"] not in DISTRIBUTION_STRATEGIES:
        raise ConfigError(
            f"{path}: [search] distribution_strategy must be one of {', '.join(DISTRIBUTION_STRATEGIES)}; "
            f"got {search['distribution_strategy']!r}"
        )
    unknown = [name for name in search["objectives"] or () if not contract.is_objective_metric(name)]
    if unknown:
        # Refused here, before a search takes its project's lock or creates its directory.
        raise ConfigError(
            f"{path}: [search] objectives: {unknown[0]!r} is not a metric SageTuner reports; give score, "
            "premature_accuracy, teacher_guidance, S_<layer>, params or flops"
        )
    teacher = _checked_keys(path, "teacher", document["teacher"], TEACHER_KEYS)
    if teacher["path"] is None:
        raise ConfigError(f"{path}: [teacher] path is missing (the teacher file)")
    data = _named_section(path, "data", document["data"], DATASETS)
    unknown = [key for key in data if key != "name" and key not in DATA_KEYS[data["name"]]]
    if unknown:
        raise ConfigError(
            f"{path}: [data] unknown key(s) {', '.join(unknown)} for data set {data['name']!r}; "
            f"valid keys: name, {', '.join(DATA_KEYS[data['name']])}"
        )
    if data["name"] == "image_folder" and "path" not in data:
        raise ConfigError(f"{path}: [data] image_folder needs path = the folder of class folders")
    hypermodel = _named_section(path, "hypermodel", document["hypermodel"], HYPERMODELS, allow_import=True)
    oracle = _named_section(path, "oracle", document.get("oracle", {"name": "random"}), oracle_names())
    sections = {"search": search, "teacher": teacher, "data": data}
    for section_name, keys in _PATH_KEYS.items():
        section = sections[section_name]
        for key in keys:
            if isinstance(section.get(key), str):
                section[key] = str(folder / os.path.expanduser(section[key]))
    return SearchConfig(path, search, data, hypermodel, teacher, oracle)


def oracle_names() -> tuple[str, ...]:
    """The names `[oracle] name` takes: `tpe`, `reinforce`, `random`, then optuna's sampler classes."""
    return (*ORACLES, *sorted(_optuna_samplers()))


def _optuna_samplers() -> dict[str, type]:
    import optuna

    return {
        name: sampler
        for name, sampler in vars(optuna.samplers).items()
        if inspect.isclass(sampler)
        and issubclass(sampler, optuna.samplers.BaseSampler)
        and not inspect.isabstract(sampler)
        and not name.startswith("Base")
        and name != "PartialFixedSampler"
    }


def _checked_keys(
    path: Path, section: str, values: Mapping[str, Any], keys: Mapping[str, tuple[str, Any]]
) -> dict[str, Any]:
    """The section's values, each checked against its kind in `keys`, with the defaults filled in."""
    unknown = [key for key in values if key not in keys]
    if unknown:
        raise ConfigError(
            f"{path}: [{section}] unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(keys)}"
        )
    checked = {}
    for key, (kind, default) in keys.items():
        if key not in values:
            checked[key] = default
            continue
        value = values[key]
        if not _is_kind(value, kind):
            raise ConfigError(
                f"{path}: [{section}] {key} must be {kind}; got {_toml_repr(value)} ({_toml_type(value)})"
            )
        checked[key] = float(value) if kind == _NON_NEGATIVE_NUMBER else value
    return checked


def _is_kind(value: Any, kind: str) -> bool:
    if kind == _BOOLEAN:
        return isinstance(value, bool)
    if kind == _STRING:
        return isinstance(value, str) and bool(value)
    if kind == _NAMES:
        return isinstance(value, list) and bool(value) and all(isinstance(name, str) for name in value)
    if kind == _PROXY_WEIGHTS:
        return isinstance(value, dict) and all(
            name in contract.PROXY_NAMES
            and isinstance(beta, (int, float))
            and not isinstance(beta, bool)
            and math.isfinite(beta)
            for name, beta in value.items()
        )
    if isinstance(value, bool):
        return False
    if kind == _INT:
        return isinstance(value, int)
    if kind == _POSITIVE_INT:
        return isinstance(value, int) and value >= 1
    return isinstance(value, (int, float)) and math.isfinite(value) and value >= 0


def _toml_type(value: Any) -> str:
    names = {bool: "a boolean", str: "a string", int: "an integer", float: "a number", list: "an array"}
    return names.get(type(value), "a table" if isinstance(value, dict) else type(value).__name__)


def _toml_repr(value: Any) -> str:
    """A value as TOML writes it (`true`, `"text"`, `1.5`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml_repr(item)}" for key, item in value.items()) + " }"
    return repr(value)


def _named_section(
    path: Path, section: str, values: Mapping[str, Any], names: tuple[str, ...], allow_import: bool = False
) -> dict[str, Any]:
    """A section whose `name` picks one of `names` (or, with `allow_import`, a `module:callable`)."""
    name = values.get("name")
    if name is None:
        raise ConfigError(f"{path}: [{section}] name is missing; valid names: {', '.join(names)}")
    importable = allow_import and isinstance(name, str) and ":" in name
    if name not in names and not importable:
        extra = ' or "package.module:callable"' if allow_import else ""
        raise ConfigError(
            f"{path}: [{section}] unknown name {_toml_repr(name)}; valid names: {', '.join(names)}{extra}"
        )
    return dict(values)


# Data.


def load_search_data(config: SearchConfig) -> SearchData:
    """Loads the config's `[data]`: training and validation data, the input shape and the probe set.

    `digits` is offline (scikit-learn's bundled digits) and has its own probe split. `cifar10`,
    `cifar100` and `imagenet64` read tensorflow-datasets (`data_dir`; `download = false` fails at once
    when the data is absent) and draw `probe_size` probe images (default 5,000, the paper's) from the
    validation split with `keras_sage.datasets.probe_set`; `image_folder` does the same on a held-out
    `validation_split` of the folder (default 1,000 probe images).

    Args:
        config: The search config.

    Returns:
        The `SearchData`.

    Raises:
        ConfigError: A value of `[data]` is invalid for its data set.
        FileNotFoundError: The data is not where the config says.
    """
    from keras_sage import datasets

    options = {key: value for key, value in config.data.items() if key != "name"}
    name = config.data["name"]
    batch_size = config.search["batch_size"]
    try:
        if name == "digits":
            splits = datasets.digits(**options)
            return SearchData(
                fit_args=(splits.x_train, splits.y_train),
                fit_kwargs={"validation_data": (splits.x_val, splits.y_val), "batch_size": batch_size},
                input_shape=tuple(splits.x_train.shape[1:]),
                num_classes=splits.num_classes,
                probe_images=splits.x_probe,
                probe_labels=splits.y_probe,
            )
        if name == "image_folder":
            return _image_folder_data(options, batch_size)
        probe_size = options.pop("probe_size", datasets.probes.DEFAULT_PROBE_SIZE)
        loader: Callable[..., Any] = getattr(datasets, name)
        tfds_data = loader(batch_size=batch_size, **options)
        probe_images, probe_labels = datasets.probe_set(tfds_data, n=probe_size)
        return SearchData(
            fit_args=(tfds_data.train,),
            fit_kwargs={"validation_data": tfds_data.validation},
            input_shape=tuple(tfds_data.input_shape),
            num_classes=tfds_data.num_classes,
            probe_images=probe_images,
            probe_labels=probe_labels,
        )
    except (ValueError, TypeError) as error:
        raise config.error("data", f"{name}: {first_line(error)}") from None


def _image_folder_data(options: dict[str, Any], batch_size: int) -> SearchData:
    from keras_sage import datasets

    image_size = options.pop("image_size", (32, 32))
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    probe_size = options.pop("probe_size", DEFAULT_FOLDER_PROBE_SIZE)
    options.setdefault("validation_split", DEFAULT_FOLDER_VALIDATION_SPLIT)
    train, validation = datasets.image_folder(
        options.pop("path"), image_size, subset="both", batch_size=batch_size, **options
    )
    channels = {"grayscale": 1, "rgb": 3, "rgba": 4}[options.get("color_mode", "rgb")]
    probe_images, probe_labels = datasets.probe_set(
        validation, n=probe_size, num_classes=len(train.class_names)
    )
    return SearchData(
        fit_args=(train,),
        fit_kwargs={"validation_data": validation},
        input_shape=(*image_size, channels),
        num_classes=len(train.class_names),
        probe_images=probe_images,
        probe_labels=probe_labels,
    )


# Hypermodel and oracle.


def build_hypermodel(config: SearchConfig, data: SearchData) -> Any:
    """The config's `[hypermodel]` for the data's input shape and number of classes.

    Args:
        config: The search config.
        data: Its data (`load_search_data`).

    Returns:
        A `keras_tuner.HyperModel` (or a user's build function).

    Raises:
        ConfigError: An unknown argument, a value the hypermodel refuses, or a callable that cannot be
            imported.
    """
    from keras_sage.hypermodels import CellSearchSpace, CNNSearchSpace, NASBench201SearchSpace

    name = config.hypermodel["name"]
    arguments = {key: value for key, value in config.hypermodel.items() if key != "name"}
    factory: Callable[..., Any]
    if name == "cnn":
        factory = CNNSearchSpace
    elif name == "cells":
        factory = CellSearchSpace
    elif name == "nasbench201":
        factory = NASBench201SearchSpace
    else:
        factory = _import_callable(config, name)
    shape = {"num_classes": data.num_classes, "input_shape": data.input_shape}
    accepted = _accepted_arguments(factory)
    for key, value in shape.items():
        if key not in arguments and (accepted is None or key in accepted):
            arguments[key] = value
    classes = arguments.get("num_classes")
    if isinstance(classes, int) and not isinstance(classes, bool) and classes < data.num_classes:
        raise config.error(
            "hypermodel",
            f"num_classes = {classes}, but the data's labels go up to {data.num_classes - 1} "
            f"({data.num_classes} classes); leave num_classes out to take the data's",
        )
    # The section's `name` picks the hypermodel; a HyperModel's own `name` argument is not set from it.
    own = None if accepted is None else [key for key in accepted if key not in (*shape, "self", "name")]
    _check_arguments(config, "hypermodel", name, arguments, own, set(shape))
    try:
        return factory(**arguments)
    except (ValueError, TypeError) as error:
        raise config.error("hypermodel", f"{name}: {first_line(error)}") from None


def _import_callable(config: SearchConfig, target: str) -> Callable[..., Any]:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise config.error("hypermodel", f"cannot import {module_name!r}: {first_line(error)}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise config.error("hypermodel", f"module {module_name!r} has no callable {attribute!r}")
    return factory  # type: ignore[no-any-return]


def _accepted_arguments(factory: Callable[..., Any]) -> list[str] | None:
    """The keyword arguments a callable takes, or None if it takes any (`**kwargs`) or cannot be read."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [parameter.name for parameter in parameters if parameter.kind in keyword]


def _check_arguments(
    config: SearchConfig,
    section: str,
    name: str,
    arguments: Mapping[str, Any],
    valid: list[str] | None,
    supplied: set[str] = frozenset(),  # type: ignore[assignment]
) -> None:
    if valid is None:
        return
    unknown = [key for key in arguments if key not in valid and key not in supplied]
    if unknown:
        raise config.error(
            section,
            f"unknown key(s) {', '.join(unknown)} for {name!r}; valid keys: name, {', '.join(valid)}",
        )


def build_oracle(config: SearchConfig, hypermodel: Any) -> Any:
    """The config's `[oracle]`, maximizing `score`, with `[search]`'s max_trials, seed and failure limit.

    Args:
        config: The search config.
        hypermodel: The search space (`ReinforceOracle` reads its layer structure).

    Returns:
        A KerasTuner oracle.

    Raises:
        ConfigError: An unknown argument, or a value the oracle (or sampler) refuses.
    """
    import keras_tuner

    from keras_sage.tuners import OptunaOracle, ReinforceOracle, TPEOracle, _compat
    from keras_sage.tuners.pareto import SCORE_OBJECTIVE, named_objectives

    name = config.oracle["name"]
    arguments = {key: value for key, value in config.oracle.items() if key != "name"}
    names = config.search["objectives"]
    try:
        objective = SCORE_OBJECTIVE if names is None else named_objectives(names)
    except ValueError as error:
        raise config.error("search", f"objectives: {error}") from None
    common = {
        "objective": objective,
        "max_trials": config.search["max_trials"],
        "seed": config.search["seed"],
        "max_consecutive_failed_trials": config.search["max_consecutive_failed_trials"],
    }
    oracle_class: Callable[..., Any]
    try:
        if name in ORACLES:
            oracle_class = {
                "tpe": TPEOracle,
                "reinforce": ReinforceOracle,
                "random": keras_tuner.oracles.RandomSearchOracle,
            }[name]
            _check_arguments(config, "oracle", name, arguments, _oracle_arguments(oracle_class))
            if name == "reinforce":
                common["search_space"] = hypermodel
            oracle = oracle_class(**common, **arguments)
            # KerasTuner's random search reads a seed of 0 as none; TPE and REINFORCE keep it themselves.
            _compat.keep_oracle_seed(oracle, config.search["seed"])
            return oracle
        sampler_class = _optuna_samplers()[name]
        sampler_keys = _accepted_arguments(sampler_class)
        oracle_keys = _oracle_arguments(OptunaOracle)
        valid = None if sampler_keys is None else [*sampler_keys, *oracle_keys]
        _check_arguments(config, "oracle", name, arguments, valid)
        sampler_arguments = {
            key: value
            for key, value in arguments.items()
            if key not in oracle_keys and (sampler_keys is None or key in sampler_keys)
        }
        if config.search["seed"] is not None and (sampler_keys is None or "seed" in sampler_keys):
            sampler_arguments.setdefault("seed", config.search["seed"])
        oracle_arguments = {key: value for key, value in arguments.items() if key in oracle_keys}
        return OptunaOracle(sampler_class(**sampler_arguments), **common, **oracle_arguments)
    except (ValueError, TypeError) as error:
        if isinstance(error, ConfigError):
            raise
        raise config.error("oracle", f"{name}: {first_line(error)}") from None


def _oracle_arguments(oracle_class: Callable[..., Any]) -> list[str]:
    accepted = _accepted_arguments(oracle_class) or []
    return [key for key in accepted if key not in _ORACLE_ARGUMENTS_SET_BY_SEARCH]


# The tuner.


def build_tuner(
    config: SearchConfig,
    data: SearchData,
    tuner_class: type | None = None,
    **kwargs: Any,
) -> Any:
    """The config's `SageTuner`: hypermodel, oracle, teacher (checked against the data's probe set).

    Args:
        config: The search config.
        data: Its data (`load_search_data`).
        tuner_class: `SageTuner` or a subclass (default `SageTuner`).
        **kwargs: More arguments of the tuner, overriding the config's (e.g. `overwrite=False` on a
            worker).

    Returns:
        The tuner.

    Raises:
        ValueError: The teacher was registered on another probe set than the data's (the message gives
            both fingerprints), or does not fit the hypermodel.
        TeacherFileError: The teacher file is invalid.
    """
    from keras_sage.tuners import SageTuner

    hypermodel = build_hypermodel(config, data)
    oracle = build_oracle(config, hypermodel)
    search = config.search
    arguments: dict[str, Any] = {
        "teacher": config.teacher["path"],
        "alpha": search["alpha"],
        "proxy_weights": search["proxy_weights"],
        "premature_epochs": search["premature_epochs"],
        "premature_steps": search["premature_steps"],
        "oracle": oracle,
        "seed": search["seed"],
        "probe": (data.probe_images, data.probe_labels),
        "max_features": config.teacher["max_features"],
        "probe_batch_size": config.teacher["probe_batch_size"],
        "directory": search["directory"],
        "project_name": search["project_name"],
        "overwrite": search["overwrite"],
    }
    if config.teacher["max_features"] is None:
        del arguments["max_features"]
    if search["distribution_strategy"] == "mirrored":
        import tensorflow as tf

        arguments["distribution_strategy"] = tf.distribute.MirroredStrategy()
    arguments.update(kwargs)
    return (tuner_class or SageTuner)(hypermodel, **arguments)
