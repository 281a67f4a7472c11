"""The training loop shared by supernet (sandwich rule) and static-subnet runs.

A run lives in one folder::

    RUN/config.json        the TrainConfig (also inside every checkpoint)
    RUN/checkpoint.pt      the latest training state (written atomically every N steps and at the end)
    RUN/metrics.jsonl      one JSON object per logging step and per validation
    RUN/supernet.pt + RUN/space.yaml   (supernet runs)  final weights, pose_supermobilenet layout
    RUN/model.pt + RUN/arch.json       (subnet runs)    final weights, pose_mobilenet layout

Exact resume: every step is a pure function of the run seed and the step number (data order,
augmentation, input size, sampled subnets), and the checkpoint holds the weights, optimiser,
scheduler, AMP scaler and RNG states, so ``save -> kill -> --resume`` gives the same losses as
an uninterrupted run.
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..errors import CheckpointError, InputError, JobError
from ..io import atomic_path, write_text_atomic
from . import accel
from .config import TrainConfig
from .data import (
    MultiResolutionDataset, StepBatchSampler, check_batch_fits, make_step_loader, split_batch, to_device,
)
from .device_targets import DeviceTargetDataset, resize_batch, step_resolution
from .distributed import DistInfo, average_buffers, barrier, broadcast_flag, init_distributed, mean_across_ranks, unwrap, wrap
from .sandwich import SandwichStep, SubnetStep, sandwich_archs
from .state import capture_rng, make_optimizer, make_scheduler, restore_rng, seed_everything

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
CONFIG_NAME = "config.json"
CHECKPOINT_FORMAT = "litepose-nas-train"
CHECKPOINT_VERSION = 1


@dataclass
class TrainResult:
    """What a run did (this process's view)."""

    out_dir: Path
    step: int  # completed steps
    history: list[dict[str, float]] = field(default_factory=list)  # per step of this session, local values
    validation: dict[str, Any] | None = None  # the last validation
    weights: Path | None = None  # the final weights file (written at the end of the run)
    stopped_early: bool = False  # time limit reached before config.steps


# ---------------------------------------------------------------------- model construction
def build_model(config: TrainConfig, arch_source: str | None = None) -> nn.Module:
    """The network a run trains: a fresh (or initialised) supernet, or a static subnet.

    ``arch_source`` (the file the subnet's architecture came from) is named in errors."""
    joints = config.num_joints
    if config.kind == "supernet":
        from ..supernet import SuperLitePose

        model = SuperLitePose(config.search_space(), joints)
        if config.init_from:
            _init_supernet(model, config.init_from)
        return model
    from ..models.litepose import LitePose

    arch = config.architecture()
    if config.init_from:
        return _init_subnet(arch, joints, config.init_from, arch_source)
    return LitePose(arch, joints)


def _init_supernet(model: nn.Module, path: str) -> None:
    """From a supernet checkpoint (ours or the original's), or a static network of the largest
    architecture (the original's ``PRETRAINED`` model), whose channels are then sorted by importance."""
    from ..checkpoints import check_state_dict, load_original_checkpoint

    ck = load_original_checkpoint(path, space=model.space)
    state = ck.model.state_dict()
    expected = model.state_dict()
    if ck.num_joints != model.num_joints:
        raise CheckpointError(f"{path}: has {ck.num_joints} joints, this run trains {model.num_joints}")
    if ck.layout == "supernet":
        check_state_dict(expected, state, path, f"the supernet of space '{model.space.name}'")
        model.load_state_dict(state, strict=True)
        model.clear_cache()
        return
    static_keys = {k: v for k, v in expected.items() if ".Linear" not in k}
    check_state_dict(static_keys, state, path, f"the largest network of space '{model.space.name}'")
    model.load_state_dict(state, strict=False)
    model.reset_kernel_transforms()
    model.reorder_channels()  # leading channels must be the important ones before slicing subnets


def _init_subnet(arch, joints: int, path: str, arch_source: str | None = None) -> nn.Module:
    """Extracted from a supernet checkpoint, or loaded from a static checkpoint of the same arch."""
    from ..checkpoints import check_state_dict, load_original_checkpoint
    from ..models.litepose import LitePose

    ck = load_original_checkpoint(path)
    if ck.num_joints != joints:
        raise CheckpointError(f"{path}: has {ck.num_joints} joints, this run trains {joints}")
    if ck.layout == "supernet":
        from ..supernet import extract_subnet

        return extract_subnet(ck.model, arch, arch_source, str(path)).train()
    model = LitePose(arch, joints)
    check_state_dict(model.state_dict(), ck.model.state_dict(), path, f"the static LitePose of {arch.describe()}")
    model.load_state_dict(ck.model.state_dict(), strict=True)
    return model


def make_loss(config: TrainConfig) -> nn.Module:
    from ..losses import PoseLoss

    # one heatmap weight per output of the network plan (one head level: one output)
    n = len(config.network().wiring.output_levels)
    weights = tuple(config.heatmap_weights)[:n]
    weights += weights[-1:] * (n - len(weights))
    return PoseLoss(
        config.num_joints,
        heatmap_weights=weights,
        push_factor=config.push_weight,
        pull_factor=config.pull_weight,
        push_loss=config.push_loss,
        push_margin=config.push_margin,
    )


# ---------------------------------------------------------------------- the trainer
class Trainer:
    """Runs (or resumes) one training run in ``out_dir``; see the module doc for the files."""

    def __init__(
        self,
        config: TrainConfig | None,
        out_dir: str | Path,
        *,
        resume: bool = False,
        data: str | None = None,
        steps: int | None = None,
        quiet: bool = False,
        device: str = "auto",
        time_limit_s: float = 0.0,
        on_step: Callable[[int, dict[str, float]], None] | None = None,
        arch_source: str | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.resume = resume
        self.quiet = quiet
        self.time_limit_s = float(time_limit_s)
        self.on_step = on_step
        self.device_choice = device
        self.checkpoint_path = self.out_dir / CHECKPOINT_NAME
        self.metrics_path = self.out_dir / METRICS_NAME
        self._checkpoint: dict[str, Any] | None = None
        # where the subnet's architecture came from, for errors (a resumed run's is its checkpoint's config)
        self.arch_source = f"{self.checkpoint_path} config arch" if resume else arch_source
        if resume:
            self._checkpoint = self._read_checkpoint()
            saved = TrainConfig.from_dict(self._checkpoint["config"], source=f"{self.checkpoint_path} config")
            # the data folder may move and the run may be extended; everything else is the checkpoint's
            config = saved.replace(data=data or saved.data, steps=steps or saved.steps)
        elif config is None:
            raise InputError("a new run needs a training config")
        else:
            config = config.replace(data=data or config.data, steps=steps or config.steps)
        if not resume and self.checkpoint_path.exists():
            raise InputError(
                f"{self.out_dir} already holds a run ({CHECKPOINT_NAME}); pass --resume to continue it "
                "or choose another --out"
            )
        self.config = config.validate()

    # ------------------------------------------------------------------ checkpoints
    def _read_checkpoint(self) -> dict[str, Any]:
        from ..checkpoints import read_checkpoint

        if not self.checkpoint_path.is_file():
            raise InputError(f"--resume: {self.checkpoint_path} not found (no run to continue in {self.out_dir})")
        ck = read_checkpoint(self.checkpoint_path)
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{self.checkpoint_path}: not a training checkpoint of litepose-nas (field 'format')")
        if ck.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"{self.checkpoint_path}: training checkpoint version {ck.get('version')} "
                f"(allowed: {CHECKPOINT_VERSION})"
            )
        return ck

    def _save_checkpoint(self, step: int) -> None:
        payload = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "config": self.config.to_dict(),
            "step": step,
            "world_size": self.info.world_size,
            "model": unwrap(self.step_module).model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "rng": capture_rng(),
        }
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(payload, tmp)

    def _restore(self, ck: dict[str, Any]) -> int:
        model = unwrap(self.step_module).model
        try:
            model.load_state_dict(ck["model"], strict=True)
            self.optimizer.load_state_dict(ck["optimizer"])
            self.scheduler.load_state_dict(ck["scheduler"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{self.checkpoint_path}: does not fit this run ({str(exc).splitlines()[0]})") from None
        if self.scaler is not None and ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        if hasattr(model, "clear_cache"):
            model.clear_cache()
        if ck.get("world_size", 1) != self.info.world_size:
            raise InputError(
                f"{self.checkpoint_path}: the run used {ck.get('world_size')} processes, this resume has "
                f"{self.info.world_size}; resume with the same number so the data order continues exactly"
            )
        restore_rng(ck["rng"])
        return int(ck["step"])

    def _write_final(self, step: int) -> Path:
        from ..checkpoints import save_checkpoint

        model = unwrap(self.step_module).model
        meta = {"trained_steps": step, "num_joints": self.config.num_joints, "dataset": self.config.dataset,
                "keypoints": self.config.keypoint_spec().to_dict()}
        if self.config.kind == "supernet":
            space = self.config.search_space()
            write_text_atomic(self.out_dir / "space.yaml", space.to_yaml())
            return save_checkpoint(self.out_dir / "supernet.pt", model, space=space.to_dict(), **meta)
        arch = self.config.architecture()
        arch.to_json(self.out_dir / "arch.json")
        return save_checkpoint(self.out_dir / "model.pt", model, arch=arch, **meta)

    # ------------------------------------------------------------------ metrics log
    def _log(self, record: dict[str, Any]) -> None:
        if not self.info.is_main:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def _truncate_log(self, step: int) -> None:
        """Drop records written after the checkpoint we resume from (they will be written again)."""
        if not self.info.is_main or not self.metrics_path.exists():
            return
        kept = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the kill
        write_text_atomic(self.metrics_path, "".join(k + "\n" for k in kept))

    # ------------------------------------------------------------------ setup
    def _setup(self) -> int:
        cfg = self.config
        self.info: DistInfo = init_distributed(self.device_choice)
        device = self.info.device
        self.amp_dtype = accel.amp_dtype(cfg.amp, device)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.memory_format = torch.channels_last if cfg.memory_format == "channels_last" else torch.contiguous_format
        seed_everything(cfg.seed)

        from ..data import PoseDataset, open_dataset

        source = open_dataset(cfg.data, cfg.dataset, cfg.train_split, cfg.declared_keypoints())
        if cfg.keypoints is None:
            # the run records the keypoint set it trains (the space's or the file's): resume, export and
            # evaluation read it from the checkpoint
            self.config = cfg = cfg.replace(keypoints=source.spec.to_dict())
        resolutions = cfg.train_resolutions()
        output_strides = cfg.network().wiring.output_strides  # target maps at the plan's output scales
        recipe = cfg.training_recipe()
        datasets = {
            r: PoseDataset(source, r, output_sizes=[r // st for st in output_strides], train=True,
                           max_people=cfg.max_people, sigma=cfg.sigma, seed=cfg.seed, recipe=recipe)
            for r in ((max(resolutions),) if cfg.gpu_resize else resolutions)
        }
        self.train_source = source
        # --gpu-resize: the workers prepare the largest size, the device makes the step's (device_targets.py)
        self.dataset = DeviceTargetDataset(datasets[max(resolutions)]) if cfg.gpu_resize \
            else MultiResolutionDataset(datasets)
        # checked here as well as by the sampler: the run folder must not be created for a run that cannot start
        check_batch_fits(len(self.dataset), cfg.batch_size, self.info.world_size,
                         what=f"{cfg.data}: the training split {cfg.train_split!r}")

        model = build_model(cfg, self.arch_source).to(device).to(memory_format=self.memory_format).train()
        if cfg.compile:
            accel.compile_model(model)
        loss = make_loss(cfg).to(device)
        if cfg.kind == "supernet":
            step_module: nn.Module = SandwichStep(model, loss, cfg.distill_weight)
            self.space = cfg.search_space()
        else:
            step_module = SubnetStep(model, loss)
            self.space = None
        self.step_module = wrap(step_module, self.info, find_unused_parameters=cfg.kind == "supernet")
        self.optimizer = make_optimizer(model, cfg)
        self.scheduler = make_scheduler(self.optimizer, cfg)
        self.scaler = accel.make_scaler(self.amp_dtype, device)

        start = 0
        if self.info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if self._checkpoint is not None:
            start = self._restore(self._checkpoint)
            self._checkpoint = None
            self._truncate_log(start)
        elif self.info.is_main:
            write_text_atomic(self.out_dir / CONFIG_NAME, cfg.to_json() + "\n")
            if self.metrics_path.exists():
                self.metrics_path.unlink()
        barrier(self.info)
        return start

    def _loader(self, start: int):
        cfg = self.config
        self.sampler = StepBatchSampler(
            len(self.dataset), cfg.batch_size, cfg.train_resolutions(), cfg.seed,
            rank=self.info.rank, world_size=self.info.world_size, start_step=start, num_steps=cfg.steps,
        )
        return make_step_loader(self.dataset, self.sampler, cfg.num_workers,
                                pin_memory=accel.pin_memory(cfg.pin_memory, self.info.device),
                                persistent_workers=cfg.persistent_workers)

    # ------------------------------------------------------------------ one step
    def _train_step(self, step: int, batch: dict) -> dict[str, torch.Tensor]:
        cfg = self.config
        resolution = step_resolution(batch)
        archs = (
            sandwich_archs(self.space, cfg.seed, step, resolution, cfg.num_random)
            if cfg.kind == "supernet" else None
        )
        if archs is not None:
            unwrap(self.step_module).set_archs(archs)
        batch = to_device(batch, self.info.device, self.memory_format)
        if cfg.gpu_resize:
            batch = resize_batch(batch, cfg.sigma, self.memory_format)
        chunks = split_batch(batch, cfg.micro_batches)
        totals: dict[str, torch.Tensor] = {}
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            # accumulate locally, all-reduce once with the last chunk
            sync = contextlib.nullcontext() if last or not self.info.distributed else self.step_module.no_sync()
            with sync:
                with accel.autocast(self.info.device, self.amp_dtype):
                    loss, stats = self.step_module(chunk)
                loss = loss / len(chunks)
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                else:
                    loss.backward()
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v.float() / len(chunks)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(unwrap(self.step_module).model.parameters(), cfg.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        totals["lr"] = torch.tensor(float(self.optimizer.param_groups[0]["lr"]))  # the lr this step used
        self.scheduler.step()
        totals["resolution"] = torch.tensor(float(resolution))
        if not torch.isfinite(totals["loss"]):
            raise JobError(f"training diverged at step {step + 1}: the loss is {float(totals['loss'])} "
                           f"(try a lower --lr; the last good checkpoint is {self.checkpoint_path})")
        return totals

    # ------------------------------------------------------------------ validation
    def validate(self, step: int) -> dict[str, Any]:
        """AP on the first ``val_images`` validation images (supernet: largest and smallest subnet,
        each after BN recalibration). Consumes no randomness of the run."""
        from .validation import validate_run

        rng = capture_rng()
        model = unwrap(self.step_module).model
        was_training = model.training
        try:
            result = validate_run(model, self.config, self.train_source, self.info.device)
        finally:
            model.train(was_training)
            restore_rng(rng)
        record = {"step": step, "validation": result}
        self._log(record)
        return result

    # ------------------------------------------------------------------ the loop
    def run(self) -> TrainResult:
        fresh_dir = not self.out_dir.exists()
        try:
            return self._run()
        except BaseException:
            self._remove_unstarted_run(fresh_dir)
            raise

    def _remove_unstarted_run(self, fresh_dir: bool) -> None:
        """A new run that failed before its first checkpoint leaves nothing behind: no config.json
        (a later run would look like a broken resume), no metrics, no folder it created."""
        if self.resume or not self.info.is_main or self.checkpoint_path.exists():
            return
        for name in (CONFIG_NAME, METRICS_NAME):
            (self.out_dir / name).unlink(missing_ok=True)
        if fresh_dir and self.out_dir.is_dir() and not any(self.out_dir.iterdir()):
            self.out_dir.rmdir()

    def _run(self) -> TrainResult:
        cfg = self.config
        start = self._setup()
        result = TrainResult(self.out_dir, start)
        if start >= cfg.steps:
            if self.info.is_main:
                result.weights = self._write_final(start)
            return result
        from tqdm import tqdm

        loader = self._loader(start)
        images_per_step = cfg.batch_size * self.info.world_size
        bar = tqdm(total=cfg.steps, initial=start, disable=self.quiet or not self.info.is_main,
                   unit="step", dynamic_ncols=True, desc=f"train {cfg.kind}")
        t_start = time.perf_counter()
        t_window, window_steps, window_stats = time.perf_counter(), 0, {}
        step = start
        try:
            for batch in loader:
                stats = self._train_step(step, batch)
                step += 1
                local = {k: float(v) for k, v in stats.items()}
                result.history.append({"step": step, **local})
                result.step = step
                window_steps += 1
                for k, v in stats.items():
                    window_stats[k] = window_stats.get(k, 0.0) + v.detach().float().cpu()
                if self.on_step is not None:
                    self.on_step(step, local)
                timed_out = self.time_limit_s > 0 and time.perf_counter() - t_start >= self.time_limit_s
                last = step >= cfg.steps or broadcast_flag(timed_out, self.info)
                if step % cfg.log_every == 0 or last:
                    elapsed = time.perf_counter() - t_window
                    means = mean_across_ranks({k: v / window_steps for k, v in window_stats.items()}, self.info)
                    ips = images_per_step * window_steps / max(elapsed, 1e-9)
                    self._log({"step": step, "images_per_s": round(ips, 2), **{k: float(f"{v:.6g}") for k, v in means.items()}})
                    bar.set_postfix(loss=f"{means['loss']:.4g}", img_s=f"{ips:.1f}", res=int(local["resolution"]))
                    t_window, window_steps, window_stats = time.perf_counter(), 0, {}
                bar.update(1)
                if cfg.val_every > 0 and step % cfg.val_every == 0 and not last:
                    if self.info.is_main:
                        result.validation = self.validate(step)
                    barrier(self.info)
                if step % cfg.checkpoint_every == 0 or last:
                    average_buffers(unwrap(self.step_module).model, self.info)
                    if self.info.is_main:
                        self._save_checkpoint(step)
                    barrier(self.info)
                if last:
                    result.stopped_early = step < cfg.steps
                    break
        finally:
            bar.close()
        if cfg.val_every >= 0 and self.info.is_main:
            result.validation = self.validate(step)
        if self.info.is_main:
            result.weights = self._write_final(step)
        barrier(self.info)
        return result


def train(config: TrainConfig, out_dir: str | Path, **kwargs: Any) -> TrainResult:
    """Run (or with ``resume=True`` continue) a training run; see :class:`Trainer`."""
    return Trainer(config, out_dir, **kwargs).run()
