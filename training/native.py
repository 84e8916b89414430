"""The native CPU counting kernel (training/native/essop_counts.cpp): build, load, call.

The C++ source is compiled on first use with the machine's compiler into a cache folder
(`$ESSOP_NATIVE_DIR`, default `~/.cache/essop/native`), one shared library per (source, compiler, flags):
`-O3 -march=native` for the vector path (AVX-512 where the CPU has it), or `-DESSOP_SCALAR` for the portable
path. `scripts/setup.sh` builds it once at install time so that no training run pays for it. Nothing here
is needed for correctness: when no compiler is found the PyTorch backend of counts.py is used instead, and
`available()` says why not.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("native") / "essop_counts.cpp"
VARIANTS = {
    "simd": ["-O3", "-march=native"],
    "scalar": ["-O3", "-DESSOP_SCALAR"],
    # The vector build that also sums each phase's thread-time (essop bench-train --profile).
    "profile": ["-O3", "-march=native", "-DESSOP_PROFILE"],
}
#: The variant the "native" backend runs (bench-train --profile switches it to "profile").
ACTIVE = "simd"


def cache_dir() -> Path:
    return Path(os.environ.get("ESSOP_NATIVE_DIR", Path.home() / ".cache" / "essop" / "native"))


def _compiler() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


class NativeUnavailable(RuntimeError):
    """The native kernel cannot be built or loaded here (the PyTorch kernel still works)."""


@lru_cache(maxsize=None)
def library(variant: str = "simd") -> ctypes.CDLL:
    """Build (once, atomically: several processes may race) and load one variant of the kernel."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(map(repr, VARIANTS))}, not {variant!r}")
    cxx = _compiler()
    if cxx is None:
        raise NativeUnavailable("no C++ compiler found (set CXX, or install g++)")
    # -fopenmp links libgomp.so.1, which resolves to the copy PyTorch has loaded: one thread pool for both.
    flags = VARIANTS[variant] + ["-std=c++17", "-shared", "-fPIC", "-fopenmp"]
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise NativeUnavailable(f"C++ compiler {cxx!r} does not run: {exc}") from None
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join(flags).encode() + version.encode()).hexdigest()[:16]
    folder = cache_dir()
    target = folder / f"essop_counts_{variant}_{key}.so"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
        os.close(fd)
        res = subprocess.run([cxx, *flags, str(SOURCE), "-o", tmp], capture_output=True, text=True)
        if res.returncode != 0:
            os.unlink(tmp)
            raise NativeUnavailable(f"building {SOURCE.name} failed:\n{res.stderr[-2000:]}")
        os.replace(tmp, target)
    lib = ctypes.CDLL(str(target))
    p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
    lib.essop_segment_counts.argtypes = [p, i64, p, p, p, p, i64, p, p, p, p,
                                         p, i64, p, p, p, p, i64, p, p, p, p,
                                         p, p, i64, i64, i64, i32, i32, i32, i32, i32, p, i32, i32]
    lib.essop_segment_counts.restype = ctypes.c_int
    lib.essop_simd.restype = ctypes.c_int
    lib.essop_prepare.argtypes = [p, i64, i64, i64, i64, i32, i32, i32, i32, p, p, i32]
    lib.essop_prepare.restype = None
    lib.essop_absmax.argtypes = [p, i64, i32]
    lib.essop_absmax.restype = ctypes.c_float
    if variant == "profile":
        lib.essop_profile.argtypes = [ctypes.POINTER(ctypes.c_longlong)]
    return lib


def available(variant: str = "simd") -> tuple[bool, str]:
    """(True, "") when the kernel loads, else (False, why)."""
    try:
        library(variant)
    except NativeUnavailable as exc:
        return False, str(exc)
    return True, ""


def phase_seconds(variant: str = "profile") -> list[float]:
    """Thread-seconds spent in each phase (lanes, gather, bit words, contraction) since the last call."""
    buf = (ctypes.c_longlong * 4)()
    library(variant).essop_profile(buf)
    return [v / 1e9 for v in buf]


def uses_simd(variant: str = "simd") -> bool:
    return bool(library(variant).essop_simd())


def _ptr(t: torch.Tensor | None):
    return None if t is None else ctypes.c_void_p(t.data_ptr())


def _as_u16(t: torch.Tensor) -> torch.Tensor:
    """Values in [0, 2**16) as int16 tensors holding their uint16 bit patterns."""
    t = t.to(torch.int32)
    return torch.where(t >= 1 << 15, t - (1 << 16), t).to(torch.int16).contiguous()


