"""The colour-jitter kernel: brightness, contrast, saturation and hue in any order, per sample.

Every op of :class:`~datakiln.augment.color.ColorJitter` clips to the valid range after it
(``[0, bound]``), so the order matters and is drawn per sample. Written naively that is
four full passes per op (blend, clip, ...). This kernel keeps the image as
``clip(A * Y + B, lo, hi)``: a stored float32 array ``Y`` and per-sample scalars. Brightness
and contrast only update the scalars (a clamped affine map composed with another is one
clamped affine map); saturation changes ``Y`` itself, but with the affine map left
deferred, because the grey of ``A * Y + B`` is ``A * grey(Y) + B``; the clamp is applied
to ``Y`` only when a per-sample bound shows it may cut (``clip(A*Y+B, lo, hi) ==
A * clip(Y, (lo-B)/A, (hi-B)/A) + B`` for ``A > 0``). The saturation blend leaves the
grey image unchanged (the grey weights sum to 1), so it is computed once. Hue needs
HSV and is done on the samples that draw it.

Samples are grouped by the order of their active ops and each group runs vectorised
over ``N×H×W×C`` with per-sample factors shaped ``(n, 1, 1, 1)``. Two backends share the
algorithm: NumPy and torch (``_Ops`` hides the difference; hue runs through NumPy).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np

__all__ = ["GREY_WEIGHTS", "hsv_shift", "jitter"]

#: ITU-R 601 luma weights (what Pillow's ``convert("L")`` and torchvision use)
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)

#: op codes in the recorded ``order``
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3


class _NumpyOps:
    """Array primitives for the kernel, NumPy flavour (in place where possible)."""

    def asarray(self, x: np.ndarray) -> Any:
        return x

    def to_numpy(self, y: Any) -> np.ndarray:
        return y

    def col(self, values: np.ndarray) -> Any:
        return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1, 1)

    def scaled(self, x: Any, factor: Any) -> Any:
        """``x * factor`` as a new float32 array (a cast, then in place: faster than a
        casting multiply)."""
        y = x.astype(np.float32)
        return np.multiply(y, factor, out=y)

    def to_float(self, x: Any) -> Any:
        return x.astype(np.float32)

    def clip_(self, y: Any, lo: Any, hi: Any) -> Any:
        return np.clip(y, lo, hi, out=y)

    def grey(self, y: Any) -> Any:
        return np.matmul(y, GREY_WEIGHTS, dtype=np.float32)

    def mean_hw(self, g: Any) -> Any:
        return g.reshape(g.shape[0], -1).mean(axis=1, dtype=np.float64).astype(np.float32)

    def add_grey_(self, y: Any, g: Any, k: Any) -> Any:
        """``y[..., c] += k * g`` for every channel (``k`` per sample)."""
        kg = np.multiply(g, k.reshape(-1, 1, 1), dtype=np.float32)
        for c in range(y.shape[-1]):
            np.add(y[..., c], kg, out=y[..., c])
        return y

    def affine_(self, y: Any, a: Any, b: Any) -> Any:
        np.multiply(y, a, out=y)
        return np.add(y, b, out=y)

    def to_uint8(self, y: Any) -> np.ndarray:
        np.rint(y, out=y)
        return y.astype(np.uint8)


class _TorchOps(_NumpyOps):
    """The same primitives on torch tensors (CPU or GPU); hue goes through NumPy."""

    def __init__(self) -> None:
        from datakiln._optional import import_optional

        self.torch = import_optional("torch", extra="torch", purpose="the torch augmentation backend")

    def asarray(self, x: np.ndarray) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(x))

    def to_numpy(self, y: Any) -> np.ndarray:
        return y.numpy()

    def col(self, values: np.ndarray) -> Any:
        return self.torch.from_numpy(np.asarray(values, dtype=np.float32).reshape(-1, 1, 1, 1))

    def scaled(self, x: Any, factor: Any) -> Any:
        return x.to(self.torch.float32).mul_(factor)

    def to_float(self, x: Any) -> Any:
        return x.to(self.torch.float32, copy=True)

    def clip_(self, y: Any, lo: Any, hi: Any) -> Any:
        return y.clamp_(min=lo, max=hi)

    def grey(self, y: Any) -> Any:
        return y.to(self.torch.float32) @ self.torch.from_numpy(GREY_WEIGHTS)

    def mean_hw(self, g: Any) -> Any:
        return g.reshape(g.shape[0], -1).double().mean(dim=1).float().numpy()

    def add_grey_(self, y: Any, g: Any, k: Any) -> Any:
        return y.add_(g.unsqueeze(-1) * k)

    def affine_(self, y: Any, a: Any, b: Any) -> Any:
        return y.mul_(a).add_(b)

    def to_uint8(self, y: Any) -> np.ndarray:
        return y.round_().to(self.torch.uint8).numpy()


class _HybridOps(_NumpyOps):
    """NumPy arrays, with the clamp done by torch in place on the same memory: NumPy's
    ``clip`` is about 5x slower than torch's ``clamp_`` here (66 vs 13 us per 224x224x3
    float32 image, measured), and it is the kernel's most frequent full pass."""

    def __init__(self, torch: Any) -> None:
        self.torch = torch

    def clip_(self, y: Any, lo: Any, hi: Any) -> Any:
        if np.ndim(lo) == 0 and np.ndim(hi) == 0:
            self.torch.from_numpy(y).clamp_(float(lo), float(hi))
            return y
        lows, highs = np.broadcast_to(lo, (len(y), 1, 1, 1)), np.broadcast_to(hi, (len(y), 1, 1, 1))
        tensor = self.torch.from_numpy(y)
        for i in range(len(y)):
            low, high = float(lows[i, 0, 0, 0]), float(highs[i, 0, 0, 0])
            if low > -np.inf or high < np.inf:
                tensor[i].clamp_(None if low == -np.inf else low, None if high == np.inf else high)
        return y


