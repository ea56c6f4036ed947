"""Large host allocations on transparent huge pages (Linux, glibc).

XLA:CPU allocates the buffers of every execution with ``malloc``. glibc serves
allocations above 32 MiB with a fresh ``mmap`` and unmaps them when they are
freed, so every train step faults its whole temp allocation back in, 4 KiB at
a time, and the kernel zeroes each page: 122k page faults and a third of the
CPU time of the regional 256^2 train step (batch 8, 2 cores, 2026-12-01).
glibc's ``hugetlb=1`` tunable advises those mappings onto 2 MiB transparent
huge pages: 100-300x fewer faults, and the sweep's steps at 256^2 and 1024^2
1.2-1.8x faster (at 4096^2 no gain was measured; ``experiments/benchmark.py``
records ``train_page_faults_per_step``).

glibc reads tunables once, when a process starts, so the command-line entry
points re-execute themselves with the tunable set (:func:`reexec_with_huge_pages`)
before they do anything else; processes they start inherit it. Code that
trains from its own process gets it with
``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` in the environment.
``HRFACE_HUGE_PAGES=0`` leaves the allocator alone.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping

TUNABLE = "glibc.malloc.hugetlb=1"
OPT_OUT = "HRFACE_HUGE_PAGES"
_THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled"


def _glibc_has_hugetlb() -> bool:
  """glibc >= 2.35 (the first with the ``hugetlb`` tunable)."""
  if not sys.platform.startswith("linux"):
    return False
  lib, version = platform.libc_ver()
  if lib != "glibc":
    return False
  try:
    major, minor = (int(v) for v in version.split(".")[:2])
  except ValueError:
    return False
  return (major, minor) >= (2, 35)


def thp_mode() -> str | None:
  """The kernel's transparent huge page mode (``always``, ``madvise`` or
  ``never``), None where it cannot be read."""
  try:
    with open(_THP_MODE) as f:
      text = f.read()
  except OSError:
    return None
  start, end = text.find("["), text.find("]")
  return text[start + 1 : end] if 0 <= start < end else None


def applies(environ: Mapping[str, str] | None = None) -> bool:
  """Whether the tunable can help here and has not been opted out of."""
  env = os.environ if environ is None else environ
  if env.get(OPT_OUT, "1").strip().lower() in ("0", "false", "no", "off"):
    return False
  return _glibc_has_hugetlb() and thp_mode() in ("always", "madvise")


def is_tuned(environ: Mapping[str, str] | None = None) -> bool:
  """Whether ``environ`` (default: this process's) carries the tunable."""
  env = os.environ if environ is None else environ
  return TUNABLE in env.get("GLIBC_TUNABLES", "").split(":")


def tuned_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
  """A copy of ``environ`` (default: this process's) with the tunable added
  to ``GLIBC_TUNABLES`` (other tunables kept), where it :func:`applies`."""
  env = dict(os.environ if environ is None else environ)
  if applies(env) and not is_tuned(env):
    tunables = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t]
    # A hugetlb value of the user's own wins: it is not ours to override.
    if not any(t.startswith("glibc.malloc.hugetlb=") for t in tunables):
      env["GLIBC_TUNABLES"] = ":".join([*tunables, TUNABLE])
  return env


def reexec_with_huge_pages() -> None:
  """Replaces this process by itself, same command line, with the tunable in
  its environment: a no-op where it is already there, where it does not
  apply, or where the command line is unknown. Call it first thing in a
  ``__main__`` block, before threads or files are opened."""
  env = tuned_environ()
  argv = list(getattr(sys, "orig_argv", []) or [])
  if env == dict(os.environ) or not argv or not sys.executable:
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *argv[1:]], env)
