"""Colour and pixel ops against references written independently here (hand formulas,
colorsys, scipy), on real CIFAR images vendored in tests/data and on synthetic batches."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage
from tests.conftest import sample_dataset

from datakiln.augment import ColorJitter, Compose, GaussianBlur, GaussianNoise, Grayscale, Normalize
from datakiln.augment._random import SampleRandom
from datakiln.augment.base import ImageBatch
from datakiln.errors import InvalidArgumentError

LUMA = np.array([0.299, 0.587, 0.114])


def cifar() -> np.ndarray:
    """The ten vendored CIFAR-10 JPEGs (one per class), decoded by Pillow: 10×32×32×3 uint8."""
    root = sample_dataset("cifar10_jpg_subset/train")
    paths = sorted(root.glob("*/0000.jpg"))
    assert len(paths) == 10
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])


def batch_of(images: np.ndarray, row_ids=None) -> ImageBatch:
    ids = np.arange(len(images)) if row_ids is None else row_ids
    return ImageBatch(images=images, row_ids=ids)


def run(op, images, *, seed=0, row_ids=None):
    out, params = op.forward(batch_of(images, row_ids), SampleRandom(
        np.arange(len(images)) if row_ids is None else row_ids, seed=seed))
    return out.images, params


# -- ColorJitter: the reference, op by op, clipping after each ------------------------------

def reference_jitter(image: np.ndarray, params: dict, i: int) -> np.ndarray:
    """One sample, float64, in its recorded order; hue through colorsys."""
    y = image.astype(np.float64)
    for op in params["order"][i]:
        if op == 0 and params["brightness"][i] != 1:
            y = np.clip(params["brightness"][i] * y, 0, 255)
        elif op == 1 and params["contrast"][i] != 1:
            c = float(params["contrast"][i])
            y = np.clip(c * y + (1 - c) * (y @ LUMA).mean(), 0, 255)
        elif op == 2 and params["saturation"][i] != 1:
            s = float(params["saturation"][i])
            y = np.clip(s * y + (1 - s) * (y @ LUMA)[..., None], 0, 255)
        elif op == 3 and params["hue"][i] != 0:
            shift = float(params["hue"][i])
            pixels = []
            for r, g, b in (y / 255).reshape(-1, 3):
                h, s, v = colorsys.rgb_to_hsv(r, g, b)
                pixels.append(colorsys.hsv_to_rgb((h + shift) % 1.0, s, v))
            y = np.array(pixels).reshape(y.shape) * 255
    return y


def test_brightness_is_a_clipped_scale():
    images = cifar()
    out, params = run(ColorJitter(brightness=0.8), images)
    b = params["brightness"].astype(np.float64)
    assert out.dtype == np.uint8 and out.shape == images.shape
    assert np.all((b >= 0.2) & (b <= 1.8)) and np.ptp(b) > 0.3
    expected = np.rint(np.clip(b[:, None, None, None] * images, 0, 255))
    np.testing.assert_array_equal(out, expected)


def test_contrast_blends_with_the_mean_grey_level():
    images = cifar()
    out, params = run(ColorJitter(contrast=0.9), images, seed=3)
    for i, image in enumerate(images):
        c = float(params["contrast"][i])
        mean = (image.astype(np.float64) @ LUMA).mean()
        expected = np.rint(np.clip(c * image + (1 - c) * mean, 0, 255))
        np.testing.assert_array_equal(out[i], expected)


def test_saturation_blends_with_the_grey_image():
    images = cifar()
    out, params = run(ColorJitter(saturation=(0.0, 2.5)), images, seed=4)
    for i, image in enumerate(images):
        s = float(params["saturation"][i])
        grey = image.astype(np.float64) @ LUMA
        expected = np.rint(np.clip(s * image + (1 - s) * grey[..., None], 0, 255))
        np.testing.assert_array_equal(out[i], expected)
    zero = ColorJitter(saturation=(0.0, 0.0))(batch_of(images)).images
    assert np.abs(zero.astype(int) - zero[..., :1]).max() <= 1  # all channels equal: grey


def test_hue_matches_colorsys_within_one_grey_level():
    images = cifar()[:4]
    out, params = run(ColorJitter(hue=0.5), images, seed=5)
    assert np.ptp(params["hue"]) > 0.1
    for i, image in enumerate(images):
        expected = reference_jitter(image, params, i)
        assert np.abs(out[i].astype(np.float64) - expected).max() <= 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_all_four_in_per_sample_order_match_the_reference(seed):
    images = cifar()
    bright = images.astype(np.int64) + 90  # clipping at 255 makes the order matter
    images = np.concatenate([images, np.clip(bright, 0, 255).astype(np.uint8)])
    op = ColorJitter(brightness=0.6, contrast=0.6, saturation=0.8, hue=0.2)
    out, params = run(op, images, seed=seed)
    orders = {tuple(row) for row in params["order"]}
    assert len(orders) > 6  # samples really get different orders
    for i, image in enumerate(images):
        expected = np.rint(reference_jitter(image, params, i))
        assert np.abs(out[i].astype(np.float64) - expected).max() <= 1.0


def test_without_hue_the_kernel_is_exact():
    images = np.concatenate([cifar(), np.clip(cifar().astype(int) * 2, 0, 255).astype(np.uint8)])
    out, params = run(ColorJitter(0.7, 0.7, 0.7), images, seed=9)
    expected = np.stack([np.rint(reference_jitter(im, params, i)) for i, im in enumerate(images)])
    np.testing.assert_array_equal(out, expected)


def test_float_images_stay_float_in_zero_one():
    images = cifar()
    as_float = images.astype(np.float32) / 255
    op = ColorJitter(0.5, 0.5, 0.5)
    out_u8, params = run(op, images)
    out_f, params_f = run(op, as_float)
    assert out_f.dtype == np.float32 and out_f.min() >= -1e-6 and out_f.max() <= 1 + 1e-6
    unrounded = np.stack([reference_jitter(im, params, i) for i, im in enumerate(images)]) / 255
    assert np.abs(out_f - unrounded).max() < 1e-4


def test_torch_backend_equals_numpy_within_one_grey_level():
    pytest.importorskip("torch")  # the torch extra; CI installs it
    images = np.concatenate([cifar()] * 4)
    op_np = ColorJitter(0.5, 0.5, 0.5, 0.1, backend="numpy")
    op_torch = ColorJitter(0.5, 0.5, 0.5, 0.1, backend="torch")
    a, params = run(op_np, images, seed=1)
    b = op_torch.apply(batch_of(images), params).images
    assert b.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert (a == b).mean() > 0.99


def test_jitter_is_per_sample_and_keyed_by_row_id():
    image = cifar()[3]
    images = np.repeat(image[None], 256, axis=0)
    out, params = run(ColorJitter(0.4, 0.4, 0.4), images, seed=11)
    assert len(np.unique(params["brightness"])) == 256
    assert len({row.tobytes() for row in out}) > 250
    # row 17 gets the same output alone, in a batch of 7, or placed elsewhere in the batch
    ids = np.array([40, 17, 3, 99, 5, 6, 8])
    small, _ = run(ColorJitter(0.4, 0.4, 0.4), images[:7], seed=11, row_ids=ids)
    np.testing.assert_array_equal(small[1], out[17])
    alone, _ = run(ColorJitter(0.4, 0.4, 0.4), images[:1], seed=11, row_ids=np.array([17]))
    np.testing.assert_array_equal(alone[0], out[17])


def test_replay_and_mixed_sizes():
    images = cifar()
    op = ColorJitter(0.4, 0.4, 0.4, 0.05)
    out, params = run(op, images, seed=2)
    np.testing.assert_array_equal(op.apply(batch_of(images), params).images, out)
    mixed = [images[0], images[1][:20, :25], images[2]]
    listed = op.apply(batch_of(mixed), {k: v[:3] for k, v in params.items()}).images
    assert isinstance(listed, list) and listed[1].shape == (20, 25, 3)
    np.testing.assert_array_equal(listed[0], out[0])


def test_jitter_arguments_are_checked():
    with pytest.raises(InvalidArgumentError, match="hue"):
        ColorJitter(hue=0.7)
    with pytest.raises(InvalidArgumentError, match="brightness"):
        ColorJitter(brightness=-1)
    with pytest.raises(InvalidArgumentError, match="backend"):
        ColorJitter(0.1, backend="cuda")
    with pytest.raises(InvalidArgumentError, match=r"float images in \[0, 1\]; got floats in \[-2"):
        ColorJitter(0.4)(batch_of(np.full((2, 4, 4, 3), -2.0, np.float32)))
    with pytest.raises(InvalidArgumentError, match="3 channels"):
        ColorJitter(0.4)(batch_of(np.zeros((2, 4, 4, 1), np.uint8)))


# -- Grayscale, GaussianNoise, GaussianBlur, Normalize ---------------------------------------

def test_grayscale_matches_pillow_luma_within_one_level():
    images = cifar()
    out = Grayscale()(batch_of(images)).images
    assert out.shape == images.shape and np.all(out[..., 0] == out[..., 2])
    pillow = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in images])
    assert np.abs(out[..., 0].astype(int) - pillow).max() <= 1
    single = Grayscale(keep_channels=False)(batch_of(images)).images
    assert single.shape == images.shape[:3] + (1,)
    with pytest.raises(InvalidArgumentError, match="p=1.0"):
        Grayscale(p=0.5, keep_channels=False)


def test_grayscale_probability_is_per_sample():
    images = np.repeat(cifar()[:1], 400, axis=0)
    out, params = run(Grayscale(p=0.3), images)
    chosen = params["applied"]
    assert 0.22 < chosen.mean() < 0.38
    np.testing.assert_array_equal(out[~chosen], images[~chosen])
    assert np.all(out[chosen][..., 0] == out[chosen][..., 1])


def test_gaussian_noise_has_the_asked_std_and_replays():
    images = np.full((64, 32, 32, 3), 128, np.uint8)
    out, params = run(GaussianNoise(std=(5.0, 20.0)), images, seed=1)
    diff = out.astype(np.float64) - 128
    measured = diff.reshape(64, -1).std(axis=1)
    np.testing.assert_allclose(measured, params["std"], rtol=0.06)
    assert abs(diff.mean()) < 0.2
    np.testing.assert_array_equal(GaussianNoise(std=(5.0, 20.0)).apply(batch_of(images), params).images, out)
    assert not np.array_equal(out[0], out[1])  # every row its own noise
    normalised = np.full((2, 8, 8, 3), -1.5, np.float32)  # floats are not clipped
    noisy = GaussianNoise(std=0.1)(batch_of(normalised)).images
    assert noisy.dtype == np.float32 and noisy.min() < -1.6 and abs(noisy.mean() + 1.5) < 0.05
    again, _ = run(GaussianNoise(std=(5.0, 20.0)), images[:3], seed=1, row_ids=np.array([9, 0, 1]))
    np.testing.assert_array_equal(again[1:], out[:2])


def test_gaussian_blur_matches_scipy_mirror_correlation():
    images = cifar()
    out, params = run(GaussianBlur(kernel_size=7, sigma=(0.5, 3.0)), images, seed=2)
    assert out.dtype == np.uint8
    for i, image in enumerate(images):
        sigma = float(params["sigma"][i])
        x = np.arange(7) - 3.0
        weights = np.exp(-(x ** 2) / (2 * sigma ** 2))
        weights /= weights.sum()
        expected = ndimage.correlate1d(image.astype(np.float64), weights, axis=0, mode="mirror")
        expected = ndimage.correlate1d(expected, weights, axis=1, mode="mirror")
        assert np.abs(out[i].astype(np.float64) - expected).max() <= 0.5 + 1e-3
    with pytest.raises(InvalidArgumentError, match="odd"):
        GaussianBlur(4)


def test_normalize_by_hand():
    images = cifar()
    out = Normalize()(batch_of(images)).images
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = (images / 255.0 - mean) / std
    assert out.dtype == np.float32 and out.shape == images.shape
    np.testing.assert_allclose(out, expected, atol=2e-6)
    grey = Normalize(mean=[0.5], std=[0.25])(batch_of(images[..., :1])).images
    np.testing.assert_allclose(grey, (images[..., :1] / 255 - 0.5) / 0.25, atol=2e-6)
    as_float = Normalize(mean=[0.1] * 3, std=[2.0] * 3)(batch_of(images.astype(np.float32) / 255)).images
    np.testing.assert_allclose(as_float, (images / 255 - 0.1) / 2, atol=2e-6)
    with pytest.raises(InvalidArgumentError, match="channel"):
        Normalize()(batch_of(images[..., :1]))


def test_normalize_of_uint8_writes_channels_first_memory():
    images = cifar()
    out = Normalize(mean=[0.2, 0.4, 0.6], std=[0.5, 0.25, 0.125])(batch_of(images)).images
    expected = (images / 255.0 - [0.2, 0.4, 0.6]) / [0.5, 0.25, 0.125]
    np.testing.assert_allclose(out, expected, atol=4e-6)
    # NHWC shape over NCHW memory: the loader's transpose for torch is then a free view
    nchw = out.transpose(0, 3, 1, 2)
    assert nchw.flags.c_contiguous and not out.flags.c_contiguous
    assert np.shares_memory(np.ascontiguousarray(nchw), out)
    assert Normalize()(batch_of(images[:0])).images.shape == (0, *images.shape[1:])


def test_pipeline_of_colour_ops_is_deterministic_by_row():
    images = np.concatenate([cifar()] * 6)
    pipe = Compose([ColorJitter(0.4, 0.4, 0.4, 0.1), Grayscale(p=0.2), GaussianBlur(3),
                    GaussianNoise(3.0, p=0.5), Normalize()])
    full, params = run(pipe, images, seed=8)
    part, _ = run(pipe, images[10:17], seed=8, row_ids=np.arange(10, 17))
    np.testing.assert_array_equal(part, full[10:17])
    np.testing.assert_array_equal(pipe.apply(batch_of(images), params).images, full)


def test_chunking_and_backends_agree(monkeypatch):
    pytest.importorskip("torch")  # imported: "auto" then clamps with torch (the hybrid path)
    from datakiln.augment import _jitter

    assert type(_jitter._backend("auto")).__name__ == "_HybridOps"

    images = np.concatenate([cifar()] * 5)
    op = ColorJitter(0.6, 0.6, 0.6)
    whole, params = run(op, images, seed=21)
    monkeypatch.setattr(_jitter, "_CHUNK_BYTES", 3 * 32 * 32 * 4 * 3)  # three images at a time
    chunked = op.apply(batch_of(images), params).images
    pure_numpy = ColorJitter(0.6, 0.6, 0.6, backend="numpy").apply(batch_of(images), params).images
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_array_equal(pure_numpy, whole)


def test_colour_ops_never_import_torch_themselves():
    import subprocess
    import sys

    code = ("import numpy as np, sys; from datakiln.augment import ColorJitter, Normalize, parse_ops;"
            "from datakiln.augment.base import ImageBatch;"
            "b = ImageBatch(images=np.zeros((2, 8, 8, 3), np.uint8), row_ids=[0, 1]);"
            "parse_ops('jitter:0.4; blur:3; noise:2; erase; normalize')(b);"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 3), st.floats(0, 3), st.floats(0, 3),
                          st.permutations([0, 1, 2, 3])), min_size=1, max_size=6),
       st.integers(0, 2**32 - 1))
def test_kernel_equals_the_op_by_op_reference_for_any_factors_and_order(samples, seed):
    from datakiln.augment._jitter import jitter

    rng = np.random.default_rng(seed)
    n = len(samples)
    images = rng.integers(0, 256, (n, 3, 4, 3), dtype=np.uint8)
    images[0, 0, 0] = 255  # saturated pixels make every clamp matter
    params = {"brightness": np.array([s[0] for s in samples]), "contrast": np.array([s[1] for s in samples]),
              "saturation": np.array([s[2] for s in samples]), "hue": np.zeros(n),
              "order": np.array([s[3] for s in samples])}
    factors = {code: params[name] for code, name in
               enumerate(("brightness", "contrast", "saturation", "hue"))}
    for backend in ("numpy", "auto"):
        out = jitter(images, factors, params["order"], backend=backend)
        exact = np.stack([reference_jitter(image, params, i) for i, image in enumerate(images)])
        # equal up to float32 rounding of values sitting on a .5 boundary
        assert np.abs(out - exact).max() <= 0.5 + 1e-3