def _backend(name: str) -> _NumpyOps:
    """"torch", "numpy", or "auto": NumPy, with torch's clamp when torch is already
    imported (a torch loader, a DataLoader). "auto" never imports torch itself: that
    would cost a second and hundreds of MB on a NumPy loader's first batch."""
    if name == "torch":
        return _TorchOps()
    torch = sys.modules.get("torch") if name == "auto" else None
    return _NumpyOps() if torch is None else _HybridOps(torch)


class _State:
    """The group's image as ``clip(A * Y + B, lo, hi)`` (per-sample ``A, B, lo, hi``).

    ``vmin, vmax`` bound the values of ``Y`` per sample, so a clamp that cannot cut is
    never applied; ``g`` caches ``grey(Y)``.
    """

    def __init__(self, ops: _NumpyOps, x: np.ndarray, bound: float) -> None:
        n = x.shape[0]
        self.ops, self.bound = ops, float(bound)
        self.y: Any = ops.asarray(x)
        self.is_input = True  # Y is still the caller's array (never modified in place)
        self.a = np.ones(n, np.float64)
        self.b = np.zeros(n, np.float64)
        self.lo = np.zeros(n, np.float64)
        self.hi = np.full(n, self.bound)
        self.vmin = np.zeros(n, np.float64)
        self.vmax = np.full(n, self.bound)
        self.g: Any = None

    def _may_cut(self) -> np.ndarray:
        low = self.a * self.vmin + self.b
        high = self.a * self.vmax + self.b
        tolerance = 1e-6 * self.bound  # float rounding, far below a grey level
        return (low < self.lo - tolerance) | (high > self.hi + tolerance)

    def settle(self) -> None:
        """Apply the clamp to ``Y`` where it may cut; afterwards the image is ``A*Y + B``."""
        cut = self._may_cut()
        if cut.any():
            # A ~ 0 (a factor of 0, or products of tiny ones): the image is the constant
            # clip(B, lo, hi); dividing by A would overflow float32
            flat = self.a < 1e-12
            self.a = np.where(flat, 0.0, self.a)
            safe_a = np.where(flat, 1.0, self.a)
            ylo = np.where(cut, (self.lo - self.b) / safe_a, -np.inf)
            yhi = np.where(cut, (self.hi - self.b) / safe_a, np.inf)
            # A == 0: the image is the constant clip(B, lo, hi) whatever Y holds
            self.b = np.where(flat, np.clip(self.b, self.lo, self.hi), self.b)
            ylo, yhi = np.where(flat, -np.inf, ylo), np.where(flat, np.inf, yhi)
            if self.is_input:
                self.y, self.is_input = self.ops.to_float(self.y), False
            self.ops.clip_(self.y, self.ops.col(ylo), self.ops.col(yhi))
            self.vmin, self.vmax = np.maximum(self.vmin, ylo), np.minimum(self.vmax, yhi)
            self.g = None
        self.lo = np.full_like(self.lo, -np.inf)
        self.hi = np.full_like(self.hi, np.inf)

    def _clamp_after(self, scale: np.ndarray, shift: np.ndarray) -> None:
        """Compose ``clip(scale * image + shift, 0, bound)`` into the deferred map."""
        self.a = scale * self.a
        self.b = scale * self.b + shift
        with np.errstate(invalid="ignore"):  # 0 * inf: the image is the constant `shift`
            lo = np.where(scale == 0, shift, scale * self.lo + shift)
            hi = np.where(scale == 0, shift, scale * self.hi + shift)
        self.lo, self.hi = np.clip(lo, 0.0, self.bound), np.clip(hi, 0.0, self.bound)

    def grey(self) -> Any:
        if self.g is None:
            self.g = self.ops.grey(self.y)
        return self.g

    def brightness(self, f: np.ndarray) -> None:
        self._clamp_after(f, np.zeros_like(f))

    def contrast(self, f: np.ndarray) -> None:
        if self._may_cut().any():
            self.settle()
        mean = self.a * self.ops.mean_hw(self.grey()).astype(np.float64) + self.b
        self._clamp_after(f, (1.0 - f) * mean)

    def saturation(self, f: np.ndarray) -> None:
        self.settle()
        g = self.grey()
        f32 = f.astype(np.float32)
        self.y = self.ops.scaled(self.y, self.ops.col(f32))
        self.is_input = False
        self.ops.add_grey_(self.y, g, self.ops.col(1.0 - f32))
        # the blend keeps the grey image (weights sum to 1): g stays valid
        spread = self.vmax - self.vmin
        grow = np.maximum(f - 1.0, 0.0) * spread
        self.vmin, self.vmax = self.vmin - grow, self.vmax + grow
        self._clamp_after(np.ones_like(f), np.zeros_like(f))

    def hue(self, f: np.ndarray) -> None:
        image = self.final_float()
        bound = np.float32(self.bound)
        self._reset(self.ops.asarray(hsv_shift(image / bound, f) * bound))

    def _reset(self, y: Any) -> None:
        """The image is ``y`` itself (values in ``[0, bound]``)."""
        n = len(self.a)
        self.y, self.is_input, self.g = y, False, None
        self.a, self.b = np.ones(n), np.zeros(n)
        self.lo, self.hi = np.zeros(n), np.full(n, self.bound)
        self.vmin, self.vmax = np.zeros(n), np.full(n, self.bound)

    def _settled_float(self) -> Any:
        """``A * Y + B`` as a float32 array the kernel owns (never the caller's input)."""
        self.settle()
        y = self.ops.to_float(self.y) if self.is_input else self.y
        return self.ops.affine_(y, self.ops.col(self.a), self.ops.col(self.b))

    def final_float(self) -> np.ndarray:
        """The image as float32, unrounded."""
        y = self._settled_float()
        self._reset(y)
        return self.ops.to_numpy(y)

    def final_uint8(self) -> np.ndarray:
        """The image rounded to uint8 (the tracked bounds keep it inside ``[0, 255]``)."""
        return self.ops.to_uint8(self._settled_float())


