"""KerasTuner's parallel tuning (one chief oracle, many workers over gRPC), made to finish and to survive.

`SageTuner` runs KerasTuner's own chief/worker mode: start the same script once with
`KERASTUNER_TUNER_ID=chief` and once per worker with `KERASTUNER_TUNER_ID=worker0`, `worker1`, ..., all
with `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT` pointing at the chief. The chief holds the oracle
(the optuna study, the REINFORCE controller) and the project's `oracle.json` and `trial.json` files; the
workers train candidates. On top of KerasTuner's protocol (its messages are unchanged) this module adds:

- The chief exits within `poll` (0.5 s) of the last trial's end, instead of KerasTuner's `sleep(20)`.
- Heartbeats: while a worker runs a trial it asks the chief for that trial every `heartbeat` seconds. A
  trial whose worker has been silent for `worker_timeout` seconds (killed, hung, cut off) goes back to the
  queue and the next worker that asks runs it; a worker silent that long between trials is forgotten, so
  the chief does not wait for it at the end. While trials still run, a worker that asks for a new trial
  after the last one was handed out is told to wait (IDLE) rather than to stop, so that someone is left
  to re-run a trial whose worker dies. A trial ends once: a second report of it is ignored.
- A worker waiting for its chief tries again about every second (`RECONNECT_BACKOFF_S`, with gRPC's ±20%
  jitter; gRPC's own backoff grows to two minutes), so workers started before their chief all join within
  about a second of it.
- A worker that cannot reach its chief gives up with one line (`ChiefUnreachableError`) instead of
  KerasTuner's hour-long gRPC wait: at start-up after `chief_wait` seconds (a worker may be started
  before its chief), later after `chief_timeout` seconds without an answer (so within
  `chief_timeout + heartbeat` seconds of the chief's death while a trial trains, plus a grace of
  `chief_timeout` seconds after which a worker stuck in native code is ended with `os._exit(3)`).
- The chief saves `oracle.json` after every trial ends, so a finished project lists no trial as ongoing
  and a restarted chief re-runs only the trials that had not ended.

The times are read from the environment when the tuner is created:

| variable                       | default | meaning                                                  |
|--------------------------------|---------|----------------------------------------------------------|
| `KERAS_SAGE_HEARTBEAT_S`       | 5       | seconds between a worker's heartbeats during a trial      |
| `KERAS_SAGE_WORKER_TIMEOUT_S`  | 60      | silence after which the chief re-queues a worker's trial |
| `KERAS_SAGE_CHIEF_TIMEOUT_S`   | 60      | silence after which a worker gives up on its chief       |
| `KERAS_SAGE_CHIEF_WAIT_S`      | 600     | how long a worker waits for a chief that has not started |

Example (three shells on one machine; `search.py` builds a `SageTuner` and calls `search`):

```
KERASTUNER_TUNER_ID=chief   KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000 python search.py
KERASTUNER_TUNER_ID=worker0 KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000 python search.py
KERASTUNER_TUNER_ID=worker1 KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000 python search.py
```
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from concurrent import futures
from typing import Any

import grpc
import keras_tuner

from keras_sage.tuners import _compat, handshake

HEARTBEAT_VARIABLE = "KERAS_SAGE_HEARTBEAT_S"
WORKER_TIMEOUT_VARIABLE = "KERAS_SAGE_WORKER_TIMEOUT_S"
CHIEF_TIMEOUT_VARIABLE = "KERAS_SAGE_CHIEF_TIMEOUT_S"
CHIEF_WAIT_VARIABLE = "KERAS_SAGE_CHIEF_WAIT_S"

# The exit status of a worker that `Heartbeat` ends because its chief is gone and the worker's main
# thread did not stop on its own.
CHIEF_LOST_EXIT_STATUS = 3

# How long the chief lets requests in flight finish when it stops.
_STOP_GRACE_S = 5.0

# A worker that cannot reach its chief tries again at least this often. gRPC's default backoff grows to
# 120 s, so a worker started minutes before its chief would join up to two minutes late (and, in a small
# search, find every trial taken by a worker that happened to try first).
RECONNECT_BACKOFF_S = 1.0

_TrialStatus = keras_tuner.engine.trial.TrialStatus


class ChiefUnreachableError(keras_tuner.errors.FatalError):
    """A worker could not reach its chief oracle (not started yet, or gone); the message is one line."""


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """The times of parallel tuning, in seconds (see the module's table).

    Attributes:
        heartbeat: Seconds between a worker's heartbeats while it runs a trial.
        worker_timeout: Silence after which the chief re-queues a worker's trial.
        chief_timeout: Silence after which a worker gives up on its chief.
        chief_wait: How long a worker waits for a chief that has not answered yet.
        poll: How often the chief checks for silent workers and for the end of the search.
    """

    heartbeat: float = 5.0
    worker_timeout: float = 60.0
    chief_timeout: float = 60.0
    chief_wait: float = 600.0
    poll: float = 0.5

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Timeouts.{field.name} must be a positive number of seconds, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"Timeouts.{field.name} must be finite, got {value!r}")
        if self.worker_timeout <= self.heartbeat:
            raise ValueError(
                f"the worker timeout ({self.worker_timeout} s, {WORKER_TIMEOUT_VARIABLE}) must be longer "
                f"than the heartbeat ({self.heartbeat} s, {HEARTBEAT_VARIABLE})"
            )

    @classmethod
    def from_environment(cls) -> Timeouts:
        """The defaults, with any of the module's environment variables that are set.

        Raises:
            ValueError: A variable is not a positive number, naming it.
        """
        values: dict[str, float] = {}
        for name, variable in (
            ("heartbeat", HEARTBEAT_VARIABLE),
            ("worker_timeout", WORKER_TIMEOUT_VARIABLE),
            ("chief_timeout", CHIEF_TIMEOUT_VARIABLE),
            ("chief_wait", CHIEF_WAIT_VARIABLE),
        ):
            text = os.environ.get(variable)
            if text is None:
                continue
            try:
                values[name] = float(text)
            except ValueError:
                raise ValueError(f"{variable} must be a number of seconds, got {text!r}") from None
            if not (values[name] > 0 and math.isfinite(values[name])):
                raise ValueError(f"{variable} must be a positive number of seconds, got {text!r}")
        return cls(**values)


def chief_address() -> str:
    """The chief's `host:port`, from KerasTuner's `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT`."""
    return f"{os.environ.get('KERASTUNER_ORACLE_IP')}:{os.environ.get('KERASTUNER_ORACLE_PORT')}"


# The chief.


@keras_tuner.synchronized
def _create_trial(oracle: keras_tuner.Oracle, tuner_id: str) -> keras_tuner.engine.trial.Trial:
    """`oracle.create_trial`, except that it answers IDLE, not STOPPED, while other workers' trials run.

    KerasTuner stops a worker as soon as the last new trial has been handed out; if another worker then
    dies, nobody is left to re-run its trial. Held back with IDLE, the worker asks again (the servicer
    delays IDLE answers) until every trial has ended.
    """
    others_running = any(other != tuner_id for other in oracle.ongoing_trials)
    exhausted = (
        bool(oracle.max_trials)
        and len(oracle.trials) >= oracle.max_trials
        and not _compat.retry_queue(oracle)
    )
    if tuner_id not in oracle.ongoing_trials and exhausted and others_running:
        oracle.tuner_ids.add(tuner_id)
        return keras_tuner.engine.trial.Trial(oracle.get_space(), trial_id="", status=_TrialStatus.IDLE)
    return oracle.create_trial(tuner_id)


@keras_tuner.synchronized
def _end_trial(oracle: keras_tuner.Oracle, trial: keras_tuner.engine.trial.Trial) -> bool:
    """`oracle.end_trial` once per trial, then `oracle.save`; returns False for a trial already ended.

    A trial re-queued because its worker went silent, and then reported by that worker after all, is
    taken off the queue and ended.
    """
    if trial.trial_id in oracle.end_order or trial.trial_id not in oracle.trials:
        return False
    queue = _compat.retry_queue(oracle)
    running = any(t.trial_id == trial.trial_id for t in oracle.ongoing_trials.values())
    if trial.trial_id in queue and not running:
        queue.remove(trial.trial_id)
    oracle.end_trial(trial)
    # KerasTuner saves the oracle before it forgets the trial as ongoing; save again, after.
    oracle.save()
    return True


@keras_tuner.synchronized
def _requeue_silent(
    oracle: keras_tuner.Oracle,
    trial_seen: dict[str, float],
    tuner_seen: dict[str, float],
    timeout: float,
) -> list[tuple[str, str]]:
    """Re-queues the trials whose worker has been silent for `timeout` s; forgets silent idle workers.

    Returns:
        The (tuner id, trial id) pairs re-queued.
    """
    now = time.monotonic()
    requeued = []
    for tuner_id, trial in list(oracle.ongoing_trials.items()):
        if now - trial_seen.setdefault(trial.trial_id, now) > timeout:
            del oracle.ongoing_trials[tuner_id]
            oracle.tuner_ids.discard(tuner_id)
            _compat.retry_queue(oracle).append(trial.trial_id)
            requeued.append((tuner_id, trial.trial_id))
    for tuner_id in list(oracle.tuner_ids):
        if tuner_id not in oracle.ongoing_trials and now - tuner_seen.setdefault(tuner_id, now) > timeout:
            oracle.tuner_ids.discard(tuner_id)
    if requeued:
        oracle.save()
    return requeued


@keras_tuner.synchronized
def _finished(oracle: keras_tuner.Oracle) -> bool:
    """Whether every trial of the search has been handed out and has ended."""
    return (
        bool(oracle.max_trials)
        and len(oracle.trials) >= oracle.max_trials
        and not oracle.ongoing_trials
        and not _compat.retry_queue(oracle)
    )


@keras_tuner.synchronized
def _no_worker_left(oracle: keras_tuner.Oracle) -> bool:
    return not oracle.ongoing_trials and not oracle.tuner_ids


def _chief_servicer(oracle: keras_tuner.Oracle, timeouts: Timeouts) -> Any:
    """KerasTuner's `OracleServicer` with heartbeats, held-back stops and trials ended once."""
    _compat.install_quiet_condition_protos()
    service, _ = _compat.oracle_service()

    class ChiefServicer(_compat.oracle_servicer_class()):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(oracle)
            self.trial_seen: dict[str, float] = {}
            self.tuner_seen: dict[str, float] = {}

        def CreateTrial(self, request: Any, context: Any) -> Any:
            self.tuner_seen[request.tuner_id] = time.monotonic()
            trial = _create_trial(self.oracle, request.tuner_id)
            if trial.status == _TrialStatus.RUNNING:
                self.trial_seen[trial.trial_id] = time.monotonic()
            elif trial.status == _TrialStatus.STOPPED:
                self.stop_triggered = True
            elif trial.status == _TrialStatus.IDLE:
                time.sleep(min(timeouts.poll, timeouts.heartbeat))  # The worker asks again at once.
            return service.CreateTrialResponse(trial=trial.to_proto())

        def GetTrial(self, request: Any, context: Any) -> Any:
            # A worker's heartbeat is a request for its trial.
            self.trial_seen[request.trial_id] = time.monotonic()
            return super().GetTrial(request, context)

        def UpdateTrial(self, request: Any, context: Any) -> Any:
            self.trial_seen[request.trial_id] = time.monotonic()
            trial = self.oracle.get_trial(request.trial_id)
            if request.trial_id in self.oracle.end_order:  # A late report of a trial that has ended.
                return service.UpdateTrialResponse(trial=trial.to_proto())
            return super().UpdateTrial(request, context)

        def EndTrial(self, request: Any, context: Any) -> Any:
            trial = keras_tuner.engine.trial.Trial.from_proto(request.trial)
            if not _end_trial(self.oracle, trial):
                _say(f"trial {trial.trial_id} was reported again after it ended; the report is ignored")
            self.trial_seen.pop(trial.trial_id, None)
            return service.EndTrialResponse()

    return ChiefServicer()


class _AdmissionInterceptor(grpc.ServerInterceptor):
    """Refuses, before KerasTuner's servicer sees it, a request from a worker `handshake.Admission`
    refuses: another config, or a name another live worker has."""

    def __init__(self, admission: handshake.Admission):
        self.admission = admission

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        metadata = dict(handler_call_details.invocation_metadata or ())
        refusal = self.admission.refusal(metadata)
        if refusal is None:
            return continuation(handler_call_details)
        _say(f"worker {metadata.get(handshake.TUNER_ID_KEY, '(unnamed)')} refused: {refusal}")

        def refuse(request: Any, context: Any) -> None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, refusal)

        return grpc.unary_unary_rpc_method_handler(refuse)


