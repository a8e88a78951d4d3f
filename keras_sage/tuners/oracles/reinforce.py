"""REINFORCE with an LSTM controller, as the paper modified Zoph & Le's NAS, as a KerasTuner oracle.

The controller (supplement, "Hyperparameter Search with Reinforcement Learning") is a 2-layer LSTM with
32 units that runs one step per layer of the candidate, not one per hyperparameter:

- step 0 reads a learnt start vector; from its output h_0 the number of layers is drawn,
  P̂_{N_l} = softmax(W_{N_l}^T h_0);
- step l (l = 1..N_l) reads the embedding of the previous step's choices (for l = 1 the embedding of
  the number of layers; after that the sum of the embeddings of layer l-1's choices), and from its
  output h_l each per-layer choice t is drawn from P̂_{l,t} = softmax(W_t^T h_l), with one head W_t
  per kind of choice shared by all layers;
- each candidate source i of layer l (the image, whose state is h_0, then layers 1..l-1) feeds layer l
  with probability P̂^c_{i,l} = sigmoid(W_src^T h_i + W_dst^T h_l).

Every choice is sampled from its distribution (Boltzmann sampling, so exploration never stops). The
policy is trained with REINFORCE: after every `batch_size` (5) finished trials, one Adam step
(lr 1e-3, β1 = 0, gradients clipped to global norm 1) on
    loss = -(1/B) Σ_k (R_k - b) log P(architecture_k),
where R_k is the trial's objective (negated for "min" objectives) and b an exponential moving average of
the batch-mean rewards (decay 0.95, starting at the first batch's mean; the paper, like Zoph & Le, does
not give the decay). A failed trial is rewarded with the worst reward seen so far (0 before any), so
its batch still completes and the controller learns to avoid it.

The oracle hands out at most one batch of trials at a time: with parallel workers it answers `IDLE`
while trials of the current batch are still running. It learns the layer structure from the
hypermodel's `layerwise_spec()` (`keras_sage.hypermodels.base.LayerwiseSearchSpace`); hyperparameters
of the space outside that spec are sampled at random, as KerasTuner's random search does.

Persistence: the controller's weights, the Adam slots, the baseline and the number of updates are
saved after every update to `reinforce_controller.npz` in the oracle's project directory (atomically);
the current batch and the random generator's state are part of the oracle's state. Reloading a project
(`overwrite=False`) restores all of them, so a resumed search proposes the trials an uninterrupted one
would.
"""

from __future__ import annotations

import os
from typing import Any, cast

import keras
import keras_tuner
import numpy as np
import tensorflow as tf
from keras_tuner.engine import hyperparameters as hp_module

from keras_sage._atomic import write_atomically
from keras_sage.hypermodels.base import LayerwiseSearchSpace, LayerwiseSpec
from keras_sage.project_files import CONTROLLER_FILE
from keras_sage.tuners import _compat

_TrialStatus = keras_tuner.engine.trial.TrialStatus


