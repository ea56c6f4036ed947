"""Multi-host training: launch variables, and several JAX processes on
localhost (gloo CPU collectives) training like one."""

from __future__ import annotations

import pytest
from conftest import tiny_config

from hrface_jax import multihost

PLAIN_HOST = {
  "JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234",
  "JAX_NUM_PROCESSES": "4",
  "JAX_PROCESS_ID": "3",
}


def test_plain_host_variables_become_initialize_arguments():
  assert multihost.initialize_args(PLAIN_HOST) == {
    "coordinator_address": "10.0.0.1:1234",
    "num_processes": 4,
    "process_id": 3,
  }
  # SLURM, Open MPI, TPU pods: JAX detects everything itself.
  assert multihost.initialize_args({"SLURM_NTASKS": "2"}) == {}
  assert multihost.initialize_args({"JAX_COORDINATOR_ADDRESS": "h:1"}) == {}


@pytest.mark.parametrize(
  "change, message",
  [
    ({"JAX_PROCESS_ID": "4"}, "JAX_PROCESS_ID=4 with JAX_NUM_PROCESSES=4"),
    ({"JAX_PROCESS_ID": "-1"}, "JAX_PROCESS_ID='-1': expected an integer >= 0"),
    ({"JAX_NUM_PROCESSES": "two"}, "JAX_NUM_PROCESSES='two'"),
    ({"JAX_NUM_PROCESSES": "0"}, "expected an integer >= 1"),
    ({"JAX_PROCESS_ID": None}, "JAX_NUM_PROCESSES is set but JAX_PROCESS_ID is not"),
    ({"JAX_NUM_PROCESSES": None}, "JAX_PROCESS_ID is set but JAX_NUM_PROCESSES is not"),
    ({"JAX_COORDINATOR_ADDRESS": None}, "need JAX_COORDINATOR_ADDRESS=HOST:PORT"),
    ({"JAX_COORDINATOR_ADDRESS": "10.0.0.1"}, "'10.0.0.1': expected HOST:PORT"),
  ],
)
def test_inconsistent_variables_are_named(change, message):
  env = {k: v for k, v in {**PLAIN_HOST, **change}.items() if v is not None}
  with pytest.raises(ValueError, match=message):
    multihost.initialize_args(env)


def test_initialize_gets_the_variables_and_the_collectives(monkeypatch, tmp_path):
  calls, updates = [], []
  monkeypatch.setattr(
    multihost.jax.distributed, "initialize", lambda **kw: calls.append(kw)
  )
  monkeypatch.setattr(multihost.jax.config, "update", lambda *a: updates.append(a))
  config = tiny_config(str(tmp_path), distributed_timeout_s=12)
  env = {**PLAIN_HOST, "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo"}
  assert multihost.maybe_initialize(config, env)
  assert calls == [
    {
      "coordinator_address": "10.0.0.1:1234",
      "num_processes": 4,
      "process_id": 3,
      "heartbeat_timeout_seconds": 12,
    }
  ]
  assert updates == [("jax_cpu_collectives_implementation", "gloo")]
  # SLURM: JAX finds the values; "auto" without a cluster and "off": nothing.
  assert multihost.maybe_initialize(config, {"SLURM_NTASKS": "2"})
  assert calls[-1] == {"heartbeat_timeout_seconds": 12}
  assert not multihost.maybe_initialize(config, {})
  config.distributed = "off"
  assert not multihost.maybe_initialize(config, PLAIN_HOST)
  assert len(calls) == 2
  config.distributed = "auto"
  with pytest.raises(ValueError, match="JAX_CPU_COLLECTIVES_IMPLEMENTATION='nccl'"):
    multihost.maybe_initialize(
      config, {**PLAIN_HOST, "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "nccl"}
    )