def serve_chief(oracle: keras_tuner.Oracle, timeouts: Timeouts, fingerprint: Mapping[str, str]) -> None:
    """Serves `oracle` to the workers until the search has ended; KerasTuner's `start_server`, bounded.

    Returns within `timeouts.poll` seconds after the last trial ends and every worker has been told to
    stop (or has been silent for `timeouts.worker_timeout`). A chief started on a search that has
    already ended tells the workers that come to stop, as KerasTuner's does, and returns when they have
    gone, or after `timeouts.chief_wait` seconds if none comes (as long as a worker waits for a chief).

    Args:
        oracle: The chief's oracle.
        timeouts: The times of parallel tuning.
        fingerprint: The chief's `handshake.search_fingerprint`; workers presenting another are refused.

    Raises:
        OSError: The chief's address cannot be bound (for instance, the port is in use).
    """
    address = chief_address()
    _, service_grpc = _compat.oracle_service()
    admission = handshake.Admission(fingerprint, timeouts.worker_timeout)
    # gRPC binds with SO_REUSEADDR (a port in TIME_WAIT after a crash is reused at once); without
    # SO_REUSEPORT, a port another live process listens on is still refused.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16),
        interceptors=[_AdmissionInterceptor(admission)],
        options=[("grpc.so_reuseport", 0)],
    )
    servicer = _chief_servicer(oracle, timeouts)
    service_grpc.add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:
        raise OSError(f"the chief cannot listen on {address}: {error}") from None
    if not bound:
        raise OSError(f"the chief cannot listen on {address} (is the port in use?)")
    server.start()
    started = time.monotonic()
    finished_at_start = _finished(oracle)
    try:
        while True:
            time.sleep(timeouts.poll)
            for tuner_id, trial_id in _requeue_silent(
                oracle, servicer.trial_seen, servicer.tuner_seen, timeouts.worker_timeout
            ):
                _say(
                    f"worker {tuner_id} sent nothing for {timeouts.worker_timeout:g} s; its trial "
                    f"{trial_id} goes back to the queue"
                )
            nobody_came = not servicer.tuner_seen and time.monotonic() - started > timeouts.chief_wait
            if (servicer.stop_triggered and _no_worker_left(oracle)) or (finished_at_start and nobody_came):
                _say("every trial has ended; the chief stops")
                return
    finally:
        # The grace lets the last answers (STOPPED, to workers still asking) reach the workers.
        server.stop(grace=_STOP_GRACE_S).wait()


