"""The training loop (library side of ``python -m hrface_jax.train``).

Data parallel over all devices with ``jax.pmap`` (gradients averaged with
``lax.pmean``), multi-host through ``jax.distributed`` (started by
:mod:`hrface_jax.training.multihost`). Resumes from the workdir's latest checkpoint,
continuing the same data order; SIGTERM saves a checkpoint and exits.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import jax_utils
from jax.experimental import multihost_utils

from hrface_jax import atomic, checkpointing, config_lib, evaluation, models
from hrface_jax import markup as markup_lib
from hrface_jax.data import pipeline, prepare
from hrface_jax.models.config import CENTER_MODES
from hrface_jax.training import optim, shape_fit, stages
from hrface_jax.training.metric_writer import MetricWriter
from hrface_jax.training.multihost import (
  maybe_initialize as maybe_initialize_distributed,  # noqa: F401
)
from hrface_jax.training.state import TrainState, create_train_state

AXIS = "batch"  # the pmap axis: devices on this host


class NonFiniteLossError(RuntimeError):
  pass


# ----------------------------------------------------------------------------
# The step functions (pure; pmapped below).
# ----------------------------------------------------------------------------


def _example_keys(rng: jax.Array, step: jax.Array, first_index: jax.Array, n: int):
  """One PRNG key per example, from its global index in the batch.

  Keys depend on (step, global example index) only, so the same global batch
  gets the same randomness on 1 device or N, in 1 process or N.
  """
  step_key = jax.random.fold_in(rng, step)
  return jax.vmap(lambda i: jax.random.fold_in(step_key, i))(
    first_index + jnp.arange(n)
  )


def train_crop_centers(
  cfg: ml_collections.ConfigDict,
  markup: markup_lib.Markup,
  landmarks: jax.Array,
  keys: jax.Array,
  crop_mode: jax.Array,
) -> dict[str, jax.Array]:
  """Crop (and patch) centres for a training batch, as model keyword arguments.

  ``crop_mode`` (traced) indexes ``CENTER_MODES``: jittered ground truth,
  predicted, per example one or the other ("mix"), or per example and region
  a random point between them ("between"). Every mode is a weight per example
  and region of the jittered ground truth against the attention's centre (1:
  ground truth, 0: predicted), so one compiled step serves them all. Patch
  stages get the same treatment per landmark, their ground truth jittered by
  ``patches.train_jitter`` of each stage's window. Empty for models without
  crops.
  """
  if cfg.model_name != "regional":
    return {}
  centers = models.region_centers_from_landmarks(landmarks, markup)
  jitter = jax.vmap(lambda k: models.crop_center_jitter(k, cfg, centers.shape[1:]))(
    keys
  )
  use_gt = jax.vmap(
    lambda k: jax.random.bernoulli(
      jax.random.fold_in(k, 1), cfg.train_crop_mix_gt_fraction
    )
  )(keys)

  def mode_weights(num: int, salt: int) -> jax.Array:
    # "between": the nets then see the previous stage's own errors, in
    # direction and size, at every fraction of their full size: the inputs
    # they get at test time, and better ones.
    between = jax.vmap(
      lambda k: jax.random.uniform(jax.random.fold_in(k, salt), (num,))
    )(keys)
    ones = jnp.ones_like(between)
    weights = {
      "gt_jitter": ones,
      "predicted": jnp.zeros_like(between),
      "mix": use_gt[:, None] * ones,
      "between": between,
    }
    return jnp.stack([weights[m] for m in CENTER_MODES])[crop_mode]

  kwargs = {
    "crop_centers": centers + jitter,
    "crop_center_weights": mode_weights(centers.shape[1], 2),
  }
  if cfg.patches.enabled:
    stages = models.patch_stages(cfg)
    num = landmarks.shape[1]
    patch_centers, patch_weights = [], []
    for i, stage in enumerate(stages):
      amount = cfg.patches.train_jitter * stage.window
      noise = jax.vmap(
        lambda k, i=i, a=amount: jax.random.uniform(
          jax.random.fold_in(k, 10 + 2 * i), (num, 2), jnp.float32, -a, a
        )
      )(keys)
      patch_centers.append(landmarks + noise)
      patch_weights.append(mode_weights(num, 11 + 2 * i))
    kwargs["patch_centers"] = jnp.stack(patch_centers)
    kwargs["patch_center_weights"] = jnp.stack(patch_weights)
  return kwargs


def _coarse_outputs(module, images: jax.Array) -> dict[str, jax.Array]:
  """A regional model's coarse network alone (a flax ``method``)."""
  out = dict(module.coarse(images))
  out["landmarks"] = out["coarse_landmarks"]
  return out


