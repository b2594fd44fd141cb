"""Upper bounds a config is held to before a job starts, each refused in one line naming the key: the
memory a job's largest batches take (estimated from its layers, against `device.memory_gb` or the
device's own memory), and the values that become part of a directory's name (no `/`, `..` or control
character, so that no run writes outside its directory). The data's own bounds (`dataset.max_images`,
`measure.null_partners` at most the images of other photographs) are checked where the data is read."""

from __future__ import annotations

import os
from typing import Any

from .choices import DeviceKind
from .errors import ConfigError, has_control


def check_path_part(key: str, value: Any) -> None:
    """A value that becomes part of a directory's name (a run's `case=NAME`, a sweep job's overrides):
    no `/`, no `..` and no control character, so that no run writes outside its directory."""
    text = str(value)
    if "/" in text or ".." in text or has_control(text):
        raise ConfigError(
            f"{key}={text.encode('unicode_escape').decode()} is not allowed: it becomes part of a "
            "directory's name, which may hold no '/', '..' or control character."
        )


GB = 1e9
CHECKED_BYTES = 2**30  # estimates below this pass without asking the device how much memory it has


def check_memory(cfg: Any, channels: list[int], sizes: list[int]) -> None:
    """The memory a job's largest batches take, estimated from its layers' channels and map sides (the
    input image first), against device.memory_gb (null: the device's own memory); ConfigError (one line
    naming the estimate, the limit and the keys) past it. The estimate is a floor: one training batch's
    activations in float32, with their gradients and autograd's saved copies (x3), and one measurement
    batch's maps with their aligned copy (x2)."""
    per_image = sum(c * s * s for c, s in zip(channels, sizes))
    t, m = cfg.train.batch_size, cfg.measure.batch_size
    parts = [
        (3 * 4 * t * per_image, f"one training batch (train.batch_size={t})"),
        (
            2 * 4 * m * channels[-1] * sizes[-1] ** 2,
            f"one measurement batch (measure.batch_size={m})",
        ),
    ]
    need, what = max(parts)
    if need <= CHECKED_BYTES and cfg.device.memory_gb is None:
        return  # no need to ask the device
    limit, named = memory_limit(cfg.device)
    if need > limit:
        raise ConfigError(
            f"{what} of {channels[-1]} maps of {sizes[-1]}x{sizes[-1]} on {sizes[0]}x{sizes[0]} images "
            f"needs about {_gb(need)} GB, more than {named} ({_gb(limit)} GB): use fewer maps "
            "(encoder.maps), smaller images (dataset.size) or smaller batches, or set device.memory_gb."
        )


def _gb(n: float) -> str:
    return f"{n / GB:,.0f}" if n >= 10 * GB else f"{n / GB:.2g}"


def memory_limit(cfg: Any) -> tuple[float, str]:
    """(bytes, in words) a job may use (`cfg`: the device config): device.memory_gb, else the GPU's
    memory (device=cuda, or auto with one), else the machine's."""
    if cfg.memory_gb is not None:
        return cfg.memory_gb * GB, f"device.memory_gb={cfg.memory_gb}"
    import torch

    if cfg.kind != DeviceKind.cpu and torch.cuda.is_available():
        return float(torch.cuda.get_device_properties(0).total_memory), "the GPU's memory"
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return float(ram), "this machine's memory"


def check_null_partners(partners: int, groups, what: str) -> None:
    """measure.null_partners at most the images of other photographs (groups) each measured image has:
    partners are drawn among them (design notes, "Nulls"); ConfigError (one line) past it."""
    from collections import Counter

    counts = Counter(str(g) for g in groups)
    most = len(groups) - max(counts.values(), default=0)
    if partners <= most:
        return
    if most == 0:
        raise ConfigError(
            f"measure.null_partners={partners}: the {len(groups)} measured images of {what} are all of "
            "one photograph, so no image has a partner from another: measure more photographs "
            "(dataset.n_images, or dataset.per_photo=1 for one crop of each)."
        )
    raise ConfigError(
        f"measure.null_partners={partners} is more than the {most} images of other photographs every "
        f"measured image of {what} has: use measure.null_partners={min(most, 4)} (at most {most})."
    )
