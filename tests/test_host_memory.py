"""The host allocator's huge-page tunable: environment, re-exec, and effect."""

import os
import subprocess
import sys
import textwrap

import pytest

from hrface_jax import host_memory

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

needs_tunable = pytest.mark.skipif(
  not host_memory.applies({}),
  reason="needs Linux, glibc >= 2.35 and transparent huge pages",
)


def _clean_env(**extra: str) -> dict[str, str]:
  env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
  env.pop(host_memory.OPT_OUT, None)
  env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH", "")) if p)
  return {**env, **extra}


@needs_tunable
def test_tuned_environ_adds_the_tunable_and_keeps_the_users_own():
  assert host_memory.tuned_environ({})["GLIBC_TUNABLES"] == host_memory.TUNABLE
  env = host_memory.tuned_environ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
  assert env["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{host_memory.TUNABLE}"
  # Already there: unchanged, not doubled.
  assert host_memory.tuned_environ(env) == env
  # A hugetlb value of the user's own is theirs.
  own = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}
  assert host_memory.tuned_environ(own) == own
  assert not host_memory.is_tuned(own)


def test_opting_out_leaves_the_environment_alone():
  for value in ("0", "false", "off"):
    env = {host_memory.OPT_OUT: value}
    assert not host_memory.applies(env)
    assert host_memory.tuned_environ(env) == env


@needs_tunable
@pytest.mark.parametrize("how", ["module", "code"])
def test_reexec_restarts_the_same_command_line_with_the_tunable(tmp_path, how):
  probe = textwrap.dedent(
    """
    import json, os, sys
    from hrface_jax import host_memory
    host_memory.reexec_with_huge_pages()
    print(json.dumps([os.environ.get("GLIBC_TUNABLES"), sys.argv[1:]]))
    """
  )
  if how == "module":
    (tmp_path / "probe_mod.py").write_text(probe)
    cmd = [sys.executable, "-m", "probe_mod", "--flag=1", "two words"]
  else:
    cmd = [sys.executable, "-c", probe, "--flag=1", "two words"]
  env = _clean_env(PYTHONPATH=f"{REPO}{os.pathsep}{tmp_path}")
  out = subprocess.run(
    cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
  )
  assert out.returncode == 0, out.stderr
  # One line: the process was replaced before it printed, not run twice.
  assert out.stdout.strip().splitlines() == [
    f'["{host_memory.TUNABLE}", ["--flag=1", "two words"]]'
  ]
  # Opted out: no re-exec, no tunable.
  out = subprocess.run(
    cmd,
    env={**env, host_memory.OPT_OUT: "0"},
    cwd=tmp_path,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert out.stdout.strip().splitlines() == ['[null, ["--flag=1", "two words"]]']


_FAULTS = textwrap.dedent(
  """
  import resource
  import jax, jax.numpy as jnp
  x = jnp.ones((16 << 20,), jnp.float32)  # 64 MiB: glibc maps it afresh
  f = jax.jit(lambda a: a * 1.5 + 1.0)
  f(x).block_until_ready()
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  for _ in range(5):
    f(x).block_until_ready()
  print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
  """
)


@needs_tunable
@pytest.mark.skipif(
  host_memory.thp_mode() != "madvise",
  reason="with THP 'always' every process has huge pages already",
)
def test_the_tunable_stops_xla_faulting_in_its_buffers_every_call():
  def faults(**env):
    out = subprocess.run(
      [sys.executable, "-c", _FAULTS],
      env=_clean_env(JAX_PLATFORMS="cpu", **env),
      capture_output=True,
      text=True,
      timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return float(out.stdout.strip().splitlines()[-1])

  plain = faults()
  tuned = faults(GLIBC_TUNABLES=host_memory.TUNABLE)
  # 64 MiB of 4 KiB pages = 16,384 faults a call without it.
  assert plain > 8000, plain
  assert tuned < plain / 10, (plain, tuned)