class LayerwiseController(keras.layers.Layer):
    """The paper's LSTM controller over a `LayerwiseSpec` (see the module doc for the equations).

    Each step (the LSTM step, its heads, and the input embedding) is one compiled `tf.function`; the
    choices between steps are made in Python, so the number of layers can vary per sample.

    Args:
        spec: The layer structure of the search space.
        units: LSTM units per layer (the paper's 32).
        lstm_layers: Stacked LSTM layers (the paper's 2).
        seed: Seeds the initial weights.

    Example:

    ```python
    controller = LayerwiseController(search_space.layerwise_spec(), seed=1)
    values, log_probability = controller.unroll(rng=np.random.default_rng(1))
    ```
    """

    def __init__(
        self, spec: LayerwiseSpec, units: int = 32, lstm_layers: int = 2, seed: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.units = units
        self.layer_options = tuple(range(spec.min_layers, spec.max_layers + 1))
        self.cells = [
            keras.layers.LSTMCell(
                units,
                kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2 * i),
                recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 2 * i + 1),
                name=f"lstm_{i}",
            )
            for i in range(lstm_layers)
        ]
        for cell in self.cells:
            cell.build((None, units))
        # One embedding row per option: first the number of layers, then each choice's options.
        sizes = [len(self.layer_options)] + [len(options) for options in spec.layer_choices.values()]
        self.offsets = np.cumsum([0, *sizes])[:-1]

        def weight(name: str, shape: tuple[int, ...], offset: int) -> keras.Variable:
            initializer = keras.initializers.RandomUniform(-0.1, 0.1, seed=seed + 2 * lstm_layers + offset)
            return self.add_weight(shape=shape, initializer=initializer, name=name)

        self.start = weight("start", (1, units), 0)
        self.embeddings = weight("embeddings", (sum(sizes), units), 1)
        self.num_layers_head = weight("num_layers_head", (units, sizes[0]), 2)  # W_{N_l}
        self.choice_heads = [  # W_t, one per kind of choice, shared by all layers.
            weight(f"{name}_head", (units, len(options)), 3 + k)
            for k, (name, options) in enumerate(spec.layer_choices.items())
        ]
        self.source_weight = weight("w_src", (units, 1), 3 + len(sizes))  # W_src
        self.destination_weight = weight("w_dst", (units, 1), 4 + len(sizes))  # W_dst
        self.built = True
        self._first_step = tf.function(self._first_step_eager)
        self._layer_step = tf.function(self._layer_step_eager)

    def _lstm(self, inputs: tf.Tensor, states: list[Any]) -> tuple[tf.Tensor, list[Any]]:
        new_states = []
        for cell, state in zip(self.cells, states, strict=True):
            inputs, state = cell(inputs, state)
            new_states.append(state)
        return inputs, new_states

    def _first_step_eager(self) -> tuple[list[Any], tf.Tensor, tf.Tensor]:
        """Step 0: the LSTM states, log P̂_{N_l} from h_0, and W_src^T h_0 (the image's source score)."""
        zeros = tf.zeros((1, self.units))
        hidden, states = self._lstm(self.start, [[zeros, zeros] for _ in self.cells])
        log_probabilities = tf.nn.log_softmax(tf.matmul(hidden, self.num_layers_head)[0])
        return states, log_probabilities, tf.matmul(hidden, self.source_weight)[0, 0]

    def _layer_step_eager(
        self, rows: tf.Tensor, states: list[Any]
    ) -> tuple[list[Any], tf.Tensor, tf.Tensor, tf.Tensor]:
        """Step l: reads the sum of the embedding rows of the previous choices.

        Returns:
            The LSTM states, log P̂_{l,t} of every choice t concatenated, W_src^T h_l and W_dst^T h_l.
        """
        inputs = tf.reduce_sum(tf.gather(self.embeddings, rows), axis=0, keepdims=True)
        hidden, states = self._lstm(inputs, states)
        log_probabilities = tf.concat(
            [tf.nn.log_softmax(tf.matmul(hidden, head)[0]) for head in self.choice_heads], axis=0
        )
        source_score = tf.matmul(hidden, self.source_weight)[0, 0]
        destination_score = tf.matmul(hidden, self.destination_weight)[0, 0]
        return states, log_probabilities, source_score, destination_score

    def unroll(
        self, rng: np.random.Generator | None = None, values: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], tf.Tensor]:
        """Samples an architecture (given `rng`), or replays one (given its `values`).

        Args:
            rng: The generator to sample with.
            values: KerasTuner values of an architecture to replay (num_layers, the layers' choices
                and connections, by their hyperparameter names); other entries are ignored.

        Returns:
            The architecture's KerasTuner values and its log-probability under the controller (a
            scalar tensor, differentiable with respect to the controller's weights).
        """
        if (rng is None) == (values is None):
            raise ValueError("Pass exactly one of `rng` (to sample) or `values` (to replay).")
        spec = self.spec
        chosen: dict[str, Any] = {}

        def pick(name: str, log_probabilities: np.ndarray, options: tuple[Any, ...]) -> int:
            if values is not None:
                index = _index_of(values, name, options)
            else:
                assert rng is not None  # Exactly one of rng and values is given.
                probabilities = np.exp(log_probabilities.astype(np.float64))
                index = int(rng.choice(len(options), p=probabilities / probabilities.sum()))
            chosen[name] = options[index]
            return index

        states, log_probabilities, source_score = self._first_step()
        index = pick(spec.num_layers, log_probabilities.numpy(), self.layer_options)
        log_probability = log_probabilities[index]
        source_scores = [source_score]  # W_src^T h_i for the image (h_0), then each layer.
        rows = np.array([index])
        for layer in range(1, chosen[spec.num_layers] + 1):
            states, log_probabilities, source_score, destination_score = self._layer_step(
                tf.constant(rows, dtype=tf.int32), states
            )
            source_scores.append(source_score)
            log_numpy = log_probabilities.numpy()
            positions = []
            for k, (name, options) in enumerate(spec.layer_choices.items()):
                start = self.offsets[k + 1] - self.offsets[1]
                index = pick(spec.layer_param(name, layer), log_numpy[start : start + len(options)], options)
                positions.append(start + index)
            log_probability += tf.reduce_sum(tf.gather(log_probabilities, positions))
            rows = self.offsets[1] + np.array(positions)  # The choices' embedding rows.
            sources = spec.sources(layer)
            if not sources:
                continue
            # logit of P̂^c_{i,l} = W_src^T h_i + W_dst^T h_l, one per source i.
            logits = (
                tf.stack([source_scores[s if isinstance(s, int) else 0] for s in sources]) + destination_score
            )
            names = [spec.connection(source, layer) for source in sources]
            if values is None:
                assert rng is not None  # Exactly one of rng and values is given.
                connected = rng.random(len(sources)) < tf.sigmoid(logits).numpy()
            else:
                connected = np.array([_index_of(values, name, (False, True)) for name in names], dtype=bool)
            for name, bit in zip(names, connected, strict=True):
                chosen[name] = bool(bit)
            signs = tf.constant(np.where(connected, 1.0, -1.0), dtype=logits.dtype)
            log_probability += tf.reduce_sum(tf.math.log_sigmoid(signs * logits))
        return chosen, log_probability


