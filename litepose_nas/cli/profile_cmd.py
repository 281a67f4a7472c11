"""``litepose-nas profile``: time every layer of a search space into a latency table (torch-free)."""
from __future__ import annotations

import os

import click

from .common import cpu_threads, load_space, output_path, quiet_option


@click.command()
@click.option("--space", "space_path", required=True, help="Search space YAML (or shipped name: litepose, litepose-elastic).")
@click.option("--device-name", required=True, help="Name recorded in the table header (e.g. raspberry-pi-4).")
@click.option("--threads", type=cpu_threads(), default=min(2, os.cpu_count() or 1), show_default=True, help="Intra-op threads of the runtime.")
@click.option("--runtime", type=click.Choice(["onnxruntime", "torch"]), default="onnxruntime", show_default=True,
              help="onnxruntime needs only numpy + onnx + onnxruntime; torch needs PyTorch.")
@click.option("--num-joints", type=int, default=17, show_default=True, help="17 for COCO, 14 for CrowdPose (final conv widths).")
@click.option("--quick", is_flag=True,
              help="Every layer with few repeats, one pass, 3 calibration networks, no speed guard: a first look "
                   "(every row a search looks up, less precise).")
@click.option("--calibration-nets", type=int, default=8, show_default=True,
              help="Whole networks timed end to end to fit the table's scale/offset correction.")
@click.option("--no-contention-check", is_flag=True,
              help="Keep samples during which other processes took the CPU (default: drop them and wait for clean ones).")
@click.option("--no-speed-guard", is_flag=True,
              help="Time layers even while a reference layer runs slower than its nominal speed "
                   "(default: wait out slow stretches of a shared machine and re-time what they touched).")
@click.option("--passes", type=click.IntRange(1, None), default=2, show_default=True,
              help="Time everything this many times, in whole passes; each row keeps its fastest pass (--quick: 1).")
@click.option("--out", required=True, callback=output_path(), help="Output table NAME.csv (NAME.json header beside it).")
@quiet_option
def profile(space_path: str, device_name: str, threads: int, runtime: str, num_joints: int, quick: bool,
            calibration_nets: int, no_contention_check: bool, no_speed_guard: bool, passes: int, out: str,
            quiet: bool) -> None:
    """Profile each distinct layer of a search space on this device (resumes after a kill)."""
    from ..errors import InputError
    from ..latency.profiler import ProfileSettings, check_out_path, elapsed_note, profile_space
    from ..latency.runners import TimingPolicy

    if num_joints <= 0:
        raise InputError(f"--num-joints must be positive, got {num_joints}")
    if calibration_nets < 1:
        raise InputError(f"--calibration-nets must be >= 1, got {calibration_nets}")
    space = load_space(space_path)
    path = check_out_path(out)
    settings = ProfileSettings(device_name=device_name, threads=threads, runtime=runtime, num_joints=num_joints,
                               quick=quick, calibration_nets=calibration_nets,
                               speed_guard=not (no_speed_guard or quick), passes=1 if quick else passes)
    if quick:
        settings.policy = TimingPolicy(warmup=2, min_repeats=3, max_repeats=10, budget_s=0.05, max_wait_s=5.0)
        settings.net_policy = TimingPolicy(warmup=1, min_repeats=3, max_repeats=10, budget_s=0.3, max_wait_s=5.0)
    table = profile_space(space, path, settings, progress=not quiet, detect_contention=not no_contention_check)
    corr = table.header["correction"]
    cont = table.header["contention"]
    click.echo(
        f"wrote {path} ({len(table)} layers of space '{space.name}', {elapsed_note(table.header['profile_seconds'])}; "
        f"correction: {corr['scale']:.3f} * sum + {corr['offset_ms']:.2f} ms, fit MAPE {corr['fit_mape_pct']:.1f} % "
        f"on {corr['fitted_on']} networks; clean samples {_pct(cont['clean_sample_share_layers'])} of layer timings, "
        f"{cont['contended_layers']} layers never got enough clean samples)"
    )


def _pct(x) -> str:
    return "n/a" if x is None else f"{x * 100:.0f} %"
