"""Reading one file of a run or sweep directory, safely: the only way infomax opens a file it finds there.

A directory may come from someone else, so every file is input:
* only a regular file inside the directory is read: a link whose target leaves the directory, a FIFO
  (which would block the reader), a device or a folder where a file goes is refused before it is opened;
* each kind of file has a size bound (LIMITS), checked before a byte is read;
* YAML is read by a safe loader (plain data, nothing constructed that runs code) that refuses a document
  whose aliases would expand past MAX_YAML_NODES nodes (a few hundred bytes of nested aliases can
  otherwise make gigabytes) or refer to themselves;
* a picture is embedded only when it starts with the PNG signature;
* numpy archives are read without pickles, their members' sizes checked before they are decompressed;
  torch files with `weights_only=True` (tensors and plain values only).
Every refusal is `Damaged`: one line naming the file and what is wrong with it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import yaml

from ..errors import Damaged, first_line

MIB = 2**20
# The most bytes read from one file, by kind. Tables: mi_per_map.csv of dataset.max_images (1,000,000)
# images x 32 maps runs to about 3.5 GB.
LIMITS = {
    "json": 1 * MIB,  # summary.json, failed.json, sweep.json
    "yaml": 4 * MIB,  # .hydra/*.yaml, multirun.yaml
    "table": 4096 * MIB,  # *.csv
    "png": 64 * MIB,  # loss.png, features/*.png
    "npz": 1024 * MIB,  # features/examples.npz, and its members once decompressed
    "torch": 8192 * MIB,  # encoder.pt, checkpoint.pt
}
MAX_YAML_NODES = 100_000  # a config or a sweep's record holds a few hundred
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _size(n: int) -> str:
    return f"{n / MIB:.0f} MiB" if n >= MIB else f"{n} bytes"


def inside(root: Path, path: Path) -> Path:
    """`path` with its links resolved, when that lies inside `root` (its links resolved too); Damaged
    (one line) when it leaves it."""
    real, top = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    if real != top and top not in real.parents:
        raise Damaged(f"{path} is a link to {real}, outside {root}: not read")
    return real


@contextlib.contextmanager
def opened(root: Path, path: Path, kind: str) -> Iterator[IO[bytes]]:
    """`path` opened for reading in binary, once it is known to be a regular file inside `root` of at
    most LIMITS[kind] bytes; Damaged (one line naming it) otherwise, or when it is missing."""
    path = Path(path)
    real = inside(root, path)
    try:
        # O_NONBLOCK: a FIFO put in place between the check and the open does not block the reader
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise Damaged(f"{path} is missing") from None
    except OSError as e:
        raise Damaged(f"{path} cannot be opened ({(e.strerror or str(e)).lower()})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a FIFO or device)"
        raise Damaged(f"{path} is {what}: not read")
    if st.st_size > LIMITS[kind]:
        os.close(fd)
        raise Damaged(
            f"{path} holds {_size(st.st_size)}, more than the {_size(LIMITS[kind])} infomax reads "
            f"from a {kind} file: not read"
        )
    with open(fd, "rb", closefd=True) as f:
        yield f


def read_bytes(root: Path, path: Path, kind: str) -> bytes:
    with opened(root, path, kind) as f:
        return f.read(LIMITS[kind] + 1)[: LIMITS[kind]]


def read_text(root: Path, path: Path, kind: str) -> str:
    try:
        return read_bytes(root, path, kind).decode("utf-8")
    except UnicodeDecodeError as e:
        raise Damaged(f"{path} is not UTF-8 text ({first_line(e)[:80]})") from None


def read_json(root: Path, path: Path) -> Any:
    """A JSON file's value (plain data: dicts, lists, strings, numbers; NaN refused by the callers)."""
    try:
        return json.loads(read_text(root, path, "json"))
    except ValueError as e:
        raise Damaged(f"{path} is damaged ({first_line(e)[:80]})") from None


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader (plain data only) that refuses documents whose aliases expand past
    MAX_YAML_NODES nodes, or refer to themselves, before any Python object is built."""

    def compose_document(self):
        node = super().compose_document()
        _check_expansion(node)
        return node


def _check_expansion(root: yaml.Node) -> None:
    """Count the nodes the document stands for, an alias counting as the whole of what it names."""
    sizes: dict[int, int] = {}
    busy: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if done:
            busy.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > MAX_YAML_NODES:
                raise yaml.YAMLError(
                    f"its aliases expand to more than {MAX_YAML_NODES} nodes (an alias bomb?)"
                )
            continue
        if key in busy:
            raise yaml.YAMLError("an alias refers to the node that holds it")
        busy.add(key)
        stack.append((node, True))
        for c in children:
            if id(c) in busy:
                raise yaml.YAMLError("an alias refers to the node that holds it")
            stack.append((c, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def read_yaml(root: Path, path: Path) -> Any:
    """A YAML file's value as plain data (dicts, lists, strings, numbers), read by a safe loader with
    bounded alias expansion; Damaged (one line) when it is not YAML or is refused."""
    text = read_text(root, path, "yaml")
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise Damaged(f"{path} is not readable YAML ({first_line(e)[:100]})") from None
    except RecursionError:
        raise Damaged(f"{path} is nested too deeply to read") from None


def read_csv(root: Path, path: Path) -> pd.DataFrame:
    """A CSV table; Damaged (naming the file and what is wrong) when it is missing, empty or not a table."""
    with opened(root, path, "table") as f:
        try:
            return pd.read_csv(f)
        except pd.errors.EmptyDataError:
            raise Damaged(f"{path} is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as e:
            raise Damaged(f"{path} is not a readable table ({first_line(e)[:80]})") from None


def read_png(root: Path, path: Path) -> bytes:
    """A PNG picture's bytes, once they start with the PNG signature (what a page may embed)."""
    data = read_bytes(root, path, "png")
    if not data.startswith(PNG_SIGNATURE):
        raise Damaged(f"{path} is not a PNG picture: not shown")
    return data