def _say(message: str) -> None:
    print(f"keras-sage chief: {message}", file=sys.stderr, flush=True)


# A worker.


class _BoundedStub:
    """A worker's gRPC stub whose requests wait a bounded time and fail with `ChiefUnreachableError`."""

    def __init__(self, stub: Any, timeouts: Timeouts, tuner_id: str):
        self.raw = stub
        self._timeouts = timeouts
        self._tuner_id = tuner_id
        self.joined = False
        # The worker's name, process and config fingerprint (`present_config`), sent with each request.
        self.metadata: tuple[tuple[str, str], ...] = ()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.raw, name)

        def call(request: Any, **kwargs: Any) -> Any:
            wait = self._timeouts.chief_timeout if self.joined else self._timeouts.chief_wait
            kwargs.update(wait_for_ready=True, timeout=wait, metadata=self.metadata)
            try:
                response = method(request, **kwargs)
            except grpc.RpcError as error:
                code = error.code() if isinstance(error, grpc.Call) else None
                if code == grpc.StatusCode.FAILED_PRECONDITION:
                    details = error.details() if isinstance(error, grpc.Call) else str(error)
                    raise handshake.ConfigMismatchError(
                        f"worker {self._tuner_id} refused by the chief at {chief_address()}: {details}"
                    ) from None
                if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                raise ChiefUnreachableError(lost_message(self._tuner_id, wait, joined=self.joined)) from None
            self.joined = True
            return response

        return call


