"""The ``litepose-nas`` command line.

Commands are registered by name in :data:`COMMANDS` as ``"module:attribute"`` and imported only
when invoked, so ``litepose-nas profile`` runs where torch is not installed and ``--help`` is fast.
"""
from __future__ import annotations

import importlib
import sys

import click

from .errors import run_cli_command

# name -> (import path, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "arch": ("litepose_nas.cli.arch_cmd:arch", "Validate and describe architecture JSON files."),
    "space": ("litepose_nas.cli.space_cmd:space", "Describe a search space."),
    "profile": ("litepose_nas.cli.profile_cmd:profile", "Profile every layer of a search space into a latency table."),
    "latency": ("litepose_nas.cli.latency_cmd:latency", "List, inspect and validate latency tables."),
    "data": ("litepose_nas.cli.data_cmd:data", "Synthetic pose datasets; check and preview COCO / CrowdPose folders."),
    "checkpoint": ("litepose_nas.cli.checkpoint_cmd:checkpoint", "Inspect model checkpoints (original LitePose layouts)."),
    "export": ("litepose_nas.cli.export_cmd:export", "Export a subnet: arch JSON, weights, ONNX model, metadata."),
    "infer": ("litepose_nas.cli.infer_cmd:infer", "Run an exported ONNX model on images: COCO-format people + drawings."),
    "train-supernet": ("litepose_nas.cli.train_cmd:train_supernet", "Train a supernet: sandwich rule, in-place distillation, resume, torchrun."),
    "train": ("litepose_nas.cli.train_cmd:train_subnet", "Train or fine-tune one static subnet (from a supernet with --init-from)."),
    "evaluate": ("litepose_nas.cli.evaluate_cmd:evaluate", "Evaluate a model on COCO / CrowdPose: COCO results + official metrics."),
    "score": ("litepose_nas.cli.score_cmd:score", "Score a COCO-format results JSON against ground truth (COCO / CrowdPose metrics)."),
    "search": ("litepose_nas.cli.search_cmd:search", "Search subnets under latency / MACs budgets (evolution, Optuna, random)."),
    "predictor": ("litepose_nas.cli.predictor_cmd:predictor", "Fit accuracy predictors (CV report) and collect supernet evaluations."),
    "demo": ("litepose_nas.cli.demo_cmd:demo", "The whole pipeline on synthetic data in one command: train, fit, search, export, report."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        return run_cli_command(lambda: super(LazyGroup, self).invoke(ctx))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="litepose-nas")
def main() -> None:
    """Hardware-aware architecture search for real-time multi-person pose estimation (Lite Pose)."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
