"""Multi-host runs: starting JAX's distributed runtime from the environment.

SLURM, Open MPI and TPU pods: ``jax.distributed.initialize()`` finds the
coordinator, the process count and this process's id by itself. Plain hosts:
``JAX_COORDINATOR_ADDRESS=HOST:PORT`` (process 0's host), ``JAX_NUM_PROCESSES``
and ``JAX_PROCESS_ID``; JAX reads only the first, so the other two are passed
here. ``JAX_CPU_COLLECTIVES_IMPLEMENTATION`` (``gloo`` or ``mpi``) chooses the
CPU collectives of processes without accelerators.

When a process dies, the others' next collective fails at once;
:func:`describe_runtime_failure` then names the lost process in one line
(the train CLI prints it and exits 1), before JAX's heartbeat timeout
(``config.distributed_timeout_s``) would abort them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections

COORDINATOR = "JAX_COORDINATOR_ADDRESS"
NUM_PROCESSES = "JAX_NUM_PROCESSES"
PROCESS_ID = "JAX_PROCESS_ID"
CPU_COLLECTIVES = "JAX_CPU_COLLECTIVES_IMPLEMENTATION"
CPU_COLLECTIVES_CHOICES = ("gloo", "mpi")


def _int_variable(env: Mapping[str, str], name: str, minimum: int) -> int:
  value = env[name]
  try:
    number = int(value)
  except ValueError:
    number = None
  if number is None or number < minimum:
    raise ValueError(f"{name}={value!r}: expected an integer >= {minimum}")
  return number


def initialize_args(env: Mapping[str, str]) -> dict[str, Any]:
  """``jax.distributed.initialize`` keyword arguments for plain hosts.

  Empty when neither ``JAX_NUM_PROCESSES`` nor ``JAX_PROCESS_ID`` is set, so
  that JAX detects SLURM, Open MPI or a TPU pod by itself. Raises ValueError
  naming the variable when the values are incomplete or inconsistent.
  """
  if NUM_PROCESSES not in env and PROCESS_ID not in env:
    return {}
  if NUM_PROCESSES not in env or PROCESS_ID not in env:
    given, missing = NUM_PROCESSES, PROCESS_ID
    if PROCESS_ID in env:
      given, missing = missing, given
    raise ValueError(f"{given} is set but {missing} is not: set both, or neither")
  count = _int_variable(env, NUM_PROCESSES, 1)
  process_id = _int_variable(env, PROCESS_ID, 0)
  if process_id >= count:
    raise ValueError(
      f"{PROCESS_ID}={process_id} with {NUM_PROCESSES}={count}: process ids "
      f"run from 0 to {count - 1}"
    )
  address = env.get(COORDINATOR, "")
  host, _, port = address.rpartition(":")
  if not address:
    raise ValueError(
      f"{NUM_PROCESSES} and {PROCESS_ID} need {COORDINATOR}=HOST:PORT "
      "(process 0's host and a free port, the same on every process)"
    )
  if not host or not port.isdigit():
    raise ValueError(f"{COORDINATOR}={address!r}: expected HOST:PORT")
  return {
    "coordinator_address": address,
    "num_processes": count,
    "process_id": process_id,
  }


def cpu_collectives(env: Mapping[str, str]) -> str | None:
  """``JAX_CPU_COLLECTIVES_IMPLEMENTATION``, checked; None when unset."""
  value = env.get(CPU_COLLECTIVES)
  if value is None:
    return None
  if value not in CPU_COLLECTIVES_CHOICES:
    raise ValueError(
      f"{CPU_COLLECTIVES}={value!r}: expected one of {CPU_COLLECTIVES_CHOICES}"
    )
  return value


def cluster_detected(env: Mapping[str, str]) -> bool:
  """Whether the environment describes several processes."""
  return (
    COORDINATOR in env
    or NUM_PROCESSES in env
    or int(env.get("SLURM_NTASKS", "1")) > 1
    or int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1
    or "," in env.get("TPU_WORKER_HOSTNAMES", "")
  )


def maybe_initialize(
  config: ml_collections.ConfigDict, env: Mapping[str, str] | None = None
) -> bool:
  """``jax.distributed.initialize`` when ``config.distributed`` is "on", or
  "auto" and a cluster is detected; returns whether it ran.

  A process that stops sending heartbeats for ``config.distributed_timeout_s``
  is declared lost, and the coordination service stops the others.
  """
  if config.distributed not in ("auto", "on", "off"):
    raise ValueError(
      f"config.distributed={config.distributed!r}: expected 'auto', 'on' or 'off'"
    )
  if config.distributed == "off":
    return False
  env = os.environ if env is None else env
  kwargs = initialize_args(env)
  collectives = cpu_collectives(env)
  if config.distributed != "on" and not kwargs and not cluster_detected(env):
    return False
  if collectives is not None:
    # Read when the CPU backend is created, i.e. after initialize().
    jax.config.update("jax_cpu_collectives_implementation", collectives)
  jax.distributed.initialize(
    **kwargs, heartbeat_timeout_seconds=int(config.distributed_timeout_s)
  )
  return True


def _client():
  # JAX 0.10 has no public accessor for its coordination-service client.
  from jax._src import distributed  # noqa: PLC0415

  return distributed.global_state.client


def is_runtime_failure(error: BaseException) -> bool:
  """Whether ``error`` came from the runtime (a failed collective, a lost
  peer) of a multi-process run, rather than from this process's own work."""
  if jax.process_count() == 1:
    return False
  # XLA's CPU collectives raise ValueError at dispatch, JaxRuntimeError later.
  return isinstance(error, jax.errors.JaxRuntimeError) or (
    isinstance(error, ValueError) and "Gloo" in str(error)
  )


def lost_processes(window_s: float = 5.0) -> list[int]:
  """The processes that do not check in within ``window_s``: called by every
  surviving process after a failed collective (a peer that died resets its
  connections at once, well before the heartbeat timeout).

  Raises ConnectionError when the coordination service, which runs in
  process 0, is gone.
  """
  client, count = _client(), jax.process_count()
  prefix = "hrface_jax/alive/"
  try:
    client.key_value_set(f"{prefix}{jax.process_index()}", "1", allow_overwrite=True)
    deadline = time.monotonic() + window_s
    while True:
      seen = {int(k.rsplit("/", 1)[-1]) for k, _ in client.key_value_dir_get(prefix)}
      if len(seen) == count or time.monotonic() > deadline:
        break
      time.sleep(0.2)
  except Exception as e:  # noqa: BLE001  (any failure to reach the service)
    raise ConnectionError(str(e).splitlines()[0]) from e
  return sorted(set(range(count)) - seen)


def describe_runtime_failure(error: BaseException, window_s: float = 5.0) -> str | None:
  """A one-line message naming the lost process(es) behind ``error``, or None
  when every process checks in within ``window_s`` (then ``error`` is not
  about a peer)."""
  me, count = jax.process_index(), jax.process_count()
  cause = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
  try:
    lost = lost_processes(window_s)
  except ConnectionError:
    return (
      f"process {me} of {count}: lost JAX process 0, the coordinator "
      f"({os.environ.get(COORDINATOR, 'auto-detected')}): it died or is "
      f"unreachable ({cause})"
    )
  if not lost:
    return None
  names = ", ".join(map(str, lost))
  return (
    f"process {me} of {count}: lost JAX process{'es' if len(lost) > 1 else ''} "
    f"{names}: it died or stopped responding ({cause})"
  )