def train_step(
  state: TrainState,
  batch: dict[str, jax.Array],
  controls: dict[str, Any],
  *,
  model: Any,
  tx: optax.GradientTransformation,
  cfg: ml_collections.ConfigDict,
  markup: markup_lib.Markup,
  schedule: optax.Schedule,
  coarse_only: bool = False,
) -> tuple[TrainState, dict[str, jax.Array]]:
  """One update on this device's share of the global batch.

  ``controls``: the training stage (:func:`hrface_jax.training.stages.stage_controls`).
  ``coarse_only``: a regional model's coarse stage, which runs (and reports
  the losses of) its coarse network alone; the update is the same.
  """
  n = batch["image"].shape[0]
  # The pmap axis spans every process's devices, process-major (JAX's order
  # for multi-process pmap): the layout of the global batch's slices.
  first = jax.lax.axis_index(AXIS) * n
  keys = _example_keys(state.rng, state.step, first, n)
  crop_kwargs = train_crop_centers(
    cfg, markup, batch["landmarks"], keys, controls["crop_mode"]
  )

  frozen = tuple(cfg.frozen_modules)

  def loss_of(params):
    # No gradient is computed for frozen subtrees (XLA drops their backward).
    params = {
      k: jax.lax.stop_gradient(v) if k in frozen else v for k, v in params.items()
    }
    if coarse_only:
      # The coarse stage's gradient without running the crops, regional and
      # patch networks (their loss terms weigh 0 there): ~3x cheaper steps.
      outputs = model.apply({"params": params}, batch["image"], method=_coarse_outputs)
      coarse_cfg = ml_collections.ConfigDict(cfg.to_dict())
      coarse_cfg.model_name = "coarse"
      return models.loss_fn(coarse_cfg, outputs, batch["landmarks"])
    outputs = model.apply({"params": params}, batch["image"], **crop_kwargs, train=True)
    return models.loss_fn(cfg, outputs, batch["landmarks"], controls["loss_scales"])

  (loss, metrics), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
  # Per-device means over equal shares: their mean is the global-batch mean.
  grads = jax.lax.pmean(grads, AXIS)
  metrics = jax.lax.pmean({"loss": loss, **metrics}, AXIS)

  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  decay = cfg.optimizer.ema_decay
  ema = (
    params
    if decay == 0
    else jax.tree.map(
      lambda e, p: decay * e + (1 - decay) * p, state.ema_params, params
    )
  )

  # A non-finite loss or gradient skips the update (params stay the last good
  # ones) and records the step; the host stops the run at the next log.
  finite = jnp.isfinite(metrics["loss"]) & jnp.isfinite(optax.tree.norm(grads))
  keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
  new_state = state.replace(
    step=state.step + 1,
    params=keep(params, state.params),
    opt_state=keep(opt_state, state.opt_state),
    ema_params=keep(ema, state.ema_params),
    first_nonfinite_step=jnp.where(
      ~finite & (state.first_nonfinite_step < 0), state.step, state.first_nonfinite_step
    ),
  )
  metrics["learning_rate"] = schedule(state.step)
  metrics["grad_norm"] = optax.tree.norm(grads)
  return new_state, metrics


def make_p_train_step(
  config, model, tx, devices=None, *, coarse_only: bool = False
) -> Callable:
  """The pmapped ``step(state, batch, controls)`` over ``devices`` (default:
  every process's; each feeds its local ones its slice of the global batch).
  ``controls`` (:func:`hrface_jax.training.stages.stage_controls`) are the
  same on every device; every stage runs the one compiled step, except a
  regional model's coarse stage with ``coarse_only`` (:func:`train_step`)."""
  step = functools.partial(
    train_step,
    model=model,
    tx=tx,
    cfg=config,
    markup=markup_lib.get_markup(config.markup),
    schedule=optim.learning_rate_schedule(config),
    coarse_only=coarse_only,
  )
  return jax.pmap(
    step, axis_name=AXIS, in_axes=(0, 0, None), donate_argnums=(0,), devices=devices
  )


# ----------------------------------------------------------------------------
# Host-side helpers.
# ----------------------------------------------------------------------------


