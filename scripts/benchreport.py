"""A benchmark's table: printed row by row as it is measured, then written to docs/benchmarks.md.

Every script owns one section of docs/benchmarks.md (between HTML comment markers) and replaces
it on each run, with the command, the machine and the date above the table, so anyone can rerun
the command and compare like with like. The file is rewritten atomically.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
PREAMBLE = """# Benchmarks

Every section below is written by a script under `scripts/` (it replaces its own section on
each run): the command, the machine and the date sit above each table, so a rerun of the same
command on the same kind of machine is directly comparable. Speed and memory goals live here,
never in timed tests.
"""


def add_doc_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-doc", action="store_true", help="print the table only; leave docs/benchmarks.md alone")


def add_bundle_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_or_bundle", type=Path, help="a run directory (exported to a temporary bundle) or a bundle")


def bundle_of(run_or_bundle: Path, scratch: Path) -> Path:
    """``run_or_bundle`` when it is a bundle, else its export into ``scratch``."""
    from social_xlstm.export.export import export_bundle

    if (run_or_bundle / "metadata.json").exists():
        return run_or_bundle
    return export_bundle(run_or_bundle, scratch / "bundle")


def add_malloc_option(parser: argparse.ArgumentParser) -> None:
    """``--default-malloc``: measure with glibc's malloc as it is, not as the CLI sets it up."""
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="leave glibc's malloc as it is (the CLI keeps freed memory for reuse: social_xlstm.allocator)",
    )


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (getrusage: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_in_child(script: str, *args: str) -> dict:
    """Run ``script`` with ``args`` in a fresh process, so that its peak memory is its own, and
    return the JSON object it prints last."""
    child = subprocess.run([sys.executable, script, *args], check=True, capture_output=True, text=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def machine() -> str:
    """CPU model and cores, and the GPU when one is used: what a reader needs to compare numbers."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):  # /proc/cpuinfo is Linux only
        cpu = next(iter(re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), flags=re.M)), cpu)
    text = (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name()}"
    return text


class Table:
    """A markdown table printed as it grows; ``write`` puts it in the script's section of the doc."""

    def __init__(self, section: str, title: str, columns: list[str], right_aligned: int = 0):
        self.section, self.title, self.columns = section, title, columns
        self.lines = [
            "| " + " | ".join(columns) + " |",
            "|" + "|".join("---" if i < len(columns) - right_aligned else "---:" for i in range(len(columns))) + "|",
        ]
        print("\n".join(self.lines), flush=True)

    def add(self, *cells) -> None:
        line = "| " + " | ".join(str(c) for c in cells) + " |"
        self.lines.append(line)
        print(line, flush=True)

    def markdown(self, notes: str = "") -> str:
        command = "python " + shlex.join([os.path.relpath(sys.argv[0], DOC.parents[1]), *sys.argv[1:]])
        parts = [
            f"## {self.title}",
            "",
            f"Command: `{command}`  ",
            f"Machine: {machine()}  ",
            f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
            "",
            *self.lines,
        ]
        if notes:
            parts += ["", notes.strip()]
        return "\n".join(parts) + "\n"

    def write(self, notes: str = "", doc: Path = DOC) -> None:
        """Replace this script's section of ``doc`` (or append it), atomically."""
        begin, end = f"<!-- begin {self.section} -->", f"<!-- end {self.section} -->"
        block = f"{begin}\n{self.markdown(notes)}{end}\n"
        text = doc.read_text() if doc.exists() else PREAMBLE
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", flags=re.S)
        text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
        doc.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=doc.parent, prefix=".benchmarks-")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, doc)
        print(f"\nwrote the '{self.section}' section of {doc}")
