"""Geometric ops against independent references (array reversal, slicing, Pillow), their
targets (boxes, masks, keypoints), per-sample randomness, batch invariance and replay."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from datakiln.augment import (
    Affine,
    CenterCrop,
    Compose,
    HorizontalFlip,
    ImageBatch,
    RandomApply,
    RandomCrop,
    RandomResizedCrop,
    Resize,
    Rotate,
    VerticalFlip,
)
from datakiln.augment._random import SampleRandom
from datakiln.errors import InvalidArgumentError

torch = pytest.importorskip("torch")


def photo(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth, photograph-like uint8 images (gradients plus blobs plus a little noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    out = np.empty((n, h, w, 3), dtype=np.float64)
    for i in range(n):
        a, b, c = rng.uniform(0.5, 6.0, 3)
        for ch in range(3):
            out[i, :, :, ch] = 128 + 90 * np.sin(a * x + b * y + c * ch + i) * np.cos(b * x - a * y)
    out += rng.normal(0, 4, out.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def batch_of(images: np.ndarray | list[np.ndarray], **extra: object) -> ImageBatch:
    return ImageBatch(images=images, row_ids=np.arange(len(images)), **extra)


def run(op: object, batch: ImageBatch, seed: int = 0) -> tuple[ImageBatch, dict]:
    return op.forward(batch, SampleRandom(batch.row_ids, seed=seed))  # type: ignore[attr-defined]


# -- flips -------------------------------------------------------------------------------
def test_flips_are_array_reversals_per_sample() -> None:
    images = photo(64, 12, 17)
    batch = batch_of(images, labels=np.arange(64))
    out, params = run(HorizontalFlip(), batch)
    flags = params["flip"]
    assert 15 < flags.sum() < 49
    for i in range(64):
        expected = images[i, :, ::-1] if flags[i] else images[i]
        np.testing.assert_array_equal(out.images[i], expected)
    out_v, params_v = run(VerticalFlip(p=1.0), batch)
    assert params_v["flip"].all()
    np.testing.assert_array_equal(out_v.images, images[:, ::-1])
    np.testing.assert_array_equal(out.labels, np.arange(64))
    assert out.images.dtype == np.uint8 and out.images.shape == images.shape
    assert not run(HorizontalFlip(p=0.0), batch)[1]["flip"].any()


def test_flip_of_a_mixed_size_list() -> None:
    images = [photo(1, 5 + i, 9 - i, seed=i)[0] for i in range(4)]
    out, params = run(HorizontalFlip(p=1.0), batch_of(images))
    assert isinstance(out.images, list)
    for image, flipped in zip(images, out.images, strict=True):
        np.testing.assert_array_equal(flipped, image[:, ::-1])


# -- crops -------------------------------------------------------------------------------
def test_random_crop_is_a_slice_of_the_padded_image() -> None:
    images = photo(256, 32, 32)
    out, params = run(RandomCrop(32, padding=4, fill=(7, 8, 9)), batch_of(images))
    top, left = params["top"], params["left"]
    assert top.min() >= -4 and top.max() <= 4 and left.min() >= -4 and left.max() <= 4
    assert len(set(zip(top.tolist(), left.tolist(), strict=True))) > 60  # of 81 offsets
    for i in range(256):
        padded = np.stack([np.pad(images[i, :, :, c], 4, constant_values=v)
                           for c, v in enumerate((7, 8, 9))], axis=2)
        np.testing.assert_array_equal(out.images[i],
                                      padded[top[i] + 4:top[i] + 36, left[i] + 4:left[i] + 36])


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.tuples(st.integers(6, 20), st.integers(6, 20)), min_size=1, max_size=5),
       padding=st.integers(0, 3), seed=st.integers(0, 2**31))
def test_random_crop_of_mixed_sizes_draws_in_each_image(sizes: list, padding: int, seed: int) -> None:
    images = [np.random.default_rng(i).integers(0, 256, (h, w, 1), dtype=np.uint8)
              for i, (h, w) in enumerate(sizes)]
    out, params = run(RandomCrop(6, padding=padding), batch_of(images), seed=seed)
    assert out.images.shape == (len(sizes), 6, 6, 1)
    for i, (h, w) in enumerate(sizes):
        top, left = int(params["top"][i]), int(params["left"][i])
        assert -padding <= top <= h + padding - 6 and -padding <= left <= w + padding - 6
        padded = np.pad(images[i], ((padding, padding), (padding, padding), (0, 0)))
        np.testing.assert_array_equal(out.images[i], padded[top + padding:top + padding + 6,
                                                            left + padding:left + padding + 6])


def test_center_crop_and_pad_if_needed() -> None:
    images = photo(3, 20, 30)
    out, params = run(CenterCrop((10, 12)), batch_of(images))
    np.testing.assert_array_equal(out.images, images[:, 5:15, 9:21])
    small = [photo(1, 4, 5, seed=1)[0]]
    with pytest.raises(InvalidArgumentError, match="row 0 is 4×5.*pad_if_needed"):
        run(RandomCrop(8), batch_of(small))
    out, params = run(RandomCrop(8, pad_if_needed=True, fill=255), batch_of(small))
    assert (params["top"][0], params["left"][0]) == (-2, -1)
    np.testing.assert_array_equal(out.images[0, 2:6, 1:6], small[0])
    assert (out.images[0, :2] == 255).all() and (out.images[0, :, 6:] == 255).all()


# -- resampling --------------------------------------------------------------------------
def pil_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize(size[::-1], Image.Resampling.BILINEAR))


def test_resize_equals_pillow_and_keeps_the_aspect_ratio() -> None:
    images = photo(4, 48, 64)
    out, params = run(Resize(24, backend="numpy"), batch_of(images))
    assert out.images.shape == (4, 24, 32, 3)
    for i in range(4):
        np.testing.assert_array_equal(out.images[i], pil_resize(images[i], (24, 32)))
    tall = [photo(1, 50, 20)[0], photo(1, 20, 30)[0]]
    out, params = run(Resize(10, backend="numpy"), batch_of(tall))
    assert [im.shape[:2] for im in out.images] == [(25, 10), (10, 15)]
    up, _ = run(Resize((70, 90), backend="numpy"), batch_of(images))
    np.testing.assert_array_equal(up.images[2], pil_resize(images[2], (70, 90)))


def test_random_resized_crop_boxes_and_pixels() -> None:
    images = photo(256, 60, 80)
    op = RandomResizedCrop(24, backend="numpy")
    out, params = run(op, batch_of(images))
    top, left, h, w = (params[k] for k in ("top", "left", "height", "width"))
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 60).all() and (left + w <= 80).all()
    area = h * w / (60 * 80)
    assert area.min() >= 0.07 and area.max() <= 1.0
    # the aspect ratio is in (3/4, 4/3) before rounding the sides to whole pixels
    assert ((w + 0.5) / (h - 0.5) >= 3 / 4).all() and ((w - 0.5) / (h + 0.5) <= 4 / 3).all()
    assert len(set(zip(top.tolist(), left.tolist(), h.tolist(), w.tolist(), strict=True))) > 250
    for i in range(0, 256, 17):
        crop = images[i, top[i]:top[i] + h[i], left[i]:left[i] + w[i]]
        np.testing.assert_array_equal(out.images[i], pil_resize(np.ascontiguousarray(crop), (24, 24)))
    # no candidate can fit (scale above 1): the central box with the clamped ratio
    _, fallback = run(RandomResizedCrop(8, scale=(2.0, 3.0), ratio=(1.0, 1.0)), batch_of(images[:2]))
    assert fallback["height"].tolist() == [60, 60] and fallback["width"].tolist() == [60, 60]
    assert fallback["left"].tolist() == [10, 10] and fallback["top"].tolist() == [0, 0]


# -- warps -------------------------------------------------------------------------------
def test_rotate_matches_pillow_within_one_grey_level() -> None:
    images = photo(16, 64, 48)
    out, params = run(Rotate(180), batch_of(images), seed=3)
    angles = params["angle"]
    assert np.ptp(angles) > 90
    for i, angle in enumerate(angles):
        reference = np.asarray(Image.fromarray(images[i]).rotate(float(angle), Image.Resampling.BILINEAR))
        diff = np.abs(out.images[i].astype(int) - reference)[2:-2, 2:-2]
        assert diff.max() <= 1


def test_affine_identity_and_pure_translation() -> None:
    images = photo(2, 20, 30)
    same, _ = run(Affine(), batch_of(images))
    np.testing.assert_array_equal(same.images, images)
    params = {"matrix": np.tile(np.array([[1.0, 0, 3], [0, 1, -2]]), (2, 1, 1))}
    moved = Affine(fill=5).apply(batch_of(images), params)
    np.testing.assert_array_equal(moved.images[:, :18, 3:], images[:, 2:, :27])
    assert (moved.images[:, :, :3] == 5).all() and (moved.images[:, 18:] == 5).all()


@pytest.mark.parametrize("op", [
    Resize(21), Resize((40, 13)), RandomResizedCrop(24), RandomResizedCrop((16, 30), scale=(0.5, 1)),
    Rotate(45, fill=(10, 20, 30)), Affine(20, (0.7, 1.3), (0.2, 0.1), (-10, 10, -5, 5), fill=100),
])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_torch_backend_equals_numpy_within_one_level(op: object, dtype: type) -> None:
    images = photo(12, 37, 45)
    if dtype == np.float32:
        images = (images.astype(np.float32) - 120) / 60  # a normalised batch
    numpy_op, torch_op = (type(op)(**{**vars(op), "backend": b}) for b in ("numpy", "torch"))
    for batch in (batch_of(images), batch_of([images[0], images[1, 3:, 5:]])):
        expected, params = run(numpy_op, batch)
        got = torch_op.apply(batch, params)
        for e, g in zip(expected.images, got.images, strict=True):
            assert e.dtype == g.dtype == dtype and e.shape == g.shape
            tolerance = 1 if dtype == np.uint8 else 1 / 255
            assert np.abs(e.astype(np.float64) - g).max() <= tolerance + 1e-6


# -- boxes, masks, keypoints -------------------------------------------------------------
BOX = (10.0, 8.0, 26.0, 20.0)  # x0, y0, x1, y1 in a 40×36 image


def marked_batch(n: int = 8) -> ImageBatch:
    images = np.zeros((n, 36, 40, 3), dtype=np.uint8)
    masks = []
    for i in range(n):
        images[i, 8:20, 10:26] = 255
        mask = np.zeros((36, 40), dtype=np.int32)
        mask[8:20, 10:26] = 3
        masks.append(mask)
    boxes = [np.array([[*BOX, 7.0], [0, 0, 2, 2, 9.0]], dtype=np.float32) for _ in range(n)]
    corners = [np.array([[BOX[0], BOX[1]], [BOX[2], BOX[3]]], dtype=np.float32) for _ in range(n)]
    return ImageBatch(images=images, row_ids=np.arange(n) + 100, labels=np.arange(n),
                      boxes=boxes, masks=masks, keypoints=corners)


def extent(region: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(region)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


@pytest.mark.parametrize("op,exact", [
    (HorizontalFlip(p=1.0), True), (VerticalFlip(p=1.0), True), (RandomCrop(24, padding=6), True),
    (CenterCrop(30), True), (Resize((72, 60)), False), (RandomResizedCrop(32, scale=(0.5, 1)), False),
    (Rotate(40), False), (Affine(15, (0.8, 1.2), (0.1, 0.1), 8), False),
])
def test_boxes_masks_and_keypoints_follow_their_image(op: object, exact: bool) -> None:
    batch = marked_batch()
    out, _ = run(op, batch, seed=5)
    np.testing.assert_array_equal(out.labels, batch.labels)
    np.testing.assert_array_equal(out.row_ids, batch.row_ids)
    slack = 0 if exact else 2.5
    for i in range(len(batch)):
        mask, image = out.masks[i], out.images[i]
        assert mask.shape == image.shape[:2] and mask.dtype == np.int32
        assert set(np.unique(mask)) <= {0, 3}
        bright = image[:, :, 0] > 127
        if not (mask == 3).any():
            assert not any(row[4] == 7.0 for row in out.boxes[i])
            continue
        box = [row for row in out.boxes[i] if row[4] == 7.0][0]
        assert np.abs(np.array(extent(mask == 3)) - box[:4]).max() <= slack
        if exact:
            np.testing.assert_array_equal(bright, mask == 3)
        else:  # the image and the mask agree except along the region's edge
            assert (bright != (mask == 3)).mean() < 0.03
        points = out.keypoints[i]
        inside = ~np.isnan(points[:, 0])
        if isinstance(op, HorizontalFlip | VerticalFlip | RandomCrop | CenterCrop | Resize):
            # axis-aligned: the two corners are the box's corners (in some order)
            xs, ys = sorted(points[inside, 0]), sorted(points[inside, 1])
            if inside.all():
                np.testing.assert_allclose([xs[0], ys[0], xs[1], ys[1]], box[:4], atol=1e-4)


def test_boxes_cut_away_are_removed_and_keypoints_flagged() -> None:
    batch = marked_batch(1)
    params = {"top": np.array([20]), "left": np.array([0])}
    out = RandomCrop(16).apply(batch, params)  # rows 20..35: the small box at the top is gone
    assert out.boxes[0].shape == (0, 5)
    assert np.isnan(out.keypoints[0][0]).all() and np.isnan(out.keypoints[0][1]).all()
    params = {"top": np.array([10]), "left": np.array([12])}
    out = RandomCrop(16).apply(batch, params)
    np.testing.assert_allclose(out.boxes[0], [[0, 0, 14, 10, 7]])
    np.testing.assert_allclose(out.keypoints[0], [[np.nan, np.nan], [14, 10]])


def test_rotated_box_is_the_enclosing_box_of_the_corners() -> None:
    batch = marked_batch(1)
    out, params = run(Rotate((90, 90)), batch)
    # 90° counter-clockwise about (20, 18): (x, y) -> (20 + (y - 18), 18 - (x - 20))
    np.testing.assert_allclose(out.boxes[0][0], [10, 12, 22, 28, 7], atol=1e-4)
    assert extent(out.masks[0] == 3) == (10, 12, 22, 28)


# -- randomness, batch invariance, replay ------------------------------------------------
PIPELINE = Compose([RandomResizedCrop(20, scale=(0.3, 1)), HorizontalFlip(),
                    RandomApply(Rotate(20), p=0.5), RandomCrop(16, padding=2)])


def test_per_sample_randomness_in_a_batch_of_256() -> None:
    same = np.repeat(photo(1, 32, 32), 256, axis=0)
    out, params = run(Compose([RandomCrop(32, padding=4), HorizontalFlip()]), batch_of(same))
    crops = set(zip(params["ops"][0]["top"].tolist(), params["ops"][0]["left"].tolist(), strict=True))
    assert len(crops) > 60 and 90 < params["ops"][1]["flip"].sum() < 166
    distinct = {out.images[i].tobytes() for i in range(256)}
    assert len(distinct) > 100


def test_a_row_gets_the_same_output_in_any_batch() -> None:
    images = photo(256, 28, 30)
    whole, _ = PIPELINE.forward(batch_of(images), SampleRandom(np.arange(256), seed=9, epoch=2))
    order = np.random.default_rng(1).permutation(256)
    for size in (7, 64, 256):
        for start in range(0, 256, size):
            rows = order[start:start + size]
            batch = ImageBatch(images=images[rows], row_ids=rows)
            out, _ = PIPELINE.forward(batch, SampleRandom(rows, seed=9, epoch=2))
            np.testing.assert_array_equal(out.images, whole.images[rows])
    other_epoch, _ = PIPELINE.forward(batch_of(images), SampleRandom(np.arange(256), seed=9, epoch=3))
    assert (other_epoch.images != whole.images).any()


@pytest.mark.parametrize("op", [
    HorizontalFlip(), VerticalFlip(), RandomCrop(20, padding=3), CenterCrop(18), Resize(15),
    RandomResizedCrop(12), Rotate(30), Affine(10, (0.9, 1.1), (0.1, 0.1), 5), PIPELINE,
])
def test_apply_replays_forward(op: object) -> None:
    batch = marked_batch(16)
    out, params = run(op, batch, seed=4)
    again = op.apply(batch, params)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(again.images, out.images)
    for name in ("boxes", "masks", "keypoints"):
        for a, b in zip(getattr(again, name), getattr(out, name), strict=True):
            np.testing.assert_array_equal(a, b)


def test_float32_batches_and_mixed_sizes_end_uniform() -> None:
    images = [photo(1, 30 + 3 * i, 40 - 2 * i, seed=i)[0].astype(np.float32) / 255 for i in range(5)]
    op = Compose([RandomResizedCrop(16), HorizontalFlip(), Rotate(10), RandomCrop(12, padding=1)])
    out, _ = run(op, batch_of(images))
    assert isinstance(out.images, np.ndarray) and out.images.shape == (5, 12, 12, 3)
    assert out.images.dtype == np.float32 and 0 <= out.images.min() and out.images.max() <= 1


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="size"):
        RandomCrop(0)
    with pytest.raises(InvalidArgumentError, match="p="):
        HorizontalFlip(p=2)
    with pytest.raises(InvalidArgumentError, match="backend"):
        Resize(8, backend="cuda")
    with pytest.raises(InvalidArgumentError, match="scale"):
        RandomResizedCrop(8, scale=(0.5, 0.1))
    with pytest.raises(InvalidArgumentError, match="translate"):
        Affine(translate=(2, 0))
    with pytest.raises(InvalidArgumentError, match="float32"):
        HorizontalFlip()(batch_of(np.zeros((2, 4, 4, 3), dtype=np.int16)))
    with pytest.raises(InvalidArgumentError, match="H×W×C"):
        HorizontalFlip()(batch_of(np.zeros((2, 4, 4), dtype=np.uint8)))
    bad = ImageBatch(images=np.zeros((1, 4, 4, 3), np.uint8), row_ids=[42],
                     masks=[np.zeros((5, 4), np.uint8)])
    with pytest.raises(InvalidArgumentError, match="row 42"):
        Resize(8)(bad)


def test_empty_batches_and_the_auto_backend() -> None:
    from datakiln.augment._geometric import resolve_backend

    empty = ImageBatch(images=np.zeros((0, 8, 8, 3), np.uint8), row_ids=np.zeros(0, np.int64))
    assert Compose([RandomCrop(4), HorizontalFlip(), Rotate(10)])(empty).images.shape == (0, 4, 4, 3)
    assert RandomResizedCrop((3, 5))(empty).images.shape == (0, 3, 5, 3)
    # measured: torch resizes faster, Pillow warps faster
    assert resolve_backend("auto", "Resize", torch_faster=True) == "torch"
    assert resolve_backend("auto", "Rotate", torch_faster=False) == "numpy"


@pytest.mark.parametrize("channels", [1, 2, 4, 5])
def test_any_channel_count_resamples_channel_by_channel_alike(channels: int) -> None:
    images = np.random.default_rng(channels).integers(0, 256, (3, 30, 40, channels), dtype=np.uint8)
    batch = batch_of(images)
    for kind, kwargs in ((RandomResizedCrop, {"size": 16}), (Rotate, {"degrees": 30, "fill": 7})):
        out, params = run(kind(**kwargs, backend="numpy"), batch)
        torch_out = kind(**kwargs, backend="torch").apply(batch, params)
        assert np.abs(out.images.astype(int) - torch_out.images).max() <= 1
        for c in range(channels):  # each channel as if it were a grey image on its own
            grey, _ = run(kind(**kwargs, backend="numpy"), batch_of(images[..., c:c + 1].copy()))
            np.testing.assert_array_equal(out.images[..., c], grey.images[..., 0])


def test_asymmetric_padding_follows_torchvision_order() -> None:
    images = photo(64, 10, 12)
    op = RandomCrop((10, 12), padding=(1, 2, 3, 4), fill=9)  # left, top, right, bottom
    out, params = run(op, batch_of(images))
    assert params["left"].min() == -1 and params["left"].max() == 3
    assert params["top"].min() == -2 and params["top"].max() == 4
    for i in range(64):
        padded = np.pad(images[i], ((2, 4), (1, 3), (0, 0)), constant_values=9)
        top, left = params["top"][i] + 2, params["left"][i] + 1
        np.testing.assert_array_equal(out.images[i], padded[top:top + 10, left:left + 12])
    public = {k: v for k, v in vars(op).items() if not k.startswith("_")}
    assert RandomCrop(**public)._pads == op._pads  # what repr shows builds the same op
    _, pair = run(RandomCrop(10, padding=(2, 1)), batch_of(images[:, :8, :8]))  # (left/right, top/bottom)
    assert pair["left"].min() == -2 and pair["left"].max() == 0 and (pair["top"] == -1).all()


def test_torch_backend_takes_read_only_batches_without_a_warning():
    # regression (review): every RandomResizedCrop on read-only memory (decoded Arrow buffers)
    # printed torch's "The given NumPy array is not writable" warning
    import warnings

    pytest.importorskip("torch")
    from datakiln.augment import ImageBatch, RandomResizedCrop

    images = np.arange(4 * 40 * 40 * 3, dtype=np.uint8).reshape(4, 40, 40, 3)
    images.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = RandomResizedCrop(16, backend="torch")(ImageBatch(images, np.arange(4)))
    assert out.images.shape == (4, 16, 16, 3) and out.images.dtype == np.uint8