def _index_of(values: dict[str, Any], name: str, options: tuple[Any, ...]) -> int:
    if name not in values:
        raise ValueError(f"Cannot replay the architecture: it has no value for {name!r}.")
    try:
        return options.index(values[name])
    except ValueError:
        raise ValueError(
            f"Cannot replay the architecture: {name}={values[name]!r} is not one of {options}."
        ) from None


def reinforce_loss(log_probabilities: tf.Tensor, rewards: np.ndarray, baseline: float) -> tf.Tensor:
    """REINFORCE with a baseline: -(1/B) Σ_k (R_k - b) log P(a_k).

    Args:
        log_probabilities: log P(a_k) of the batch's architectures, shape (B,).
        rewards: R_k, shape (B,).
        baseline: b.

    Returns:
        The scalar loss.
    """
    advantages = tf.constant(np.asarray(rewards) - baseline, dtype=log_probabilities.dtype)
    return -tf.reduce_mean(advantages * log_probabilities)


def moving_average(previous: float, value: float, decay: float) -> float:
    """b ← decay·b + (1 - decay)·value."""
    return decay * previous + (1.0 - decay) * value


class ReinforceOracle(keras_tuner.Oracle):
    """The paper's REINFORCE search with an LSTM controller, as a KerasTuner oracle.

    Args:
        search_space: The hypermodel (a `LayerwiseSearchSpace`, such as `CNNSearchSpace`) or its
            `LayerwiseSpec`.
        objective: As for any KerasTuner oracle; the reward is the score, negated for "min".
        max_trials: The number of trials to run at most.
        batch_size: Trials per controller update (the paper's 5).
        learning_rate: Adam's learning rate (the paper's 1e-3).
        beta_1: Adam's first-moment coefficient (the paper's 0).
        clip_norm: Global gradient norm clip (the paper's 1).
        units: LSTM units per layer (the paper's 32).
        lstm_layers: Stacked LSTM layers (the paper's 2).
        baseline_decay: Decay of the reward's moving-average baseline.
        hyperparameters, allow_new_entries, tune_new_entries, max_retries_per_trial,
            max_consecutive_failed_trials: As for any KerasTuner oracle.
        seed: Seeds the controller's weights and its sampling; the same seed gives the same trials.

    Example:

    ```python
    import keras_tuner
    from keras_sage.hypermodels import CNNSearchSpace
    from keras_sage.tuners import ReinforceOracle

    space = CNNSearchSpace(max_layers=10, num_classes=10, input_shape=(32, 32, 3))
    oracle = ReinforceOracle(space, objective=keras_tuner.Objective("score", "max"), max_trials=500)
    tuner = keras_tuner.Tuner(oracle=oracle, hypermodel=space, directory="runs")
    ```
    """

    def __init__(
        self,
        search_space: LayerwiseSearchSpace | LayerwiseSpec,
        objective: Any = None,
        max_trials: int = 10,
        batch_size: int = 5,
        learning_rate: float = 1e-3,
        beta_1: float = 0.0,
        clip_norm: float = 1.0,
        units: int = 32,
        lstm_layers: int = 2,
        baseline_decay: float = 0.95,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        seed: int | None = None,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
    ):
        if isinstance(objective, (list, tuple)):
            raise ValueError(
                "ReinforceOracle takes one objective: its reward is one number per trial, and a list "
                "would be summed; for a Pareto search use TPEOracle(objective=[...]) or "
                "OptunaOracle(NSGAIISampler())"
            )
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        _compat.keep_oracle_seed(self, seed)
        if isinstance(search_space, LayerwiseSpec):
            self.spec = search_space
        elif isinstance(search_space, LayerwiseSearchSpace):
            self.spec = search_space.layerwise_spec()
        else:
            raise TypeError(
                "ReinforceOracle needs a LayerwiseSpec or a hypermodel with `layerwise_spec()`, got "
                f"{type(search_space).__name__}."
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        self.batch_size = batch_size
        self.baseline_decay = baseline_decay
        self.controller = LayerwiseController(self.spec, units=units, lstm_layers=lstm_layers, seed=self.seed)
        self.optimizer = keras.optimizers.Adam(
            learning_rate=learning_rate, beta_1=beta_1, global_clipnorm=clip_norm
        )
        self.optimizer.build(self.controller.trainable_variables)
        self.baseline: float | None = None
        self.updates = 0
        self._rng = np.random.default_rng(self.seed)
        # The trial_ids handed out since the last update.
        self._batch: list[str] = []
        self._space_checked = False

    def probability(self, values: dict[str, Any]) -> float:
        """The controller's probability of the architecture with these KerasTuner values."""
        return float(np.exp(self.controller.unroll(values=values)[1].numpy()))

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Samples an architecture from the controller, or waits (`IDLE`) for the batch to finish.

        Args:
            trial_id: The KerasTuner trial being created.

        Returns:
            `{"status": "RUNNING", "values": {...}}`, or `{"status": "IDLE"}` while a full batch runs.
        """
        if len(self._batch) >= self.batch_size:
            return {"status": _TrialStatus.IDLE, "values": None}
        if not self._space_checked:
            check_spec_matches_space(self.spec, self.hyperparameters)
            self._space_checked = True
        architecture, _ = self.controller.unroll(rng=self._rng)
        active = self.hyperparameters.copy()
        active.values = {}
        for hp in active.space:
            if not active.is_active(hp):
                continue
            if hp.name in architecture:
                active.values[hp.name] = architecture[hp.name]
            else:
                active.values[hp.name] = hp.random_sample(_compat.next_sample_seed(self))
        self._batch.append(trial_id)
        return {"status": _TrialStatus.RUNNING, "values": active.values}

    @keras_tuner.synchronized
    def end_trial(self, trial: keras_tuner.engine.trial.Trial) -> None:
        """Ends the trial as KerasTuner does; when the whole batch has ended, updates the controller."""
        super().end_trial(trial)
        finished = set(self.end_order)
        if len(self._batch) == self.batch_size and all(t in finished for t in self._batch):
            self._learn()

    def _reward(self, trial: keras_tuner.engine.trial.Trial) -> float | None:
        """R: the score, negated for a "min" objective; None for a trial that failed."""
        if trial.status != _TrialStatus.COMPLETED or trial.score is None or not np.isfinite(trial.score):
            return None
        return float(trial.score) if self.objective.direction == "max" else -float(trial.score)

    def _learn(self) -> None:
        """One REINFORCE step on the finished batch, then the baseline's update."""
        seen = [reward for t in self.trials.values() if (reward := self._reward(t)) is not None]
        worst = min(seen) if seen else 0.0
        batch_rewards = [self._reward(self.trials[t]) for t in self._batch]
        rewards = np.array([worst if reward is None else reward for reward in batch_rewards])
        baseline = float(rewards.mean()) if self.baseline is None else self.baseline
        variables = self.controller.trainable_variables
        with tf.GradientTape() as tape:
            log_probabilities = tf.stack(
                [self.controller.unroll(values=self.trials[t].hyperparameters.values)[1] for t in self._batch]
            )
            loss = reinforce_loss(log_probabilities, rewards, baseline)
        gradients = tape.gradient(loss, variables)
        # Layers beyond every sampled depth get no gradient; Adam still decays their moments.
        gradients = [tf.zeros_like(v) if g is None else g for g, v in zip(gradients, variables, strict=True)]
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        self.baseline = moving_average(baseline, float(rewards.mean()), self.baseline_decay)
        self.updates += 1
        self._batch = []
        self._save_controller()
        self.save()

    def _controller_path(self) -> str:
        return os.path.join(_compat.oracle_project_dir(self), CONTROLLER_FILE)

    def _save_controller(self) -> None:
        arrays = {f"weight_{i}": w for i, w in enumerate(self.controller.get_weights())}
        arrays.update({f"optimizer_{i}": np.asarray(v) for i, v in enumerate(self.optimizer.variables)})
        arrays["baseline"] = np.array(np.nan if self.baseline is None else self.baseline)
        arrays["updates"] = np.array(self.updates)
        write_atomically(self._controller_path(), lambda file: np.savez(file, **arrays))

    def _load_controller(self) -> None:
        path = self._controller_path()
        if not os.path.exists(path):
            return
        try:
            # A project directory is data: arrays only, nothing unpickled.
            with np.load(path, allow_pickle=False) as archive:
                saved = {key: archive[key] for key in archive.files}
        except (OSError, ValueError) as error:
            raise ValueError(f"{path} is not a controller state that keras-sage wrote: {error}") from None
        n_weights = len(self.controller.weights)
        n_optimizer = len(self.optimizer.variables)
        if (
            sum(key.startswith("weight_") for key in saved) != n_weights
            or sum(key.startswith("optimizer_") for key in saved) != n_optimizer
        ):
            raise ValueError(
                f"{path} holds a controller of another shape than this oracle's (search space or "
                "controller arguments changed since it was saved)."
            )
        self.controller.set_weights([saved[f"weight_{i}"] for i in range(n_weights)])
        for i, variable in enumerate(self.optimizer.variables):
            variable.assign(saved[f"optimizer_{i}"])
        baseline = float(saved["baseline"])
        self.baseline = None if np.isnan(baseline) else baseline
        updates = int(saved["updates"])
        if updates > self.updates:
            # Saved after the update but before the oracle's state: that batch is already learnt.
            self._batch = []
        self.updates = updates

    def get_state(self) -> dict[str, Any]:
        state = cast("dict[str, Any]", super().get_state())
        state["reinforce"] = {
            "batch": list(self._batch),
            "updates": self.updates,
            "rng": self._rng.bit_generator.state,
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        reinforce = state["reinforce"]
        self._batch = list(reinforce["batch"])
        self.updates = reinforce["updates"]
        self._rng.bit_generator.state = reinforce["rng"]
        self._load_controller()


def check_spec_matches_space(spec: LayerwiseSpec, hyperparameters: keras_tuner.HyperParameters) -> None:
    """Checks that the space declares every hyperparameter the spec names, with the spec's values.

    Raises:
        ValueError: Naming the first hyperparameter that is missing or differs.
    """
    declared: dict[str, list[hp_module.HyperParameter]] = {}
    for hp in hyperparameters.space:
        declared.setdefault(hp.name, []).append(hp)

    def find(name: str, kind: type) -> list[hp_module.HyperParameter]:
        found = [hp for hp in declared.get(name, []) if isinstance(hp, kind)]
        if not found:
            raise ValueError(
                f"The layerwise spec names hyperparameter {name!r} ({kind.__name__}), which the search "
                "space does not declare; check the hypermodel's layerwise_spec()."
            )
        return found

    num_layers = find(spec.num_layers, hp_module.Int)[0]
    if (num_layers.min_value, num_layers.max_value) != (spec.min_layers, spec.max_layers):
        raise ValueError(
            f"Hyperparameter {spec.num_layers!r} ranges over [{num_layers.min_value}, "
            f"{num_layers.max_value}] but the layerwise spec says [{spec.min_layers}, {spec.max_layers}]."
        )
    for layer in range(1, spec.max_layers + 1):
        for name, options in spec.layer_choices.items():
            param = spec.layer_param(name, layer)
            if not any(tuple(hp.values) == tuple(options) for hp in find(param, hp_module.Choice)):
                raise ValueError(
                    f"Hyperparameter {param!r} does not have the layerwise spec's values {tuple(options)}."
                )
        for source in spec.sources(layer):
            find(spec.connection(source, layer), hp_module.Boolean)