def hsv_shift(rgb: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Rotate the hue of ``rgb`` (float in ``[0, 1]``, ``N×H×W×3``) by ``shift`` turns per sample."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    maxc = np.maximum(np.maximum(r, g), b)
    minc = np.minimum(np.minimum(r, g), b)
    delta = maxc - minc
    safe = np.where(delta > 0, delta, 1.0)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = np.where(maxc == r, bc - gc, np.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    s = np.where(maxc > 0, delta / np.where(maxc > 0, maxc, 1.0), 0.0)
    h = (h + np.asarray(shift, dtype=np.float32).reshape(-1, 1, 1)) % 1.0
    i = np.floor(h * 6.0)
    frac = h * 6.0 - i
    v = maxc
    p, q, t = v * (1.0 - s), v * (1.0 - s * frac), v * (1.0 - s * (1.0 - frac))
    i = i.astype(np.int64) % 6
    choices_r = [v, q, p, p, t, v]
    choices_g = [t, v, v, q, p, p]
    choices_b = [p, p, t, v, v, q]
    out = np.stack([np.choose(i, choices_r), np.choose(i, choices_g), np.choose(i, choices_b)], axis=-1)
    return out.astype(np.float32)


def _run_group(state: _State, order: tuple[int, ...], factors: dict[int, np.ndarray]) -> None:
    for op in order:
        f = factors[op]
        if op == BRIGHTNESS:
            state.brightness(f)
        elif op == CONTRAST:
            state.contrast(f)
        elif op == SATURATION:
            state.saturation(f)
        else:
            state.hue(f)


def jitter(images: np.ndarray, factors: dict[int, np.ndarray], order: np.ndarray, *,
           backend: str = "auto", normalize: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Apply colour jitter to a uniform ``N×H×W×3`` batch.

    Parameters
    ----------
    images : ndarray
        uint8 (range 0..255, uint8 out) or float32 (range 0..1, float32 out).
    factors : dict
        Per-sample factors (``(N,)`` arrays) by op code; brightness, contrast and
        saturation of 1 and a hue of 0 are skipped.
    order : ndarray of int, ``(N, 4)``
        Each sample's order of the four op codes.
    backend : {"auto", "numpy", "torch"}
    normalize : (mul, add), optional
        Per-channel float32 factors: the result is ``jittered * mul + add`` as float32,
        an ``N×H×W×C`` view of channels-first memory (a fused ``Normalize``: the deferred
        map ``A * Y + B`` and the normalisation are one multiply-add per channel, written
        once; the values skip the rounding to uint8, within half a grey level of it).
    """
    if normalize is not None:
        return _jitter_normalized(images, factors, order, backend, *normalize)
    ops = _backend(backend)
    is_uint8 = images.dtype == np.uint8
    bound = 255.0 if is_uint8 else 1.0
    identity = {BRIGHTNESS: 1.0, CONTRAST: 1.0, SATURATION: 1.0, HUE: 0.0}
    active = np.stack([factors[op] != identity[op] for op in range(4)], axis=1)
    keys = [tuple(int(op) for op in row if active[i, op]) for i, row in enumerate(order)]
    out = np.empty_like(images) if is_uint8 else np.empty(images.shape, np.float32)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    step = _chunk_rows(images)
    for key, members in groups.items():
        for start in range(0, len(members), step):
            index = np.asarray(members[start:start + step])
            part = images[index]
            if not key:
                out[index] = part
                continue
            state = _State(ops, part, bound)
            _run_group(state, key, {op: np.asarray(factors[op], np.float64)[index] for op in key})
            out[index] = state.final_uint8() if is_uint8 else state.final_float()
    return out


def _groups(factors: dict[int, np.ndarray], order: np.ndarray) -> dict[tuple[int, ...], list[int]]:
    """Samples by the order of their active ops."""
    identity = {BRIGHTNESS: 1.0, CONTRAST: 1.0, SATURATION: 1.0, HUE: 0.0}
    active = np.stack([factors[op] != identity[op] for op in range(4)], axis=1)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, row in enumerate(order):
        groups.setdefault(tuple(int(op) for op in row if active[i, op]), []).append(i)
    return groups


_SCRATCH = threading.local()


class _PlanarOps:
    """A NumPy backend's primitives on channels-first float32 ``N×C×H×W`` arrays the kernel
    owns: the grey image and the saturation blend read whole contiguous planes (SIMD)
    instead of every third value (measured per 224 px image: 100 us for the one strided
    cast into this layout, then 13-35 us per pass, against 35-80 us per strided pass)."""

    def __init__(self, base: _NumpyOps) -> None:
        self.base = base
        #: scratch planes reused chunk after chunk and call after call on this thread (about
        #: 7 MB per thread; fresh multi-MB arrays page-fault: that tripled the kernel's time
        #: in the loader's threads)
        scratch = getattr(_SCRATCH, "planes", None)
        if scratch is None:
            scratch = _SCRATCH.planes = {}
        self._scratch: dict[str, np.ndarray] = scratch

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A float32 scratch array of ``shape`` (a view of one kept for the largest chunk)."""
        held = self._scratch.get(name)
        if held is None or held.shape[0] < shape[0] or held.shape[1:] != shape[1:]:
            held = self._scratch[name] = np.empty(shape, np.float32)
        return held[:shape[0]]

    def to_float(self, x: Any) -> Any:
        return x  # already the kernel's own float32 copy

    def scaled(self, x: Any, factor: Any) -> Any:
        return np.multiply(x, factor, out=x)

    def grey(self, y: Any) -> Any:
        g = self.buffer("grey", (y.shape[0],) + y.shape[2:])
        part = self.buffer("part", g.shape)
        np.multiply(y[:, 0], GREY_WEIGHTS[0], out=g)
        for c in (1, 2):
            np.multiply(y[:, c], GREY_WEIGHTS[c], out=part)
            np.add(g, part, out=g)
        return g

    def add_grey_(self, y: Any, g: Any, k: Any) -> Any:
        kg = self.buffer("part", g.shape)  # free again: the grey image is complete
        np.multiply(g, np.asarray(k, np.float32).reshape(-1, 1, 1), out=kg)
        return np.add(y, kg[:, None], out=y)


def _jitter_normalized(images: np.ndarray, factors: dict[int, np.ndarray], order: np.ndarray,
                       backend: str, mul: np.ndarray, add: np.ndarray) -> np.ndarray:
    """:func:`jitter` followed by ``* mul + add`` per channel, into channels-first float32.

    With the NumPy backends each chunk is cast once into channels-first float32 and the
    whole jitter runs there (:class:`_PlanarOps`); the deferred map ``A * Y + B`` and the
    normalisation are then one multiply-add per image. Samples that draw a hue shift (HSV
    wants channels last) and the torch backend take the channels-last kernel."""
    ops = _backend(backend)
    planar_ops = None if isinstance(ops, _TorchOps) else _PlanarOps(ops)
    bound = 255.0 if images.dtype == np.uint8 else 1.0
    n, h, w, channels = images.shape
    out = np.empty((n, channels, h, w), np.float32)
    mul = np.asarray(mul, np.float64)
    add = np.asarray(add, np.float64)
    step = _chunk_rows(images)
    for key, members in _groups(factors, order).items():
        planar = planar_ops is not None and HUE not in key
        for start in range(0, len(members), step):
            index = np.asarray(members[start:start + step])
            part = images[index]
            if planar:
                y = planar_ops.buffer("image", (len(index), channels, h, w))  # type: ignore[union-attr]
                y[...] = part.transpose(0, 3, 1, 2)
                state = _State(planar_ops, y, bound)  # type: ignore[arg-type]
                state.is_input = False
            else:
                state = _State(ops, part, bound)
            _run_group(state, key, {op: np.asarray(factors[op], np.float64)[index] for op in key})
            state.settle()  # the image is now exactly A * Y + B
            y, a, b = state.ops.to_numpy(state.y), state.a, state.b
            for j, i in enumerate(index.tolist()):
                scale = (a[j] * mul).astype(np.float32)
                shift = (b[j] * mul + add).astype(np.float32)
                if planar:
                    target = out[i]
                    np.multiply(y[j], scale.reshape(-1, 1, 1), out=target)
                    np.add(target, shift.reshape(-1, 1, 1), out=target)
                    continue
                for c in range(channels):
                    target = out[i, c]
                    np.multiply(y[j, :, :, c], scale[c], out=target)
                    np.add(target, shift[c], out=target)
    return out.transpose(0, 2, 3, 1)


#: float32 bytes worked on at once: temporaries stay in cache and in the malloc heap
#: (arrays past glibc's 32 MiB mmap threshold come back as fresh, page-faulting memory)
_CHUNK_BYTES = 4 << 20


def _chunk_rows(images: np.ndarray) -> int:
    per_image = 4 * int(np.prod(images.shape[1:]))
    return max(1, _CHUNK_BYTES // max(per_image, 1))
