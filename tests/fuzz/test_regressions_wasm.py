"""Regression tests for WASM modules that validated but could not be instantiated.

Found while building the `wasm` fuzz target (fuzz/wasm_target.py: a module that
validates must also instantiate and run), by listing what wasmtime's instantiation can
refuse and trying each. The target's "synth" mode (modules from a grammar of memory
limits, tables, segments and stack end) now finds them again against the old validation
within 150 cases; byte-level mutations of the example programs did not in 60,000.
Every one crashed the block processor: a `wasmtime.Trap` or
`WasmtimeError` escaped `Processor.process_block` when the program was created, which
on a validator stops block processing on every node at once. They are now rejected at
upload with a reason (runtime/validation.py).
"""

from __future__ import annotations

import pytest
from gexe.runtime import CodeError, Sandbox, validate
from wat import wat

ENTRIES = '(func (export "init")) (func (export "handle"))'


def mod(body: str, memory: str = "(memory 2)") -> bytes:
    return wat(f'(module (import "env" "memory" {memory}) {body} {ENTRIES})')


CASES = {
    "memory-maximum-below-host": (mod("", "(memory 2 3)"), "InvalidMemoryMaximum"),
    "memory-maximum-equals-static": (mod("", "(memory 2 2)"), "InvalidMemoryMaximum"),
    "element-past-table-end": (
        mod("(table 1 funcref) (elem (i32.const 5) $f) (func $f)"),
        "ElementOutOfTable",
    ),
    "element-negative-offset": (
        mod("(table 1 funcref) (elem (i32.const -1) $f) (func $f)"),
        "ElementOutOfTable",
    ),
    "empty-element-past-table-end": (
        mod("(table 1 funcref) (elem (i32.const 2))"),
        "ElementOutOfTable",
    ),
    "empty-data-past-static-memory": (
        mod('(data (i32.const 0x30000) "")'),
        "EndAddressOutOfStaticMemory",
    ),
    "table-too-large-to-allocate": (mod("(table 4294967295 funcref)"), "TableSizeLimit"),
    "table-size-depends-on-machine-memory": (
        mod("(table 100000000 funcref)"),
        "TableSizeLimit",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_uninstantiable_module_is_rejected_at_upload(name):
    code, reason = CASES[name]
    with pytest.raises(CodeError) as e:
        validate(code)
    assert e.value.reason == reason


@pytest.mark.parametrize(
    "body",
    [
        "",
        '(data (i32.const 0x20000) "")',  # empty segment right at the end: instantiates
        "(table 2 funcref) (elem (i32.const 1) $f) (func $f)",
        "(table 65536 funcref)",
    ],
)
@pytest.mark.parametrize("memory", ["(memory 2)", "(memory 2 512)", "(memory 2 1000)"])
def test_the_edges_that_stay_valid_run(body, memory):
    code = mod(body, memory)
    validate(code)
    sb = Sandbox()
    try:
        pid = sb.create_program(sb.upload_code(code))
        sb.run_until_idle(3)
        assert sb.program_state(pid).status.name == "ACTIVE"
    finally:
        sb.close()
