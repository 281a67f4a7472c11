"""One LitePose subnet, in the original repository's JSON format.

The JSON format (``mobile_configs/search-XS.json`` of the original repo)::

    {"img_size": 256, "input_channel": 16, "deconv_setting": [16, 24, 24],
     "backbone_setting": [{"num_blocks": 6, "stride": 2, "channel": 16,
                           "block_setting": [[6, 7], ...]}, ...]}

:class:`Arch` checks the structure (keys, types, consistency); whether the values are allowed
is the business of a :class:`~litepose_nas.space.SearchSpace` (``space.validate(arch)``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ArchError
from ..io import loads_json_bounded, read_text_bounded

if TYPE_CHECKING:
    from .plan import Wiring

CHANNEL_DIVISOR = 8
# the stem's first conv width: fixed in the original design, so its JSON files omit it
DEFAULT_STEM_MID_CHANNELS = 32


@dataclass(frozen=True)
class Block:
    """One inverted-residual block: expansion ratio and depthwise kernel size."""

    expansion: int
    kernel: int


@dataclass(frozen=True)
class Stage:
    """One backbone stage: ``channel`` outputs, ``stride`` on its first block, its blocks."""

    channel: int
    stride: int
    blocks: tuple[Block, ...]

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)


@dataclass(frozen=True)
class Arch:
    """A subnet: input resolution, stem width, backbone stages and head widths.

    ``stem_mid_channels`` is the width of the stem's first two convs (``input_channel`` is the
    stem's output width); written to JSON only when it differs from the original's 32.
    """

    img_size: int
    input_channel: int
    deconv_setting: tuple[int, ...]
    stages: tuple[Stage, ...]
    stem_mid_channels: int = DEFAULT_STEM_MID_CHANNELS

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        img_size: int,
        input_channel: int,
        deconv_setting: Sequence[int],
        stages: Sequence[tuple[int, int, Sequence[tuple[int, int]]]],
        stem_mid_channels: int = DEFAULT_STEM_MID_CHANNELS,
    ) -> "Arch":
        """Build from plain values: ``stages`` holds ``(channel, stride, [(expansion, kernel), ...])``."""
        return cls(
            stem_mid_channels=int(stem_mid_channels),
            img_size=int(img_size),
            input_channel=int(input_channel),
            deconv_setting=tuple(int(w) for w in deconv_setting),
            stages=tuple(
                Stage(int(c), int(s), tuple(Block(int(e), int(k)) for e, k in blocks))
                for c, s, blocks in stages
            ),
        )

    @classmethod
    def from_dict(cls, data: Any, source: str = "architecture") -> "Arch":
        """Parse the original repository's dict; errors name ``source`` and the field."""
        return _parse_arch(data, source)

    @classmethod
    def from_json(cls, path_or_text: str | os.PathLike) -> "Arch":
        """Read an architecture from a JSON file path or from JSON text."""
        text, source = _read_json_source(path_or_text)
        return _parse_arch(loads_json_bounded(text, source, ArchError), source)

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """The original repository's dict, keys in its order (``stem_mid_channels`` only when not 32)."""
        out: dict[str, Any] = {"img_size": self.img_size, "input_channel": self.input_channel}
        if self.stem_mid_channels != DEFAULT_STEM_MID_CHANNELS:
            out["stem_mid_channels"] = self.stem_mid_channels
        return out | {
            "deconv_setting": list(self.deconv_setting),
            "backbone_setting": [
                {
                    "num_blocks": stage.num_blocks,
                    "stride": stage.stride,
                    "channel": stage.channel,
                    "block_setting": [[b.expansion, b.kernel] for b in stage.blocks],
                }
                for stage in self.stages
            ],
        }

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """Serialise byte-for-byte as the original repository does; write atomically if ``path``."""
        text = json.dumps(self.to_dict())
        if path is not None:
            from ..io import write_text_atomic

            write_text_atomic(path, text)
        return text

    # ------------------------------------------------------------------ views
    @property
    def wiring(self) -> "Wiring":
        """The network's topology (see :mod:`litepose_nas.space.plan`)."""
        from .plan import wiring

        return wiring(self.strides, len(self.deconv_setting))

    @property
    def total_stride(self) -> int:
        """Input sizes must be a multiple of this."""
        return self.wiring.total_stride

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(stage.num_blocks for stage in self.stages)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(stage.channel for stage in self.stages)

    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(stage.stride for stage in self.stages)

    def kernels(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(b.kernel for b in stage.blocks) for stage in self.stages)

    def expansions(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(b.expansion for b in stage.blocks) for stage in self.stages)

    def describe(self) -> str:
        """A compact one-line summary, e.g. ``256px stem16 16x6/32x8/48x10/80x10 head16-24-24 k7 e6``."""
        stages = "/".join(f"{s.channel}x{s.num_blocks}" for s in self.stages)
        kernels = sorted({b.kernel for s in self.stages for b in s.blocks})
        exps = sorted({b.expansion for s in self.stages for b in s.blocks})
        head = "-".join(str(w) for w in self.deconv_setting)
        mid = "" if self.stem_mid_channels == DEFAULT_STEM_MID_CHANNELS else f"/{self.stem_mid_channels}"
        return (
            f"{self.img_size}px stem{self.input_channel}{mid} {stages} head{head} "
            f"k{','.join(map(str, kernels))} e{','.join(map(str, exps))}"
        )


