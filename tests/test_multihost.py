"""Multi-host training: launch variables, and several JAX processes on
localhost (gloo CPU collectives) training like one."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_config, tiny_config

from hrface_jax import multihost
from hrface_jax.data import pipeline

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


@pytest.mark.parametrize("processes", [1, 2, 4])
def test_each_process_reads_its_own_slice_of_every_global_batch(processes):
  local, steps = 3, 5
  reads = [
    [
      pipeline.global_example_index(i, local, p, processes)
      for i in range(steps * local)
    ]
    for p in range(processes)
  ]
  for step in range(steps):
    # Global batch `step`: process p reads its p-th slice, in order.
    batch = [reads[p][step * local : (step + 1) * local] for p in range(processes)]
    first = step * local * processes
    assert sum(batch, []) == list(range(first, first + local * processes))


@pytest.mark.parametrize("augment", [True, False])
def test_process_batches_concatenate_to_the_one_process_batch(synth_data_dir, augment):
  """Same examples, same augmentation: the global batch does not depend on
  how many processes read it."""
  config = make_config(synth_data_dir, batch_size=4, **{"augment.enabled": augment})
  one = pipeline.make_train_iterator(config, process_index=0, process_count=1)
  two = [
    pipeline.make_train_iterator(config, process_index=p, process_count=2)
    for p in range(2)
  ]
  for _ in range(4):  # 16 examples: past the first epoch of 12
    whole, halves = next(one), [next(it) for it in two]
    assert halves[0]["image"].shape[0] == 2
    for key in whole:
      np.testing.assert_array_equal(
        whole[key], np.concatenate([h[key] for h in halves]), err_msg=key
      )
    if not augment:  # unaugmented, an example is known by its landmarks
      a, b = (h["landmarks"].reshape(2, -1) for h in halves)
      assert not (a[:, None] == b[None]).all(-1).any()  # none in both slices


def test_eval_shares_cover_the_first_examples_once(synth_data_dir):
  config = make_config(synth_data_dir, batch_size=2)
  shares = [
    list(
      pipeline.make_eval_iterator(
        config, "test", max_examples=3, process_index=p, process_count=2
      )
    )
    for p in range(2)
  ]
  assert len(shares[0]) == len(shares[1])  # lock-step
  seen = [int(i) for s in shares for b in s for i in b["index"][b["mask"]]]
  assert sorted(seen) == [0, 1, 2]