def _device_axis(devices) -> jax.NamedSharding:
  """Leading axis over ``devices``, named like the pmap axis: the sharding
  pmap gives its outputs."""
  return jax.NamedSharding(jax.sharding.Mesh(np.asarray(devices), (AXIS,)), jax.P(AXIS))


def shard(batch: dict[str, np.ndarray], devices) -> dict[str, jax.Array]:
  """[B_local, ...] host arrays -> [n_devices, B_local / n, ...] on the devices."""
  n, sharding = len(devices), _device_axis(devices)
  return jax.tree.map(
    lambda x: jax.device_put(np.asarray(x).reshape(n, -1, *x.shape[1:]), sharding),
    batch,
  )


def replicate(tree: Any, devices) -> Any:
  """One copy of every leaf per device, [n_devices, ...].

  Unlike ``flax.jax_utils.replicate`` the copies carry the sharding pmap gives
  its outputs, so the step that consumes its own output does not compile a
  second time for a differently named mesh.
  """
  n, sharding = len(devices), _device_axis(devices)
  return jax.tree.map(
    lambda x: jax.device_put(
      np.broadcast_to(np.asarray(x), (n, *np.shape(x))), sharding
    ),
    tree,
  )


class Prefetcher:
  """Puts the next batches on the devices ahead of time, remembering, for each,
  the input-iterator state from before it was read: the state a checkpoint at
  that step must save for an exact resume."""

  def __init__(self, iterator, devices, size: int):
    self._it, self._devices, self._size = iterator, devices, max(size, 1)
    self._queue: collections.deque = collections.deque()

  def _fill(self):
    while len(self._queue) < self._size:
      state = self._it.get_state()
      self._queue.append((state, shard(next(self._it), self._devices)))

  def next(self) -> dict[str, jax.Array]:
    self._fill()
    return self._queue.popleft()[1]

  def state_for_next(self) -> dict:
    """Iterator state that makes the next batch returned the first one read."""
    return self._queue[0][0] if self._queue else self._it.get_state()


def _format_eta(seconds: float) -> str:
  seconds = int(seconds)
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def init_params(config: ml_collections.ConfigDict, model, rng: jax.Array):
  """Fresh parameters, with ``config.init_modules`` from ``config.init_from``."""
  images = jnp.zeros((1, config.resolution, config.resolution, 3), jnp.uint8)
  params = jax.jit(lambda r: model.init(r, images, train=False))(rng)["params"]
  if config.get("init_from"):
    params = load_modules(params, config.init_from, tuple(config.init_modules))
  return params


def load_modules(params: dict, path: str, names: tuple[str, ...]) -> dict:
  """``params`` with the top-level subtrees ``names`` replaced by those of the
  checkpoint at ``path`` (shapes must match: same module config)."""
  _, source, step = checkpointing.load_for_inference(path)
  params = dict(params)
  for name in names:
    if name not in params or name not in source:
      have = sorted(source) if name not in source else sorted(params)
      raise ValueError(
        f"config.init_modules: {name!r} is not in "
        f"{path if name not in source else 'this model'} (it has {have})"
      )
    want = jax.tree.map(np.shape, params[name])
    got = jax.tree.map(np.shape, source[name])
    if want != got:
      raise ValueError(
        f"config.init_from={path}: its {name!r} parameters have other shapes "
        "than this model's; the two configs must build the same module"
      )
    params[name] = jax.tree.map(jnp.asarray, source[name])
  logging.info("Initialised %s from %s (step %d)", names, path, step)
  return params


# ----------------------------------------------------------------------------
# The loop.
# ----------------------------------------------------------------------------


def fits_shape_prior(config: ml_collections.ConfigDict) -> bool:
  """Whether training ends by fitting the model's shape prior."""
  return models.has_shape_prior(config) and int(config.shape.fit_steps) > 0