class Side:
    """One side of a layer's pairs as the kernel reads it (all CPU tensors, contiguous):
    map uint16-valued int16/int32 FP16 patterns, base int64 [P], off int64 [len], exp int32 [P],
    vmax FP16 patterns [P] of the largest |element| of each pair, gen int64 [len] (per_element) or None,
    table: the cycle table (uint8 when q <= 8 else int16 holding uint16 values), at least period + max(BL, 64)
    entries; gword: per_element, each generator's constant XOR word [len] (or None: all 0); pword: each pair's
    XOR word [P] (or None: all 0). Words are q-bit values (essop.golden.random_sources)."""

    def __init__(self, map16: torch.Tensor, base: torch.Tensor, off: torch.Tensor, exp: torch.Tensor,
                 vmax16: torch.Tensor, gen: torch.Tensor | None, table: torch.Tensor,
                 gword: torch.Tensor | None = None, pword: torch.Tensor | None = None):
        self.map = map16.reshape(-1).contiguous()
        self.base = base.to(torch.int64).contiguous()
        self.off = off.to(torch.int64).contiguous()
        self.exp = exp.to(torch.int32).contiguous()
        self.vmax = vmax16.contiguous()
        self.gen = None if gen is None else gen.to(torch.int64).contiguous()
        self.table = table.contiguous()
        self.gword = None if gword is None else _as_u16(gword)
        self.pword = None if pword is None else _as_u16(pword)
        if self.gword is not None and self.gen is None:
            raise ValueError("generator words need per_element generators (gen)")
        for name in ("map", "vmax"):
            if getattr(self, name).dtype not in (torch.int16, torch.uint16):
                raise TypeError(f"{name} must hold 16-bit FP16 patterns, not {getattr(self, name).dtype}")

    @property
    def gather32(self) -> bool:
        return self.map.numel() < (1 << 31)

    def args(self):
        return [_ptr(self.map), self.map.numel(), _ptr(self.base), _ptr(self.off), _ptr(self.exp), _ptr(self.vmax),
                self.off.numel(), _ptr(self.gen), _ptr(self.table), _ptr(self.gword), _ptr(self.pword)]


def segment_counts(x: Side, d: Side, order: torch.Tensor, seg: torch.Tensor, start_pair: int, period: int,
                   bl: int, q: int, restart: bool, threads: int | None = None, chunk_pairs: int = 256,
                   variant: str = "simd", expected: bool = False) -> torch.Tensor:
    """int64 [segments, m, n]: counts of every segment of `order` (see essop_counts.cpp); with `expected`,
    the sums of (+-b_pi)(+-a_pj) over each segment's pairs instead."""
    lib = library(variant)
    order = order.to(torch.int64).contiguous()
    seg = seg.to(torch.int64).contiguous()
    S = seg.numel() - 1
    out = torch.empty(max(S, 0), d.off.numel(), x.off.numel(), dtype=torch.int64)
    threads = torch.get_num_threads() if threads is None else threads
    rc = lib.essop_segment_counts(*x.args(), *d.args(), _ptr(order), _ptr(seg), S, int(start_pair), int(period),
                                  int(bl), int(q), int(bool(restart)), int(threads), int(chunk_pairs), _ptr(out),
                                  int(x.gather32 and d.gather32), int(bool(expected)))
    if rc != 0:
        raise ValueError(f"essop_segment_counts refused its arguments (code {rc})")
    return out


def prepare(t: torch.Tensor, s: int, ph: int, pw: int, threads: int | None = None,
            variant: str = "simd") -> tuple[torch.Tensor, torch.Tensor]:
    """(int16 [B, C, H + 2ph, W + 2pw] FP16 patterns of t * 2**s, zero padded, in t's memory format (NCHW or
    channels_last); int16 [B, H + 2ph, W + 2pw] largest |pattern| over the channels) for a finite float32
    t [B, C, H, W] (essop_counts.cpp)."""
    lib = library(variant)
    t = t.detach().to(torch.float32)
    channels_last = not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    t = t.contiguous(memory_format=fmt)
    B, C, H, W = t.shape
    out = torch.empty(B, C, H + 2 * ph, W + 2 * pw, dtype=torch.int16, memory_format=fmt)
    chmax = torch.empty(B, H + 2 * ph, W + 2 * pw, dtype=torch.int16)
    threads = torch.get_num_threads() if threads is None else threads
    lib.essop_prepare(_ptr(t), B, C, H, W, int(s), int(ph), int(pw), int(channels_last), _ptr(out), _ptr(chmax),
                      int(threads))
    return out, chmax


def absmax(t: torch.Tensor, threads: int | None = None, variant: str = "simd") -> float:
    """max |t| of a float32 CPU tensor (NaN if it holds a NaN)."""
    t = t.detach().to(torch.float32)
    if not (t.is_contiguous() or (t.ndim == 4 and t.is_contiguous(memory_format=torch.channels_last))):
        t = t.contiguous()
    threads = torch.get_num_threads() if threads is None else threads
    return float(library(variant).essop_absmax(_ptr(t), t.numel(), int(threads)))
