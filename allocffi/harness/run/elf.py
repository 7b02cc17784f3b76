"""Whether a file is a shared library that defines ``malloc``, read from its ELF headers.

``allocffi run --allocators NAME=PATH`` preloads PATH into every run; a file that is not a
shared library, or one whose dynamic symbol table does not define ``malloc``, would leave
glibc serving every allocation, and the probe would fail every run after it started. Reading
the ELF dynamic symbol table answers up front without loading the library (no constructor runs).

Only what the question needs is read: the ELF header, the section headers, the dynamic symbol
table and its string table, each bounded by the file's size.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

_ELF_MAGIC = b"\x7fELF"
_ET_DYN = 3  # a shared object (or a position-independent executable)
_PT_INTERP = 3  # a program header naming the dynamic loader: an executable
_SHT_DYNSYM = 11
_SHN_UNDEF = 0
_STT_FUNC = 2
_STT_GNU_IFUNC = 10
_STB_GLOBAL = 1
_STB_WEAK = 2
# A dynamic symbol table larger than this is not one a malloc library has.
_MAX_TABLE_BYTES = 64 << 20


class NotALibrary(Exception):
    """Why the file cannot serve as a preloaded allocator (the message says what it is)."""


def _read(f: BinaryIO, offset: int, size: int, file_size: int, what: str) -> bytes:
    if offset < 0 or size < 0 or offset + size > file_size or size > _MAX_TABLE_BYTES:
        raise NotALibrary(f"a damaged ELF file ({what} lies outside the file)")
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise NotALibrary(f"a damaged ELF file ({what} is cut short)")
    return data


def _identity(path: str) -> tuple[bytes, int] | None:
    """(class and byte order, e_machine) of an ELF file, or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return None
    if len(head) < 20 or not head.startswith(_ELF_MAGIC):
        return None
    (machine,) = struct.unpack_from("<H" if head[5] == 1 else ">H", head, 18)
    return head[4:6], machine


def check_malloc_library(path: str) -> None:
    """NotALibrary unless ``path`` is a shared object whose dynamic symbols define malloc."""
    with open(path, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        ident = f.read(16)
        if len(ident) < 16 or not ident.startswith(_ELF_MAGIC):
            raise NotALibrary("not an ELF file")
        is_64 = ident[4] == 2
        order = "<" if ident[5] == 1 else ">"
        header_format = order + ("HHIQQQIHHHHHH" if is_64 else "HHIIIIIHHHHHH")
        header = struct.unpack(
            header_format, _read(f, 16, struct.calcsize(header_format), file_size, "the header")
        )
        e_type, shoff, shentsize, shnum = header[0], header[5], header[10], header[11]
        own = _identity("/proc/self/exe")
        if own is not None and (ident[4:6], header[1]) != own:
            raise NotALibrary("a library for another machine or word size than this one")
        if e_type != _ET_DYN:
            raise NotALibrary("an ELF file but not a shared library (an executable or an object file)")
        section_format = order + ("IIQQQQIIQQ" if is_64 else "IIIIIIIIII")
        if shnum == 0 or shentsize < struct.calcsize(section_format):
            raise NotALibrary("a shared object without section headers (stripped of them)")
        table = _read(f, shoff, shentsize * shnum, file_size, "the section headers")
        sections = [
            struct.unpack_from(section_format, table, i * shentsize) for i in range(shnum)
        ]  # (name, type, flags, addr, offset, size, link, info, addralign, entsize)
        dynsym = next((s for s in sections if s[1] == _SHT_DYNSYM), None)
        if dynsym is None or not 0 <= dynsym[6] < shnum:
            raise NotALibrary("a shared object without a dynamic symbol table")
        strtab = sections[dynsym[6]]
        symbols = _read(f, dynsym[4], dynsym[5], file_size, "the dynamic symbol table")
        names = _read(f, strtab[4], strtab[5], file_size, "the dynamic string table")
        phoff, phentsize, phnum = header[4], header[8], header[9]
        programs = (
            _read(f, phoff, phentsize * phnum, file_size, "the program headers") if phentsize >= 4 else b""
        )
    executable = (
        any(struct.unpack_from(order + "I", programs, i * phentsize)[0] == _PT_INTERP for i in range(phnum))
        if programs
        else False
    )
    symbol_format = order + ("IBBHQQ" if is_64 else "IIIBBH")
    entry = dynsym[9] or struct.calcsize(symbol_format)
    if entry < struct.calcsize(symbol_format):
        raise NotALibrary("a damaged ELF file (dynamic symbols of an impossible size)")
    for start in range(0, len(symbols) - entry + 1, entry):
        fields = struct.unpack_from(symbol_format, symbols, start)
        name, info, shndx = (fields[0], fields[1], fields[3]) if is_64 else (fields[0], fields[3], fields[5])
        if shndx == _SHN_UNDEF or (info & 0xF) not in (_STT_FUNC, _STT_GNU_IFUNC):
            continue
        if info >> 4 not in (_STB_GLOBAL, _STB_WEAK) or names[name : name + 7] != b"malloc\0":
            continue
        return
    if executable:
        raise NotALibrary("a program, not a shared library")
    raise NotALibrary("a shared library that does not define malloc (it would not replace the allocator)")


__all__ = ["NotALibrary", "check_malloc_library"]