def _with_fitted_shape_prior(
  config: ml_collections.ConfigDict,
  model,
  p_predict: Callable,
  p_state: TrainState,
  devices,
  is_main: bool,
) -> TrainState:
  """``p_state`` with its shape prior fitted on the model's own points on the
  training faces (params and EMA params alike; the prior is not trained by
  the step, so they hold the same one)."""
  t0 = time.perf_counter()
  predictions = evaluation.predict_split(
    config,
    p_predict,
    p_state.ema_params,
    config.train_split,
    max_examples=int(config.shape.fit_examples),
    progress=is_main,
  )
  state = jax.device_get(jax_utils.unreplicate(p_state))
  log = (lambda line: print(line, flush=True)) if is_main else (lambda _: None)
  points, true = predictions["unrefined"], predictions["true"]
  if config.shape.fit_mirrored:
    flip = markup_lib.get_markup(config.markup).flip_permutation
    points, true = shape_fit.with_mirrored_faces(points, true, flip)
  fitted, before, after = shape_fit.fit_shape_prior(
    model.shape,
    state.ema_params["shape"],
    points,
    true,
    config.shape,
    seed=config.seed,
    log=log,
  )
  mirrored = " and their mirror images" if config.shape.fit_mirrored else ""
  log(
    f"shape prior fitted on {len(predictions['true'])} {config.train_split} "
    f"faces{mirrored} in {time.perf_counter() - t0:.0f} s: their NME(io) "
    f"{before:.4f} -> {after:.4f}"
  )
  state = state.replace(
    params={**state.params, "shape": fitted},
    ema_params={**state.ema_params, "shape": fitted},
  )
  return replicate(state, devices)


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str
) -> dict[str, float]:
  """Trains (or resumes) in ``workdir``; returns the last validation metrics.

  Clears JAX's compilation caches when it returns (see the end).
  """
  devices = jax.local_devices()
  config_lib.validate_config(
    config, num_devices=len(devices), num_processes=jax.process_count()
  )
  config = ml_collections.ConfigDict(config.to_dict())  # detach from flags
  workdir = os.path.abspath(workdir)
  is_main = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)
  config_path = os.path.join(workdir, "config.json")
  changed = []
  if os.path.exists(config_path):
    with open(config_path) as f:
      changed = config_lib.config_differences(json.load(f), config.to_dict())
  if is_main:
    atomic.write_json(config_path, config.to_dict())
  writer = MetricWriter(workdir, enabled=is_main)
  stage_list = stages.schedule(config)

  model = models.build_model(config, validate=False)  # validate_config did
  tx = optim.make_optimizer(config)
  rng = jax.random.PRNGKey(config.seed)
  params_rng, state_rng = jax.random.split(rng)
  state = create_train_state(init_params(config, model, params_rng), tx, state_rng)
  num_params = sum(x.size for x in jax.tree.leaves(state.params))

  checkpointer = checkpointing.Checkpointer(
    workdir, keep_last=config.keep_checkpoints, keep_best=config.keep_best_checkpoints
  )
  if jax.process_count() > 1:
    # hrface_synth renders itself on first use: once, by process 0, not by
    # every process into the same folder at the same time.
    if is_main:
      prepare.ensure_prepared(config)
    multihost_utils.sync_global_devices("hrface_jax: dataset prepared")
  train_iter = pipeline.make_train_iterator(config)
  # The newest checkpoint that reads back (damaged ones are set aside).
  restored = checkpointer.restore_latest(jax.device_get(state))
  if restored is not None:
    latest, host_state, data_state = restored
    state = jax.tree.map(jnp.asarray, host_state)
    train_iter.set_state(data_state)
    logging.info("Resumed from %s at step %d", checkpointer.directory, latest)
    if changed and is_main:
      # Resuming is right for a longer schedule, wrong for a different model:
      # say which, loudly, instead of silently training the old parameters.
      print(
        f"hrface_jax.train: WARNING: {workdir} was started with another config; "
        f"resuming its step-{latest} checkpoint with the new one. Changed: "
        f"{'; '.join(changed)}. Use a new --workdir to start over.",
        flush=True,
      )
  start_step = int(state.step)
  if is_main:
    print(
      f"hrface_jax.train: {config.model_name} model, {num_params / 1e6:.2f}M "
      f"params, resolution {config.resolution}, global batch {config.batch_size} "
      f"on {jax.device_count()} device(s) x {jax.process_count()} process(es); "
      f"stages {[(s.name, s.start_step, s.end_step) for s in stage_list]}; "
      f"{'resuming at step ' + str(start_step) if start_step else 'from scratch'}",
      flush=True,
    )

  p_state = replicate(state, devices)
  del state
  p_train_step = make_p_train_step(config, model, tx)
  # A regional model's coarse stage runs its coarse network alone (its own,
  # much smaller compiled step).
  p_coarse_step = make_p_train_step(config, model, tx, coarse_only=True)
  coarse_alone = config.model_name == "regional"
  p_predict = evaluation.make_p_predict(model)
  prefetcher = Prefetcher(train_iter, devices, config.device_prefetch_batches)

  preempted = []
  previous_handler = signal.signal(signal.SIGTERM, lambda *_: preempted.append(True))

  def save(step: int, metrics: dict | None = None):
    host_state = jax.device_get(jax_utils.unreplicate(p_state))
    checkpointer.save(step, host_state, prefetcher.state_for_next(), config, metrics)

  last_eval: dict[str, float] = {}
  pending: list[dict] = []
  t_log, step_log = time.perf_counter(), start_step
  t_start = time.perf_counter()
  step = start_step
  try:
    while step < config.total_steps:
      stage = stages.stage_at(stage_list, step)
      controls = stages.stage_controls(config, stage.name)
      step_fn = (
        p_coarse_step if coarse_alone and stage.name == "coarse" else p_train_step
      )
      p_state, p_metrics = step_fn(p_state, prefetcher.next(), controls)
      pending.append(p_metrics)
      step += 1
      # At most two steps in flight. Dispatch is asynchronous: when batches
      # come faster than steps (4096^2 after the first epoch), the loop would
      # otherwise queue up to log_every_steps steps, each holding its batch
      # (400 MB at 4096^2, batch 8): 9 -> 21 GB swings, an OOM kill at 24 GB.
      if len(pending) >= 2:
        jax.block_until_ready(pending[-2])

      if step % config.log_every_steps == 0 or step == config.total_steps:
        host = jax.device_get(pending)
        pending = []
        bad = int(jax.device_get(p_state.first_nonfinite_step[0]))
        if bad >= 0:
          raise NonFiniteLossError(
            f"training loss became non-finite at step {bad} (stage {stage.name}); "
            f"that update was skipped and training stopped. The last good "
            f"checkpoint is step {checkpointer.latest_step()} in "
            f"{checkpointer.directory}. Lower config.learning_rate or check the data."
          )
        # The coarse stage's step reports fewer terms: mean what each has.
        keys = dict.fromkeys(k for m in host for k in m)
        summary = {k: float(np.mean([m[k][0] for m in host if k in m])) for k in keys}
        now = time.perf_counter()
        ips = (step - step_log) * config.batch_size / (now - t_log)
        eta = (config.total_steps - step) * (now - t_log) / max(step - step_log, 1)
        t_log, step_log = now, step
        summary["images_per_second"] = ips
        writer.write(step, summary, stage=stage.name)
        if is_main:
          print(
            f"step {step}/{config.total_steps} [{stage.name}] "
            f"loss {summary['loss']:.4f} lr {summary['learning_rate']:.2e} "
            f"{ips:.1f} img/s ETA {_format_eta(eta)}",
            flush=True,
          )

      if step == config.total_steps and fits_shape_prior(config):
        p_state = _with_fitted_shape_prior(
          config, model, p_predict, p_state, devices, is_main
        )

      if step % config.eval_every_steps == 0 or step == config.total_steps:
        last_eval = evaluation.evaluate_during_training(
          config, p_predict, p_state.ema_params
        )
        writer.write(step, last_eval, stage=stage.name)
        if is_main:
          print(
            f"step {step}: validation nme_inter_ocular "
            f"{last_eval['nme_inter_ocular']:.4f} on "
            f"{int(last_eval['num_images'])} {config.eval_split} images",
            flush=True,
          )
        save(step, last_eval)
      elif step % config.checkpoint_every_steps == 0 or step == config.total_steps:
        save(step)

      if preempted:
        if checkpointer.latest_step() != step:
          save(step)
        checkpointer.wait()
        if is_main:
          print(f"SIGTERM: saved a checkpoint at step {step}; exiting.", flush=True)
        sys.exit(143)
  finally:
    checkpointer.close()
    writer.close()
    signal.signal(signal.SIGTERM, previous_handler)
    # Every compiled program goes (the caller's too: they recompile on next
    # use). XLA:CPU maps memory for each program's code, ~4,000 mappings for
    # a short run's steps, and a process may hold 65,530 (vm.max_map_count):
    # a process that trained ~15 times crashed inside XLA.
    jax.clear_caches()
  if is_main:
    print(
      f"done: {step - start_step} steps in "
      f"{_format_eta(time.perf_counter() - t_start)}; workdir {workdir}",
      flush=True,
    )
  return last_eval
