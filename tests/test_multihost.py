"""Multi-host training: launch variables, and several JAX processes on
localhost (gloo CPU collectives) training like one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import jax
import numpy as np
import pytest
from conftest import make_config, tiny_config, train_command

from hrface_jax import checkpointing
from hrface_jax.data import pipeline
from hrface_jax.training import multihost

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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


class _FakeCoordinationService:
  """The key-value store of JAX's coordination service, as the client sees it."""

  def __init__(self, checked_in=(), reachable=True):
    self.store = {f"hrface_jax/alive/{p}": "1" for p in checked_in}
    self.reachable = reachable

  def key_value_set(self, key, value, allow_overwrite=False):
    if not self.reachable:
      raise RuntimeError("UNAVAILABLE: Failed to send RPC to coordination service")
    self.store[key] = value

  def key_value_dir_get(self, prefix):
    return [(k, v) for k, v in self.store.items() if k.startswith(prefix)]


def test_a_failed_collective_names_the_lost_process(monkeypatch):
  gloo = jax.errors.JaxRuntimeError(
    "UNKNOWN: Gloo all-reduce failed: Connection reset by peer\nmore"
  )
  assert not multihost.is_runtime_failure(gloo)  # one process: not about peers
  monkeypatch.setattr(multihost.jax, "process_count", lambda: 3)
  monkeypatch.setattr(multihost.jax, "process_index", lambda: 0)
  assert multihost.is_runtime_failure(gloo)
  assert multihost.is_runtime_failure(ValueError("UNKNOWN: Gloo all-reduce failed"))
  assert not multihost.is_runtime_failure(ValueError("config.batch_size=3: ..."))

  service = _FakeCoordinationService(checked_in=[2])  # process 1 never checks in
  monkeypatch.setattr(multihost, "_client", lambda: service)
  message = multihost.describe_runtime_failure(gloo, window_s=0.3)
  assert message == (
    "process 0 of 3: lost JAX process 1: it died or stopped responding "
    "(UNKNOWN: Gloo all-reduce failed: Connection reset by peer)"
  )
  service.store["hrface_jax/alive/1"] = "1"  # everyone there: not a lost peer
  assert multihost.describe_runtime_failure(gloo, window_s=0.3) is None
  service.reachable = False  # the coordinator (in process 0) is gone
  monkeypatch.setattr(multihost.jax, "process_index", lambda: 1)
  monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "10.0.0.1:1234")
  assert multihost.describe_runtime_failure(gloo).startswith(
    "process 1 of 3: lost JAX process 0, the coordinator (10.0.0.1:1234)"
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


# ----------------------------------------------------------------------------
# Two JAX processes on localhost, one CPU device each, gloo collectives.
# ----------------------------------------------------------------------------

# Adam with a tiny eps turns float noise in exactly-zero gradients into
# +-lr steps (see test_train's two-device test); a larger eps keeps it noise.
RUN = {
  "total_steps": 8,
  "checkpoint_every_steps": 2,
  "eval_every_steps": 8,
  "optimizer.eps": 1e-3,
}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
  env = dict(os.environ, PYTHONUNBUFFERED="1", **extra)
  env.pop("XLA_FLAGS", None)  # one CPU device per process unless asked
  return env


def _start(cmd: list[str], logs, count: int = 2) -> list[subprocess.Popen]:
  """``count`` processes of ``cmd`` as plain hosts would start them; output
  in ``logs / process_<i>.log``."""
  port = _free_port()
  procs = []
  for i in range(count):
    env = _env(
      JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
      JAX_NUM_PROCESSES=str(count),
      JAX_PROCESS_ID=str(i),
      JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
    )
    with open(logs / f"process_{i}.log", "w") as log:
      procs.append(
        subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
      )
  return procs


def _finish(procs: list[subprocess.Popen], logs, timeout: float = 600) -> list[str]:
  """Waits for ``procs`` to succeed; returns their output."""
  try:
    codes = [p.wait(timeout=timeout) for p in procs]
  finally:
    for p in procs:
      p.kill()
  outputs = [(logs / f"process_{i}.log").read_text() for i in range(len(procs))]
  for code, out in zip(codes, outputs, strict=True):
    assert code == 0, out[-3000:]
  return outputs


def _params(workdir, step: int = 8):
  _, params, got = checkpointing.load_for_inference(
    os.path.join(workdir, "checkpoints", str(step))
  )
  assert got == step
  return params


def _max_diff(a, b) -> float:
  return max(
    jax.tree.leaves(jax.tree.map(lambda x, y: float(np.max(np.abs(x - y))), a, b))
  )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
  return str(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, data_dir):
  """A run of 2 processes to the end: (workdir, [output of each])."""
  root = tmp_path_factory.mktemp("two_processes")
  workdir = root / "workdir"
  outputs = _finish(_start(train_command(root, workdir, data_dir, **RUN), root), root)
  return workdir, outputs


@pytest.mark.slow
def test_two_processes_train_like_one(two_processes, data_dir, tmp_path):
  workdir, outputs = two_processes
  assert "global batch 4 on 2 device(s) x 2 process(es)" in outputs[0]
  two = _params(workdir)
  # The same global batch on 1 process with 2 devices, and with 1 device.
  for devices in (2, 1):
    run = tmp_path / f"one_process_{devices}_devices"
    env = _env()
    if devices > 1:
      env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    r = subprocess.run(
      train_command(tmp_path, run, data_dir, **RUN),
      cwd=REPO,
      env=env,
      capture_output=True,
      text=True,
      timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"global batch 4 on {devices} device(s) x 1 process(es)" in r.stdout
    assert _max_diff(_params(run), two) <= 1e-6, devices
    # Validation scored every test image once, and the same way.
    line = next(x for x in r.stdout.splitlines() if "validation" in x)
    assert line.endswith("on 4 test images")
    assert line in outputs[0].splitlines()


@pytest.mark.slow
def test_only_process_zero_writes(two_processes):
  workdir, outputs = two_processes
  assert "validation" not in outputs[1] and "step 8/8" not in outputs[1]
  records = (workdir / "metrics.jsonl").read_text().splitlines()
  assert len(records) == len(set(records))  # no record written twice
  train = [json.loads(r)["step"] for r in records if '"loss"' in r]
  assert train == [2, 4, 6, 8]  # logged once each
  assert len(list((workdir / "tensorboard").iterdir())) == 1  # one events file
  for step in (6, 8):  # kept checkpoints: process 0 wrote the state...
    state = workdir / "checkpoints" / str(step) / "state"
    assert [p.name for p in state.glob("ocdbt.process_*")] == ["ocdbt.process_0"]
    # ...each process its own input-pipeline position.
    data = sorted(p.name for p in (state.parent / "data").glob("process_*"))
    assert data == ["process_0-of-2.json", "process_1-of-2.json"]


@pytest.mark.slow
def test_both_processes_killed_and_restarted_resume_exactly(
  two_processes, data_dir, tmp_path
):
  workdir = tmp_path / "workdir"
  cmd = train_command(tmp_path, workdir, data_dir, **RUN)
  procs = _start(cmd, tmp_path)
  deadline = time.time() + 300
  while time.time() < deadline:  # kill -9 both once a mid-run checkpoint is done
    done = workdir / "checkpoints"
    if done.exists() and any(
      p.name.isdigit() and 2 <= int(p.name) < 8 for p in done.iterdir()
    ):
      break
    assert all(p.poll() is None for p in procs)
    time.sleep(0.05)
  for p in procs:
    p.send_signal(signal.SIGKILL)
  for p in procs:
    p.wait()
  outputs = _finish(_start(cmd, tmp_path), tmp_path)
  assert "resuming at step" in outputs[0]
  assert _max_diff(_params(workdir), _params(two_processes[0])) <= 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("victim", [1, 0])
def test_a_lost_process_stops_the_other_with_its_name(data_dir, tmp_path, victim):
  cmd = train_command(
    tmp_path, tmp_path / "w", data_dir, total_steps=100000, log_every_steps=1
  )
  procs = _start(cmd, tmp_path)
  log = tmp_path / "process_0.log"
  deadline = time.time() + 300
  while "step 2/" not in log.read_text():  # training under way
    assert time.time() < deadline and all(p.poll() is None for p in procs)
    time.sleep(0.2)
  procs[victim].send_signal(signal.SIGKILL)
  t0 = time.time()
  survivor = procs[1 - victim]
  try:
    code = survivor.wait(timeout=60)
  finally:
    for p in procs:
      p.kill()
  elapsed = time.time() - t0
  out = (tmp_path / f"process_{1 - victim}.log").read_text()
  assert code != 0 and elapsed < 60, (code, elapsed)
  if victim == 1:
    assert (
      "hrface_jax.train: error: process 0 of 2: lost JAX process 1: it died or "
      "stopped responding" in out
    ), out[-3000:]
  else:
    # The coordination service lived in process 0: JAX's own runtime stops
    # process 1 at once (a C++ abort, before Python can speak), blaming the
    # coordinator ("leader task"); or our handler says it first.
    assert "lost JAX process 0, the coordinator" in out or (
      "the leader task was preempted/died" in out
    ), out[-3000:]