def read_npz(root: Path, path: Path) -> dict[str, np.ndarray]:
    """A numpy archive's arrays, read without pickles; its members' sizes once decompressed are checked
    against LIMITS['npz'] before any is."""
    data = read_bytes(root, path, "npz")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            total = sum(i.file_size for i in z.infolist())
        if total > LIMITS["npz"]:
            raise Damaged(
                f"{path} decompresses to {_size(total)}, more than the {_size(LIMITS['npz'])} "
                "infomax reads: not read"
            )
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise Damaged(f"{path} is damaged ({first_line(e)[:80]})") from None


def load_torch(path: Path, map_location: Any = "cpu", root: Path | None = None) -> Any:
    """A checkpoint or encoder file, read with `weights_only=True`: tensors and plain values only, so
    nothing in the file can run code; a regular file inside `root` (default: its own folder) of at
    most LIMITS['torch'] bytes. A file that does not load that way (damaged, truncated, not torch's, or
    holding other objects) is Damaged: one line that names it and the way out."""
    import torch  # not at import: the sweep's readers (compare, report) never need torch

    from ..rundir import CHECKPOINT

    path = Path(path)
    if path.name == CHECKPOINT:
        fix = "delete it to start this job's training again from step 0"
    else:
        fix = "rerun the job with overwrite=true to train it again"
    try:
        with opened(path.parent if root is None else root, path, "torch") as f:
            return torch.load(f, map_location=map_location, weights_only=True)
    except Damaged as e:
        raise Damaged(f"{e}: {fix}.") from None
    except pickle.UnpicklingError:
        why = (
            "it holds objects other than tensors and plain values, which could run code: not loaded"
        )
        raise Damaged(f"{path} is damaged or unsafe ({why}): {fix}.") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise Damaged(
            f"{path} is damaged and cannot be read ({first_line(e)[:200]}): {fix}."
        ) from None
