"""Structured logging for node processes: `log = get_logger("store"); log.info("event", k=v)`.

One handler on the root logger renders every record — ours and third-party ones
(libp2p, web3, trio) — as JSON lines (`{"ts":…,"level":…,"component":…,"event":…,…}`)
or as `key=value` text, at the level from the config (`setup_logging`).

Redaction. A `RedactionFilter` on that handler rewrites each record before it is
formatted: fields whose name looks secret (password, private key, secret, mnemonic,
token, …) become `***`; `name=value` / `"name": "value"` pairs with such names inside
messages and tracebacks are masked; and every string registered with `add_secret()`
(the keystore registers each password and private key it loads) is replaced wherever
it appears, with or without `0x`. 32-byte hex alone is not masked: block hashes and
state hashes look the same as keys, and operators need them.

Invariants:
- Nothing reaches the output without passing the filter (it sits on the handler, so
  it also covers records of other libraries and exception tracebacks).
- Logging never raises into the caller: unserialisable field values are `repr()`'d.

When modifying this part: keep secrets out at the source first (never pass them as
fields); the filter is the second line. Tests grep the output for a known secret.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import IO, Any

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
FORMATS = ("json", "text")
MASK = "***"
ROOT = "gexe"

_SECRET_WORDS = (
    r"pass(?:word|wd|phrase)|secret|priv(?:ate)?_?key|mnemonic|api_?key|"
    r"(?:access|auth|bearer|refresh)_?token|credential"
)
_SECRET_NAME = re.compile(_SECRET_WORDS, re.IGNORECASE)
# name=value, name: value, "name": "value" inside free text
_SECRET_PAIR = re.compile(
    rf"""(?P<name>["']?[\w\-]*(?:{_SECRET_WORDS})[\w\-]*["']?)(?P<sep>\s*[:=]\s*)"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s,;}\]]+)""",
    re.IGNORECASE,
)


class Redactor:
    """Masks secrets in text and fields. Thread-safe; one process-wide instance below."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def add_secret(self, secret: str | bytes) -> None:
        """Mask this exact value everywhere from now on (bytes: their hex form)."""
        forms: set[str] = set()
        if isinstance(secret, bytes | bytearray):
            if not secret:
                return
            forms |= {secret.hex(), secret.hex().upper()}
            try:
                forms.add(bytes(secret).decode("utf-8"))
            except UnicodeDecodeError:
                pass
        else:
            forms.add(secret)
            if secret.startswith(("0x", "0X")):
                forms.add(secret[2:])
        forms = {f for f in forms if len(f) >= 4}  # too short to mask without noise
        if not forms:
            return
        with self._lock:
            self._secrets |= forms
            alts = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, alts)), re.IGNORECASE)

    def is_secret_name(self, name: str) -> bool:
        return bool(_SECRET_NAME.search(name))

    def text(self, s: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            s = pattern.sub(MASK, s)
        return _SECRET_PAIR.sub(lambda m: f"{m['name']}{m['sep']}{MASK}", s)

    def value(self, name: str, v: Any) -> Any:
        if self.is_secret_name(name):
            return MASK
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, bytes | bytearray):
            return self.text("0x" + bytes(v).hex())
        if isinstance(v, Mapping):
            return {str(k): self.value(str(k), x) for k, x in v.items()}
        if isinstance(v, list | tuple | set | frozenset):
            return [self.value(name, x) for x in v]
        if v is None or isinstance(v, bool | int | float):
            return v
        return self.text(repr(v))


REDACTOR = Redactor()


def add_secret(secret: str | bytes) -> None:
    REDACTOR.add_secret(secret)


class RedactionFilter(logging.Filter):
    """Rewrites message, fields and traceback of every record it sees (never drops one)."""

    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self.redactor = redactor
        self._fmt = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        r = self.redactor
        try:
            msg = record.getMessage()
        except Exception:  # bad %-args: keep what we can
            msg = str(record.msg)
        record.msg, record.args = r.text(msg), None
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            record.fields = {str(k): r.value(str(k), v) for k, v in fields.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = self._fmt.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = r.text(record.exc_text)
        if record.stack_info:
            record.stack_info = r.text(record.stack_info)
        return True


def _component(record: logging.LogRecord) -> str:
    name = record.name
    return name[len(ROOT) + 1 :] if name.startswith(ROOT + ".") else name


def _ts(record: logging.LogRecord) -> str:
    t = time.gmtime(record.created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _ts(record),
            "level": record.levelname.lower(),
            "component": _component(record),
            "event": record.getMessage(),
        }
        for k, v in (getattr(record, "fields", None) or {}).items():
            out.setdefault(k, v)
        if record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, default=repr, ensure_ascii=False)


def _text_value(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=repr, ensure_ascii=False)
    if s == "" or any(c in s for c in ' ="\n\t'):
        return json.dumps(s, ensure_ascii=False)
    return s


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [
            _ts(record),
            f"{record.levelname.lower():<7}",
            _component(record),
            _text_value(record.getMessage()),
        ]
        for k, v in (getattr(record, "fields", None) or {}).items():
            parts.append(f"{k}={_text_value(v)}")
        line = " ".join(parts)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + record.stack_info
        return line


class StructLogger:
    """`log.info("event", key=value)`; `bind(**fields)` adds fields to every line."""

    __slots__ = ("_logger", "_bound")

    def __init__(self, logger: logging.Logger, bound: Mapping[str, Any] | None = None) -> None:
        self._logger = logger
        self._bound = dict(bound or {})

    @property
    def name(self) -> str:
        return self._logger.name

    def bind(self, **fields: Any) -> StructLogger:
        return StructLogger(self._logger, {**self._bound, **fields})

    def is_enabled(self, level: int) -> bool:
        return self._logger.isEnabledFor(level)

    def _log(self, level: int, event: str, fields: dict[str, Any], exc_info: Any = None) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(
                level,
                "%s",
                event,
                exc_info=exc_info,
                stacklevel=3,
                extra={"fields": {**self._bound, **fields}},
            )

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """Log at error level with the current exception's traceback."""
        self._log(logging.ERROR, event, fields, exc_info=True)


def get_logger(component: str) -> StructLogger:
    return StructLogger(logging.getLogger(f"{ROOT}.{component}"))


_HANDLER_MARK = "_gexe_handler"


def setup_logging(
    level: str = "info",
    fmt: str = "text",
    stream: IO[str] | None = None,
    *,
    quiet: Iterable[str] = (),
) -> logging.Handler:
    """Route every log record through one redacting handler; replaces a previous one.

    `quiet` names loggers (e.g. noisy libraries) held at warning level.
    """
    if level.lower() not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _HANDLER_MARK, False):
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(LEVELS[level.lower()])
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
