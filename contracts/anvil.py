"""Start and stop a local anvil dev chain from the repo's node_modules (never `npx anvil`).

anvil listens on 127.0.0.1 with port 0 (the OS picks a free port); we read the port from its
`Listening on 127.0.0.1:PORT` line and the dev accounts' private keys from its banner, keep
draining its stdout in a thread so it never blocks on a full pipe, and stop it by PID
(terminate, wait, kill).
"""

from __future__ import annotations

import collections
import os
import platform
import re
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_LISTENING = re.compile(r"Listening on 127\.0\.0\.1:(\d+)")
_KEY = re.compile(r"^\(\d+\)\s+(0x[0-9a-fA-F]{64})\s*$")


class AnvilNotFound(RuntimeError):
    """No anvil binary in any node_modules above the working directory or this package."""


class AnvilStartError(RuntimeError):
    """anvil exited or stayed silent before listening."""


def _platform_package() -> str:
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(platform.system(), "")
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return f"anvil-{system}-{arch}"


def _candidates(node_modules: Path) -> Iterator[Path]:
    base = node_modules / "@foundry-rs"
    exe = "anvil.exe" if os.name == "nt" else "anvil"
    yield base / _platform_package() / "bin" / exe
    if base.is_dir():
        for pkg in sorted(base.glob("anvil-*")):
            yield pkg / "bin" / exe
        yield base / "anvil" / "bin" / exe


def find_anvil(start: Path | None = None, *, include_package: bool = True) -> Path:
    """Path of the anvil binary installed by `npm install` (@foundry-rs/anvil).

    Searched in `node_modules/@foundry-rs/` of `start` (default: the working directory) and
    its parents, then of this package's directory and its parents (a checkout). The
    environment variable GEXE_ANVIL overrides the search.
    """
    env = os.environ.get("GEXE_ANVIL")
    if env:
        return Path(env)
    roots = [start or Path.cwd()]
    if include_package:
        roots.append(Path(__file__).resolve().parent)
    seen: set[Path] = set()
    for root in roots:
        for d in [root.resolve(), *root.resolve().parents]:
            nm = d / "node_modules"
            if nm in seen:
                continue
            seen.add(nm)
            for path in _candidates(nm):
                if path.is_file() and os.access(path, os.X_OK):
                    return path
    raise AnvilNotFound("anvil not found: run `npm install` in the repo root")


@dataclass
class Anvil:
    """A running anvil process."""

    process: subprocess.Popen[str]
    port: int
    private_keys: tuple[str, ...]
    _tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=200))
    _drain: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> list[str]:
        """The last lines anvil printed."""
        return list(self._tail)

    def stop(self, timeout: float = 5.0) -> int:
        """Terminate, wait, kill if needed; returns the exit code."""
        proc = self.process
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._drain is not None:
            self._drain.join(timeout=timeout)
        return proc.returncode

    def __enter__(self) -> Anvil:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_anvil(
    *,
    block_time: float | None = None,
    chain_id: int | None = None,
    accounts: int | None = None,
    extra_args: Sequence[str] = (),
    binary: Path | None = None,
    timeout: float = 30.0,
) -> Anvil:
    """Start anvil on 127.0.0.1 with a free port; returns once it is listening.

    block_time: seconds between blocks (default: a block per transaction).
    """
    exe = binary or find_anvil()
    args = [str(exe), "--host", "127.0.0.1", "--port", "0"]
    if block_time is not None:
        args += ["--block-time", f"{block_time:g}"]
    if chain_id is not None:
        args += ["--chain-id", str(chain_id)]
    if accounts is not None:
        args += ["--accounts", str(accounts)]
    args += list(extra_args)
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        bufsize=1,
    )
    tail: collections.deque[str] = collections.deque(maxlen=200)
    keys: list[str] = []
    found: list[int] = []
    ready = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            if not ready.is_set():
                if m := _KEY.match(line.strip()):
                    keys.append(m.group(1))
                elif m := _LISTENING.search(line):
                    found.append(int(m.group(1)))
                    ready.set()
        ready.set()

    thread = threading.Thread(target=drain, name=f"anvil-{proc.pid}-stdout", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not ready.wait(timeout=0.05):
        if time.monotonic() > deadline:
            break
    anvil = Anvil(proc, found[0] if found else 0, tuple(keys), tail, thread)
    if not found:
        anvil.stop()
        last = "\n".join(list(tail)[-10:])
        raise AnvilStartError(f"anvil ({exe}) did not start listening:\n{last}")
    return anvil