def lost_message(tuner_id: str, seconds: float, joined: bool) -> str:
    """The one line a worker prints when it gives up on its chief."""
    if not joined:
        return (
            f"keras-sage worker {tuner_id}: no chief answered at {chief_address()} within {seconds:.1f} s "
            f"({CHIEF_WAIT_VARIABLE}); start the chief, or check KERASTUNER_ORACLE_IP and "
            "KERASTUNER_ORACLE_PORT"
        )
    return (
        f"keras-sage worker {tuner_id}: the chief at {chief_address()} stopped answering ({seconds:.1f} s "
        f"without a reply, {CHIEF_TIMEOUT_VARIABLE}); this worker stops. Restart the chief with the same "
        "command to resume: the trials that had not ended run again"
    )


def worker_channel(address: str) -> grpc.Channel:
    """A worker's channel to its chief at `address`, trying again every `RECONNECT_BACKOFF_S` at most."""
    milliseconds = int(RECONNECT_BACKOFF_S * 1000)
    return grpc.insecure_channel(
        address,
        options=[
            ("grpc.initial_reconnect_backoff_ms", milliseconds // 5),
            ("grpc.min_reconnect_backoff_ms", milliseconds // 5),
            ("grpc.max_reconnect_backoff_ms", milliseconds),
        ],
    )


def bound_worker_client(client: Any, timeouts: Timeouts, tuner_id: str) -> None:
    """Makes a worker's KerasTuner `OracleClient` wait for its chief a bounded time (see the module doc).

    Its requests go through a new channel (`worker_channel`) to the same chief: KerasTuner's own channel
    is left unused.
    """
    _compat.install_quiet_condition_protos()
    _, service_grpc = _compat.oracle_service()
    stub = service_grpc.OracleStub(worker_channel(chief_address()))
    _compat.set_oracle_client_stub(client, _BoundedStub(stub, timeouts, tuner_id))


def present_config(client: Any, tuner_id: str, fingerprint: Mapping[str, str]) -> None:
    """Makes a worker present its name, process and config fingerprint with each request to its chief.

    Raises:
        TypeError: The client was not bounded by `bound_worker_client` first.
    """
    stub = _compat.oracle_client_stub(client)
    if not isinstance(stub, _BoundedStub):
        raise TypeError("present_config needs a client bounded by bound_worker_client")
    stub.metadata = handshake.worker_metadata(tuner_id, fingerprint)


class Heartbeat:
    """A worker's heartbeat during one trial: asks the chief for the trial every `timeouts.heartbeat` s.

    If the chief has not answered for `timeouts.chief_timeout` seconds, it interrupts the worker's main
    thread (SIGINT, which `SageTuner.search` turns into a `ChiefUnreachableError` with `lost`) and, if
    the process is still running `timeouts.chief_timeout` seconds later, prints `lost` and ends it with
    `os._exit(CHIEF_LOST_EXIT_STATUS)`.

    Args:
        client: The worker's `OracleClient` (bounded by `bound_worker_client`).
        trial_id: The trial being run.
        timeouts: The times of parallel tuning.
        tuner_id: The worker's id, for the message.
    """

    def __init__(self, client: Any, trial_id: str, timeouts: Timeouts, tuner_id: str):
        stub = _compat.oracle_client_stub(client)
        self._get_trial = (stub.raw if isinstance(stub, _BoundedStub) else stub).GetTrial
        self._metadata = stub.metadata if isinstance(stub, _BoundedStub) else ()
        service, _ = _compat.oracle_service()
        self._request = service.GetTrialRequest(trial_id=trial_id)
        self._timeouts = timeouts
        self._tuner_id = tuner_id
        self._stop = threading.Event()
        self.lost: str | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"keras-sage heartbeat {trial_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stops the heartbeat (and the exit that may follow a lost chief)."""
        self._stop.set()

    def _run(self) -> None:
        answered = time.monotonic()
        while not self._stop.wait(self._timeouts.heartbeat):
            try:
                self._get_trial(
                    self._request,
                    wait_for_ready=True,
                    timeout=self._timeouts.heartbeat,
                    metadata=self._metadata,
                )
                answered = time.monotonic()
            except grpc.RpcError:
                if time.monotonic() - answered >= self._timeouts.chief_timeout:
                    self._give_up(time.monotonic() - answered)
                    return

    def _give_up(self, silence: float) -> None:
        self.lost = lost_message(self._tuner_id, silence, joined=True)
        if self._stop.is_set():  # The trial has ended: the worker's next call to the chief finds it gone.
            return
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        if not self._stop.wait(self._timeouts.chief_timeout):
            print(self.lost, file=sys.stderr, flush=True)
            os._exit(CHIEF_LOST_EXIT_STATUS)