# ---------------------------------------------------------------------- parsing helpers
def _read_json_source(path_or_text: str | os.PathLike) -> tuple[str, str]:
    if isinstance(path_or_text, os.PathLike):
        return _read_file(Path(path_or_text))
    text = str(path_or_text)
    if text.lstrip().startswith(("{", "[")):
        return text, "architecture JSON"
    return _read_file(Path(text))


def _read_file(path: Path) -> tuple[str, str]:
    if not path.exists():
        raise ArchError(f"{path}: file not found")
    if path.is_dir():
        raise ArchError(f"{path}: is a folder, expected an architecture JSON file")
    text = read_text_bounded(path, "architecture JSON", ArchError)
    if not text.strip():
        raise ArchError(f"{path}: file is empty (expected architecture JSON)")
    return text, str(path)


_TOP_KEYS = ("img_size", "input_channel", "deconv_setting", "backbone_setting")
_OPTIONAL_KEYS = ("stem_mid_channels",)
_STAGE_KEYS = ("num_blocks", "stride", "channel", "block_setting")


def _int_field(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArchError(f"{where}: expected a positive integer, got {value!r}")
    if value <= 0:
        raise ArchError(f"{where}: expected a positive integer, got {value}")
    return value


def _channel_field(value: Any, where: str) -> int:
    value = _int_field(value, where)
    if value % CHANNEL_DIVISOR:
        raise ArchError(f"{where}: {value} channels is not divisible by {CHANNEL_DIVISOR}")
    return value


def _check_keys(obj: Any, keys: Sequence[str], where: str, optional: Sequence[str] = ()) -> None:
    if not isinstance(obj, dict):
        raise ArchError(f"{where}: expected a JSON object with keys {', '.join(keys)}, got {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ArchError(f"{where}: missing key {missing[0]!r} (required: {', '.join(keys)})")
    extra = [k for k in obj if k not in keys and k not in optional]
    if extra:
        raise ArchError(f"{where}: unknown key {extra[0]!r} (allowed: {', '.join((*keys, *optional))})")


def _parse_arch(data: Any, source: str) -> Arch:
    from .plan import MAX_HEAD_LEVELS, MIN_HEAD_LEVELS, wiring

    _check_keys(data, _TOP_KEYS, source, _OPTIONAL_KEYS)
    img_size = _int_field(data["img_size"], f"{source}: img_size")
    input_channel = _channel_field(data["input_channel"], f"{source}: input_channel")
    stem_mid = _int_field(data.get("stem_mid_channels", DEFAULT_STEM_MID_CHANNELS), f"{source}: stem_mid_channels")
    deconv = data["deconv_setting"]
    if not isinstance(deconv, list) or not MIN_HEAD_LEVELS <= len(deconv) <= MAX_HEAD_LEVELS:
        raise ArchError(f"{source}: deconv_setting must be a list of {MIN_HEAD_LEVELS} to {MAX_HEAD_LEVELS} "
                        f"widths, got {deconv!r}")
    deconv_setting = tuple(_channel_field(w, f"{source}: deconv_setting[{i}]") for i, w in enumerate(deconv))
    backbone = data["backbone_setting"]
    if not isinstance(backbone, list) or not backbone:
        raise ArchError(f"{source}: backbone_setting must be a non-empty list of stages, got {backbone!r}")
    stages = []
    for s, stage in enumerate(backbone):
        where = f"{source}: stage {s}"
        _check_keys(stage, _STAGE_KEYS, where)
        channel = _channel_field(stage["channel"], f"{where} channel")
        stride = _int_field(stage["stride"], f"{where} stride")
        if stride not in (1, 2):
            raise ArchError(f"{where} stride: {stride} not allowed (allowed: 1, 2)")
        num_blocks = _int_field(stage["num_blocks"], f"{where} num_blocks")
        block_setting = stage["block_setting"]
        if not isinstance(block_setting, list):
            raise ArchError(f"{where} block_setting: expected a list of [expansion, kernel] pairs")
        if len(block_setting) != num_blocks:
            raise ArchError(
                f"{where}: num_blocks is {num_blocks} but block_setting has {len(block_setting)} blocks"
            )
        blocks = []
        for b, pair in enumerate(block_setting):
            bwhere = f"{where} block {b}"
            if not isinstance(pair, list) or len(pair) != 2:
                raise ArchError(f"{bwhere}: expected [expansion, kernel], got {pair!r}")
            expansion = _int_field(pair[0], f"{bwhere} expansion")
            kernel = _int_field(pair[1], f"{bwhere} kernel")
            if kernel % 2 == 0:
                raise ArchError(f"{bwhere} kernel: {kernel} is even (kernels must be odd)")
            blocks.append(Block(expansion, kernel))
        stages.append(Stage(channel, stride, tuple(blocks)))
    wiring([st.stride for st in stages], len(deconv_setting), where=source)
    return Arch(img_size, input_channel, deconv_setting, tuple(stages), stem_mid)
