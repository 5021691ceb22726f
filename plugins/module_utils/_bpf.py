# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Classic-BPF toolkit for seccomp: a label assembler and a disassembler.

Decoding, validation and the interpreter live in ``seccomp_launcher`` (a stdlib-only single file that is
also installed into sandboxes), so there is exactly one definition of what a valid filter is.
"""

from __future__ import annotations

from ansible_collections.agentsec.nemoclaw.plugins.module_utils.seccomp_launcher import (
    BPF_JA,
    BPF_JMP,
    JUMPS,
    OP_AND_K,
    OP_LD_W_ABS,
    OP_RET_K,
    FilterError,
    action_name,
    validate,
)

JMP_OPS = {name: code for code, name in JUMPS.items()}


class Assembler:
    """Build a program with symbolic forward jumps: ``asm.jump("JEQ", k, "deny", None)`` (None = next)."""

    def __init__(self):
        self._items = []  # (kind, payload, comment)

    def label(self, name):
        self._items.append(("label", name, ""))

    def load(self, offset, comment=""):
        self._items.append(("insn", (OP_LD_W_ABS, None, None, offset), comment))

    def and_(self, mask, comment=""):
        self._items.append(("insn", (OP_AND_K, None, None, mask), comment))

    def jump(self, op, k, jt=None, jf=None, comment=""):
        self._items.append(("insn", (JMP_OPS[op], jt, jf, k), comment))

    def ret(self, value, comment=""):
        self._items.append(("insn", (OP_RET_K, None, None, value), comment))

    def assemble(self):
        """Return (program, comments). Jumps must go forward and fit in 8 bits, like the kernel wants."""
        labels, pc = {}, 0
        for kind, payload, _comment in self._items:
            if kind == "label":
                if payload in labels:
                    raise FilterError(f"label {payload!r} defined twice")
                labels[payload] = pc
            else:
                pc += 1
        program, comments, pc = [], [], 0
        for kind, payload, comment in self._items:
            if kind == "label":
                continue
            code, jt, jf, k = payload
            if code in JUMPS and code != BPF_JMP | BPF_JA:
                jt, jf = (self._offset(pc, t, labels) for t in (jt, jf))
            program.append((code, jt or 0, jf or 0, k))
            comments.append(comment)
            pc += 1
        validate(program)
        return program, comments

    @staticmethod
    def _offset(pc, target, labels):
        if target is None:
            return 0
        if target not in labels:
            raise FilterError(f"jump to undefined label {target!r}")
        off = labels[target] - pc - 1
        if not 0 <= off <= 255:
            raise FilterError(f"jump from {pc} to {target!r} is {off}: must be forward and at most 255")
        return off


def _field(offset):
    if offset == 0:
        return "nr"
    if offset == 4:
        return "arch"
    if offset in (8, 12):
        return "instruction_pointer"
    arg, half = divmod(offset - 16, 8)
    return f"args[{arg}] {'low' if half == 0 else 'high'} word"


def disassemble(program, comments=None):
    """Readable listing in the paper's style: ``[3] BPF_JMP_JEQ k=17 jt=2 jf=0 -- ...``."""
    lines = []
    for pc, (code, jt, jf, k) in enumerate(program):
        note = (comments[pc] if comments and pc < len(comments) else "") or ""
        if code == OP_LD_W_ABS:
            text = f"BPF_LD_W_ABS offset={k}"
            note = note or f"load {_field(k)}"
        elif code == OP_AND_K:
            text = f"BPF_ALU_AND_K k=0x{k:x}"
        elif code == OP_RET_K:
            text = f"BPF_RET k=0x{k:08x}"
            note = note or action_name(k)
        elif code == BPF_JMP | BPF_JA:
            text = f"BPF_JMP_JA k={k}"
        else:
            text = f"BPF_JMP_{JUMPS[code]} k={k if k < 0x10000 else hex(k)} jt={jt} jf={jf}"
        lines.append(f"[{pc}] {text}" + (f" -- {note}" if note else ""))
    return lines
