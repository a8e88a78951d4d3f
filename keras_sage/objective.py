"""The teacher-guided score of a trained candidate: P + α·TG (paper §3.2).

After its premature training a candidate is scored in two parts:

- P, its premature performance: accuracy on the validation split.
- TG, its teacher guidance: for every teacher RDM T_i in a `TeacherStore`,
  S_i = max_j r(T_i, C_j) over the RDMs C_j of the candidate's representation endpoints (computed on the
  teacher's probe images), and TG = mean_i S_i. The max over student layers is the paper's layer matching
  (`layer_match="max"`); `"mean"` averages r over the endpoints instead, and `"fixed"` compares each teacher
  layer with the one student endpoint a user maps it to (e.g. V4 with an early layer).

The score is P + α·TG; α = 1 is the paper's choice for about 2 epochs of premature training (§4.1).

r is how two RDMs compare (`method`, one of `keras_sage.rsa.COMPARE_METHODS`; the paper's is Pearson's),
or, with `method="cka"`, linear CKA of the two representations (Kornblith et al., 2019), which compares
features rather than RDMs: each teacher RDM must then be an image-level Euclidean RDM, from which the
centred Gram matrix of the teacher's (subsampled) features is derived once (−½ H D⁽²⁾ H,
`keras_sage.rsa.gram_from_euclidean_rdm`), and a student endpoint's CKA is that of its subsampled
features' Gram matrix with it. Teacher files of correlation or cosine RDMs (such as every file registered
with the default metric) are refused for CKA when the scorer is built.

Noise ceilings: a brain region recorded with repeats has a noise ceiling stored with its RDM
(`keras_sage.rsa.NoiseCeiling`), how similar a perfect model of the region could be to the noisy RDM.
When the teacher file holds one for region i, computed with the scorer's comparison method, the scorer
also reports S_i / ceiling_i (`S_<region>/ceiling`), and `teacher_guidance_normalised`, the mean of those,
when every teacher RDM has one. The ceiling is √reliability, the square root of the Spearman–Brown
corrected split-half reliability of the region's RDM: by the attenuation formula the noise-free RDM
reaches about √reliability with the recorded one, so S_i / ceiling_i is about 1 for a perfect model.
Brain-Score divides by the reliability itself (its ceiling, which puts a perfect model above 1 when the
data are noisy); rsatoolbox reports a lower and an upper noise ceiling (a perfect model's expected
similarity lies between them; both are stored in the file too). TG and the score stay raw unless
`normalise_by_ceiling=True`, which makes TG = mean_i S_i / ceiling_i (every region then needs a ceiling),
so regions recorded with different noise weigh alike.

Memory stays bounded however many endpoints a candidate has: inside the feature extractor each endpoint's
output is flattened and only a fixed random subsample of `max_features` features leaves the graph; probe
batches are fed one at a time into preallocated buffers (never `Model.predict`, which keeps every batch);
each student RDM is compared with the teacher RDMs as soon as it exists and then dropped; and endpoints
whose buffers would not fit `memory_budget` together are processed in groups, one forward pass per group.

The teacher side is prepared once per scorer (`keras_sage.rsa.ReferenceRDMs`: each teacher RDM checked,
and its mean and centred norm computed, once), so each endpoint costs one student RDM per RDM kind and one
read of it for all the teacher RDMs of that kind.

When every teacher RDM is an image-level correlation RDM (or every one a cosine RDM), as a teacher
registered with the defaults is, each probe image's kept features are centred and normalised inside the
feature extractor's graph (`keras_sage.rsa.prepared_rows`), and a student RDM is then only the float32
matrix products of those rows (`keras_sage.rsa.rdm_of_prepared_rows`). The rows have unit norm, so they
can be stored as float16 without overflow: with `feature_dtype="auto"` they are, when that fits the
endpoints into fewer forward passes than float32 rows would (50 endpoints × 5,000 probe images: one pass
instead of two). Float16 rows change S_i by less than 1e-4 (measured: 7.3e-5 at most on the benchmark's
50-endpoint random network, whose representations are nearly collapsed; 2.7e-5 for an untrained and
2e-8 for a trained ResNet-20 on CIFAR images; see benchmarks/RESULTS.md), float32 rows by about 1e-7;
`feature_dtype="float32"` keeps float32 rows always.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_sage import contract
from keras_sage.features import default_endpoints, layer_feature_counts, layer_features
from keras_sage.rsa import (
    RDM,
    ROW_METRICS,
    ReferenceRDMs,
    centred_gram,
    gram_from_euclidean_rdm,
    linear_cka_gram,
    normalised_similarities,
    prepared_rows,
    rdm,
    rdm_of_prepared_rows,
)
from keras_sage.rsa.dissimilarity import condensed_length, prepared_rdm_workspace_bytes, rdm_workspace_bytes
from keras_sage.score import (
    CKA,
    DEFAULT_ALPHA,
    LAYER_MATCHES,
    SIMILARITIES,
    ScoringConfig,
    combined_score,
    proxy_term,
)
from keras_sage.scoring_checks import (
    check_cka_teacher,
    check_every_layer_has_a_ceiling,
    check_teacher_rdms,
    checked_layer_mapping,
)
from keras_sage.teachers import TeacherStore, probe_fingerprint

# DEFAULT_ALPHA, LAYER_MATCHES and SIMILARITIES live in `keras_sage.score`; importable from here as before.
__all__ = [
    "DEFAULT_ALPHA",
    "LAYER_MATCHES",
    "SIMILARITIES",
    "TeacherGuidedScore",
    "TeacherGuidedScorer",
    "plan_endpoint_groups",
    "premature_accuracy",
    "teacher_guidance",
]


@dataclass(frozen=True)
class TeacherGuidedScore:
    """The parts of a candidate's teacher-guided score.

    Attributes:
        premature_accuracy: P, the validation accuracy after premature training.
        teacher_guidance: TG = mean_i S_i.
        alpha: α, the weight of TG in the score.
        similarities: S_i for each teacher RDM name i, in the teacher file's order.
        best_student_layers: For each teacher RDM name i, the student endpoint j with the highest r (with
            `layer_match="fixed"`, the mapped endpoint).
        normalised_similarities: S_i / ceiling_i for each teacher RDM with a noise ceiling.
        teacher_guidance_normalised: mean_i S_i / ceiling_i when every teacher RDM has a ceiling, else
            None. It is `teacher_guidance` when the scorer normalises by the ceilings.
        proxies: The field's proxies at initialisation, by name, as computed.
        proxy_weights: β of each proxy in the score (`ScoringConfig.proxy_weights`).
    """

    premature_accuracy: float
    teacher_guidance: float
    alpha: float
    similarities: dict[str, float] = field(default_factory=dict)
    best_student_layers: dict[str, str] = field(default_factory=dict)
    normalised_similarities: dict[str, float] = field(default_factory=dict)
    teacher_guidance_normalised: float | None = None
    proxies: dict[str, float] = field(default_factory=dict)
    proxy_weights: dict[str, float] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """P + α·TG + Σ β·proxy_term(x) (`keras_sage.score.combined_score`)."""
        # A weight of 0 adds nothing, even to a term of −∞ (naswot of coinciding codes, a log of 0).
        terms = {
            name: (beta, proxy_term(name, self.proxies[name]))
            for name, beta in self.proxy_weights.items()
            if beta != 0
        }
        return combined_score(self.premature_accuracy, self.teacher_guidance, self.alpha, terms)

    def metrics(self) -> dict[str, float]:
        """The numbers KerasTuner records for a trial: `score`, `premature_accuracy`,
        `teacher_guidance`, `S_<teacher layer>` for each teacher RDM, and, with noise ceilings,
        `S_<teacher layer>/ceiling` and `teacher_guidance_normalised`."""
        metrics = {
            contract.SCORE: self.score,
            contract.PREMATURE_ACCURACY: self.premature_accuracy,
            contract.TEACHER_GUIDANCE: self.teacher_guidance,
        }
        metrics.update(
            {contract.similarity_metric_name(name): value for name, value in self.similarities.items()}
        )
        metrics.update(
            {
                contract.normalised_similarity_metric_name(name): value
                for name, value in self.normalised_similarities.items()
            }
        )
        if self.teacher_guidance_normalised is not None:
            metrics[contract.TEACHER_GUIDANCE_NORMALISED] = self.teacher_guidance_normalised
        metrics.update(self.proxies)
        return metrics


def teacher_guidance(similarities: Sequence[float]) -> float:
    """TG = mean_i S_i, the mean over teacher layers of their best similarity to any student layer."""
    if len(similarities) == 0:
        raise ValueError("teacher guidance needs at least one teacher layer")
    return float(np.mean(similarities))


def plan_endpoint_groups(
    features_per_endpoint: Sequence[int],
    n_images: int,
    memory_budget: int,
    value_bytes: int = 4,
    workspace_bytes: int | None = None,
) -> list[list[int]]:
    """Splits endpoints, in order, into groups whose feature buffers fit a memory budget together.

    Each group is one forward pass over the probe images; its buffers hold n_images × Σ features values
    of `value_bytes` each. A student RDM's own working memory is reserved out of the budget first: by
    default `keras_sage.rsa.dissimilarity.rdm_workspace_bytes` for the widest endpoint (its float32 upper
    triangle and row blocks). An endpoint too large for the budget on its own still gets a group of its
    own.

    Args:
        features_per_endpoint: The number of features kept for each endpoint (after subsampling).
        n_images: The number of probe images.
        memory_budget: Bytes.
        value_bytes: Bytes per stored feature value: 4 (float32) or 2 (float16).
        workspace_bytes: Bytes to reserve for computing one student RDM, if not the default.

    Returns:
        Lists of endpoint positions, covering every endpoint once, in order.
    """
    if not features_per_endpoint:
        return []
    if workspace_bytes is None:
        workspace_bytes = rdm_workspace_bytes(n_images, max(features_per_endpoint))
    buffer_budget = memory_budget - workspace_bytes
    groups: list[list[int]] = []
    group_bytes = 0
    for position, n_features in enumerate(features_per_endpoint):
        endpoint_bytes = value_bytes * n_images * int(n_features)
        if not groups or group_bytes + endpoint_bytes > buffer_budget:
            groups.append([])
            group_bytes = 0
        groups[-1].append(position)
        group_bytes += endpoint_bytes
    return groups


class TeacherGuidedScorer:
    """Scores a trained candidate by P + α·TG against a teacher file.

    A scorer is a teacher and a `ScoringConfig` (α, the similarity, the layer matching, the feature
    subsample, ...); it is built from both in this one place, and `with_teacher` gives the same settings a
    new teacher (a teacher schedule's next version). The settings may also be given as keywords, each a
    field of `ScoringConfig` (`method` and `batch_size` are accepted as the older names of `similarity`
    and `probe_batch_size`); keywords override the fields of `config`.

    The probe images are fed to the candidate exactly as the teacher file stores them, cast to float32,
    unless the config's `probe_preprocessing` is given; register the teacher on probe images in the form
    the candidates are trained on (e.g. the same scaling), or pass the preprocessing the candidates expect.

    Args:
        teacher: A `TeacherStore`, or the path of a teacher file.
        config: The scoring settings; `ScoringConfig()` (the paper's) if not given.
        expected_probe: Optional `(images, labels)` the caller expects the teacher to have been registered
            on; a teacher file whose probe fingerprint differs is refused.
        **settings: Fields of `ScoringConfig` to set (see it for each).

    Raises:
        ValueError: A setting out of range, a teacher file without RDMs or with RDMs that cannot guide a
            search, or one that does not fit the settings (CKA, ceilings, the layer mapping), naming it.

    Example:

    ```python
    scorer = TeacherGuidedScorer(TeacherStore.open("teacher.h5"), ScoringConfig(alpha=1.0))
    result = scorer.evaluate(model, validation_data=(x_val, y_val))
    result.score, result.premature_accuracy, result.teacher_guidance, result.similarities
    ```
    """

    def __init__(
        self,
        teacher: TeacherStore | str | os.PathLike[str],
        config: ScoringConfig | float | None = None,
        *,
        expected_probe: tuple[np.ndarray, np.ndarray | None] | None = None,
        **settings: Any,
    ) -> None:
        if isinstance(config, (int, float)) and not isinstance(config, bool):
            # `TeacherGuidedScorer(teacher, 2.0)`: α was the second argument before the config existed.
            settings["alpha"], config = config, None
        given_as = {
            name: old_name for old_name, name in _FORMER_SETTING_NAMES.items() if old_name in settings
        }
        for name, old_name in given_as.items():
            settings[name] = settings.pop(old_name)
        unknown = sorted(set(settings) - {field.name for field in dataclasses.fields(ScoringConfig)})
        if unknown:
            raise TypeError(f"TeacherGuidedScorer got unknown setting(s) {', '.join(unknown)}")
        try:
            config = dataclasses.replace(
                config if isinstance(config, ScoringConfig) else ScoringConfig(), **settings
            )
        except (TypeError, ValueError) as error:
            # The message names the setting as the caller gave it.
            name = str(error).split(" ", 1)[0]
            if name not in given_as:
                raise
            raise type(error)(given_as[name] + str(error)[len(name) :]) from None
        if not isinstance(teacher, TeacherStore):
            teacher = TeacherStore.open(teacher)
        if not teacher.layer_names:
            raise ValueError(f"teacher file {teacher.path} holds no RDMs; register at least one layer")
        if expected_probe is not None:
            expected_images, expected_labels = expected_probe
            expected = probe_fingerprint(
                np.asarray(expected_images), None if expected_labels is None else np.asarray(expected_labels)
            )
            if expected != teacher.fingerprint:
                raise ValueError(
                    f"teacher file {teacher.path} was registered on a different probe set: its fingerprint "
                    f"is {teacher.fingerprint[:16]}…, the expected probe set's is {expected[:16]}…"
                )
        method = config.similarity
        self.config = config
        self.teacher = teacher
        self.layer_mapping = checked_layer_mapping(config.layer_match, config.layer_mapping, teacher)
        # The ceilings S_i can be divided by: those computed with this comparison method, above 0.
        self.noise_ceilings = {
            name: ceiling
            for name, ceiling in teacher.noise_ceilings().items()
            if ceiling.method == method and ceiling.ceiling > 0
        }
        if config.normalise_by_ceiling:
            check_every_layer_has_a_ceiling(teacher, method)
        self.teacher_rdms: dict[str, RDM] = teacher.rdms()
        check_teacher_rdms(teacher.path, self.teacher_rdms)
        if any(teacher_rdm.level == "category" for teacher_rdm in self.teacher_rdms.values()) and (
            teacher.probe_labels is None
        ):
            raise ValueError(f"teacher file {teacher.path} has category-level RDMs but no probe labels")
        # With CKA, the centred Gram matrix of each teacher layer's features, derived once.
        if method == CKA:
            check_cka_teacher(teacher)
        self._teacher_grams = (
            {name: gram_from_euclidean_rdm(teacher_rdm) for name, teacher_rdm in self.teacher_rdms.items()}
            if method == CKA
            else {}
        )
        # The teacher RDMs of each (metric, level), prepared once for every candidate's comparisons.
        rdm_kinds = (
            []
            if method == CKA
            else sorted(
                {(teacher_rdm.metric, teacher_rdm.level) for teacher_rdm in self.teacher_rdms.values()}
            )
        )
        self._references_by_kind = {
            kind: ReferenceRDMs(
                {
                    name: teacher_rdm
                    for name, teacher_rdm in self.teacher_rdms.items()
                    if (teacher_rdm.metric, teacher_rdm.level) == kind
                },
                method=method,
            )
            for kind in rdm_kinds
        }
        # With one kind of teacher RDM, image-level correlation or cosine, the extractor prepares the rows.
        self._row_metric = rdm_kinds[0][0] if len(rdm_kinds) == 1 and rdm_kinds[0] in _ROW_KINDS else None

    def with_teacher(self, teacher: TeacherStore | str | os.PathLike[str]) -> TeacherGuidedScorer:
        """A scorer with the same settings against another teacher (e.g. a teacher schedule's next
        version of the same file)."""
        return TeacherGuidedScorer(teacher, self.config)

    @property
    def alpha(self) -> float:
        """α, the weight of TG."""
        return self.config.alpha

    @property
    def method(self) -> str:
        """r, how a student RDM is compared with a teacher RDM (the config's `similarity`)."""
        return self.config.similarity

    @property
    def layer_match(self) -> str:
        """How S_i is taken over the student endpoints."""
        return self.config.layer_match

    @property
    def normalise_by_ceiling(self) -> bool:
        """Whether TG is the mean of S_i / ceiling_i."""
        return self.config.normalise_by_ceiling

    @property
    def max_features(self) -> int | None:
        """Features per student endpoint in its RDM."""
        return self.config.max_features

    @property
    def seed(self) -> int:
        """Seed of the feature subsample."""
        return self.config.seed

    @property
    def batch_size(self) -> int:
        """Probe images per forward pass."""
        return self.config.probe_batch_size

    @property
    def probe_preprocessing(self) -> Callable[[np.ndarray], Any] | None:
        """The callable applied to probe batches before the candidate sees them, if any."""
        return self.config.probe_preprocessing

    @property
    def teacher_layers(self) -> list[str]:
        """The names of the teacher RDMs, i in S_i."""
        return list(self.teacher_rdms)

    def evaluate(
        self,
        model: Any,
        validation_data: Any,
        endpoints: Sequence[str] | None = None,
        batch_size: int | None = None,
        proxies: Mapping[str, float] | None = None,
    ) -> TeacherGuidedScore:
        """Scores a trained candidate.

        Args:
            model: The trained, compiled Keras model (with an accuracy metric).
            validation_data: `(x, y)` or a `tf.data.Dataset` of batches, as for `Model.evaluate`.
            endpoints: Names of the layers whose outputs are the candidate's representations (the j in
                C_j). Defaults to `keras_sage.features.default_endpoints(model)`.
            batch_size: Batch size for evaluating P on arrays.
            proxies: The candidate's proxies at initialisation, by name; each one the config weighs
                (`proxy_weights`) must be there.

        Returns:
            A `TeacherGuidedScore`.

        Raises:
            ValueError: A proxy the config weighs is missing.
        """
        proxies = dict(proxies or {})
        missing = [name for name in self.config.proxy_weights if name not in proxies]
        if missing:
            raise ValueError(f"the score weighs the proxies {', '.join(missing)}, which were not computed")
        accuracy = premature_accuracy(model, validation_data, batch_size=batch_size)
        similarities, best_student_layers = self.similarities(model, endpoints)
        normalised = normalised_similarities(similarities, self.noise_ceilings, method=self.method)
        guidance_normalised = (
            teacher_guidance(list(normalised.values())) if len(normalised) == len(similarities) else None
        )
        guidance = teacher_guidance(list(similarities.values()))
        if self.normalise_by_ceiling:
            assert guidance_normalised is not None  # Every layer's ceiling was checked at construction.
            guidance = guidance_normalised
        return TeacherGuidedScore(
            premature_accuracy=accuracy,
            teacher_guidance=guidance,
            alpha=self.alpha,
            similarities=similarities,
            best_student_layers=best_student_layers,
            normalised_similarities=normalised,
            teacher_guidance_normalised=guidance_normalised,
            proxies={name: float(value) for name, value in proxies.items()},
            proxy_weights=dict(self.config.proxy_weights),
        )

    def similarities(
        self, model: Any, endpoints: Sequence[str] | None = None
    ) -> tuple[dict[str, float], dict[str, str]]:
        """S_i for every teacher RDM T_i over the candidate's endpoints C_j, as `layer_match` says
        (the paper's S_i = max_j r(T_i, C_j) by default).

        Args:
            model: A Keras model.
            endpoints: Names of its representation layers; defaults to `default_endpoints(model)`.
                With `layer_match="fixed"` the mapped endpoints are used and this is ignored.

        Returns:
            `(similarities, best_student_layers)`: S_i by teacher layer, and the endpoint with the highest r
            (with `"fixed"`, the mapped one).

        Raises:
            ValueError: The model has no endpoints, or (with `"fixed"`) lacks a mapped endpoint.
        """
        if self.layer_mapping is not None:
            layer_names = {layer.name for layer in model.layers}
            for teacher_layer, endpoint in self.layer_mapping.items():
                if endpoint not in layer_names:
                    raise ValueError(
                        f"model {model.name!r} has no layer {endpoint!r}, which layer_mapping maps teacher "
                        f"layer {teacher_layer!r} to"
                    )
            endpoints = list(dict.fromkeys(self.layer_mapping.values()))
        elif endpoints is None:
            endpoints = default_endpoints(model)
        endpoints = list(endpoints)
        if not endpoints:
            raise ValueError(
                f"model {model.name!r} has no representation endpoints to compare: name the layers to "
                "compare `layer_1`, `layer_2`, ... (or `cell_<n>`, `L<n>`), or give them with "
                "SageTuner(..., endpoints=[layer names] or a callable of the model); without either, the "
                "end of each stage (the last layer of each spatial size after the first layer with weights) "
                "is used, and this model has none"
            )
        n_images = self.teacher.n_images
        counts = layer_feature_counts(model, endpoints)
        kept_counts = [
            count if self.max_features is None else min(count, self.max_features) for count in counts
        ]

        dtype, groups = self._plan(kept_counts, n_images)
        row_metric = self._row_metric
        # With prepared rows, one upper triangle is reused for every student RDM (each dropped once compared).
        triangle = np.empty(condensed_length(n_images), dtype=np.float32) if row_metric else None

        best = {name: -math.inf for name in self.teacher_rdms}
        best_student_layers: dict[str, str] = {}
        total = dict.fromkeys(self.teacher_rdms, 0.0)
        for group in groups:
            features: list[np.ndarray | None] = list(
                layer_features(
                    model,
                    [endpoints[position] for position in group],
                    self.teacher.probe_images,
                    max_features=self.max_features,
                    seed=self.seed,
                    batch_size=self.batch_size,
                    preprocessing=self.probe_preprocessing,
                    rows=None if row_metric is None else functools.partial(prepared_rows, metric=row_metric),
                    dtype=dtype,
                )
            )
            for slot, position in enumerate(group):
                # Each endpoint's buffer is released as soon as its RDMs (or Gram matrix) exist.
                endpoint_features, features[slot] = features[slot], None
                assert endpoint_features is not None  # Each slot is taken once.
                if triangle is not None:
                    endpoint_similarities = self._prepared_rows_similarities(
                        endpoint_features, endpoints[position], counts[position], triangle
                    )
                else:
                    endpoint_similarities = self._endpoint_similarities(
                        endpoint_features, endpoints[position]
                    )
                for teacher_name, similarity in endpoint_similarities:
                    total[teacher_name] += similarity
                    if self.layer_mapping is not None:
                        if self.layer_mapping[teacher_name] == endpoints[position]:
                            best[teacher_name] = similarity
                            best_student_layers[teacher_name] = endpoints[position]
                    elif similarity > best[teacher_name]:
                        best[teacher_name] = similarity
                        best_student_layers[teacher_name] = endpoints[position]
                del endpoint_features
        if self.layer_match == "mean":
            return {name: total[name] / len(endpoints) for name in best}, best_student_layers
        return {name: float(value) for name, value in best.items()}, best_student_layers

    def _plan(self, kept_counts: Sequence[int], n_images: int) -> tuple[str, list[list[int]]]:
        """The dtype of the feature buffers and the endpoint groups (one forward pass each)."""
        if self._row_metric is None:
            return "float32", plan_endpoint_groups(kept_counts, n_images, self.config.memory_budget)
        plans = {
            dtype: plan_endpoint_groups(
                kept_counts,
                n_images,
                self.config.memory_budget,
                value_bytes=value_bytes,
                workspace_bytes=prepared_rdm_workspace_bytes(n_images, max(kept_counts), value_bytes),
            )
            for dtype, value_bytes in (("float32", 4), ("float16", 2))
        }
        if self.config.feature_dtype == "auto":
            dtype = "float16" if len(plans["float16"]) < len(plans["float32"]) else "float32"
        else:
            dtype = self.config.feature_dtype
        return dtype, plans[dtype]

    def _prepared_rows_similarities(
        self, rows: np.ndarray, endpoint: str, n_features: int, triangle: np.ndarray
    ) -> Iterator[tuple[str, float]]:
        """r of one student endpoint's prepared rows with every teacher layer, as `(teacher layer, r)`; its
        RDM is written into `triangle`, which the next endpoint's overwrites."""
        assert self._row_metric is not None  # Only called when the extractor prepared the rows.
        student_rdm = rdm_of_prepared_rows(
            rows, self._row_metric, n_features=n_features, seed=self.seed, name=endpoint, out=triangle
        )
        (references,) = self._references_by_kind.values()
        yield from references.compare(student_rdm).items()

    def _endpoint_similarities(self, features: np.ndarray, endpoint: str) -> Iterator[tuple[str, float]]:
        """r of one student endpoint's (subsampled) features with every teacher layer, as
        `(teacher layer, r)`, each student RDM or Gram matrix dropped once compared."""
        if self._teacher_grams:
            student_gram = centred_gram(features)
            for teacher_name, teacher_gram in self._teacher_grams.items():
                yield teacher_name, linear_cka_gram(teacher_gram, student_gram)
            return
        for (metric, level), references in self._references_by_kind.items():
            student_rdm = rdm(
                features,
                metric=metric,
                labels=self.teacher.probe_labels if level == "category" else None,
                level=level,
                max_features=None,
                name=endpoint,
            )
            yield from references.compare(student_rdm).items()


# The names `TeacherGuidedScorer` accepted for two `ScoringConfig` fields before the config existed.
_FORMER_SETTING_NAMES = {"method": "similarity", "batch_size": "probe_batch_size"}
# The (metric, level) of the teacher RDMs whose student RDMs can come from rows prepared in the extractor.
_ROW_KINDS = [(metric, "image") for metric in ROW_METRICS]


def premature_accuracy(model: Any, validation_data: Any, batch_size: int | None = None) -> float:
    """P: the model's accuracy on the validation data.

    Args:
        model: A compiled Keras model with an accuracy metric (e.g. `metrics=["accuracy"]`).
        validation_data: `(x, y)`, `(x, y, sample_weight)`, or a dataset of batches.
        batch_size: Batch size for arrays.

    Returns:
        The accuracy, a float in [0, 1].
    """
    if isinstance(validation_data, (tuple, list)):
        results = model.evaluate(*validation_data, batch_size=batch_size, verbose=0, return_dict=True)
    else:
        results = model.evaluate(validation_data, verbose=0, return_dict=True)
    accuracy_names = [name for name in results if name.endswith("accuracy")]
    if not accuracy_names:
        raise ValueError(
            f"model {model.name!r} reports no accuracy metric (it reports {sorted(results)}); "
            "compile it with metrics=['accuracy']"
        )
    return float(results[accuracy_names[0]])


def __getattr__(name: str) -> Any:
    # `TeacherGuidedObjective` was this class's name until 0.1; it stays an alias for one release.
    if name == "TeacherGuidedObjective":
        warnings.warn(
            "TeacherGuidedObjective is now TeacherGuidedScorer (KerasTuner's Objective is another thing); "
            "the old name will be removed in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return TeacherGuidedScorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
