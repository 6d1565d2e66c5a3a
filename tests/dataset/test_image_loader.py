"""The loader's image path: decoding and per-sample augmentation keyed by row id."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image
from tests.conftest import sample_dataset

import datakiln
from datakiln.augment import (
    Augmenter,
    Compose,
    HorizontalFlip,
    ImageBatch,
    MixUp,
    Normalize,
    RandomCrop,
    RandomResizedCrop,
)
from datakiln.augment._random import partner_rows
from datakiln.errors import ImageDecodeError, InvalidArgumentError, MemoryBudgetError
from datakiln.io.image_codec import decode

N_ROWS, CLASSES = 300, ("cat", "dog", "frog")


def _jpeg(seed: int, height: int = 32, width: int = 32) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([(x * 7 + seed) % 256, (y * 5 + 3 * seed) % 256,
                      rng.integers(0, 256, (height, width))], axis=2).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def images() -> datakiln.Dataset:
    labels = pa.array([CLASSES[i % 3] for i in range(N_ROWS)]).dictionary_encode()
    paths = [f"{CLASSES[i % 3]}/{i:04d}.jpg" for i in range(N_ROWS)]
    return datakiln.from_arrow(pa.table({"image": [_jpeg(i) for i in range(N_ROWS)],
                                         "label": labels, "path": paths}))


# -- tiny ops following the augmentation contract (per-sample params, batched apply) ----------
class PadCrop(Augmenter):
    """Zero-pad by ``padding`` and crop ``size`` at a per-sample offset."""

    def __init__(self, size: int, padding: int) -> None:
        self.size, self.padding = size, padding

    def make_params(self, rng, batch):
        return {"y": rng.integers(0, 2 * self.padding + 1), "x": rng.integers(0, 2 * self.padding + 1)}

    def apply(self, batch, params):
        p, s, x = self.padding, self.size, batch.images
        padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        rows = params["y"][:, None] + np.arange(s)
        cols = params["x"][:, None] + np.arange(s)
        out = padded[np.arange(len(x))[:, None, None], rows[:, :, None], cols[:, None, :]]
        return batch.with_images(out)


class Flip(Augmenter):
    def make_params(self, rng, batch):
        return {"flip": rng.bernoulli(0.5)}

    def apply(self, batch, params):
        if not batch.uniform:  # a list of images of mixed sizes
            return batch.with_images([i[:, ::-1] if f else i for i, f in zip(batch.images, params["flip"])])
        out = batch.images.copy()
        out[params["flip"]] = out[params["flip"]][:, :, ::-1]
        return batch.with_images(out)


class Scale(Augmenter):
    """uint8 → float32 in [0, 1] (what Normalize does, in miniature)."""

    def make_params(self, rng, batch):
        return {}

    def apply(self, batch, params):
        return batch.with_images(batch.images.astype(np.float32) / 255)


class Mix(Augmenter):
    """MixUp in miniature: a per-sample weight, soft labels."""

    mixes = True

    def make_params(self, rng, batch):
        return {"lam": rng.uniform(0.2, 0.8)}

    def apply(self, batch, params):
        lam = params["lam"].astype(np.float32)
        partner = batch.partners
        images = lam[:, None, None, None] * batch.images + (1 - lam[:, None, None, None]) * partner.images
        onehot = np.eye(batch.num_classes, dtype=np.float32)
        labels = lam[:, None] * onehot[batch.labels] + (1 - lam[:, None]) * onehot[partner.labels]
        return replace(batch, images=images.astype(np.float32), labels=labels, partners=None)


TRANSFORM = Compose([PadCrop(32, 4), Flip(), Scale()])
#: the issue's CIFAR pipeline with datakiln's own ops
CIFAR = Compose([RandomCrop(32, padding=4), HorizontalFlip(), Normalize()])
BOTH = pytest.mark.parametrize("transform", [TRANSFORM, CIFAR], ids=["tiny-ops", "cifar-ops"])


def _by_row(loader, batches=None) -> dict[int, np.ndarray]:
    """Each delivered row's image, by row id (recorded through on_params)."""
    out: dict[int, np.ndarray] = {}
    for batch in loader if batches is None else batches:
        rows = loader.last_params["row_ids"]
        image = batch["image"]
        image = image.numpy() if isinstance(image, torch.Tensor) else image
        for row, values in zip(rows, image):
            out[int(row)] = values
    return out


# -- shapes, dtypes, labels ------------------------------------------------------------------
def test_numpy_and_torch_shapes_dtypes_and_labels(images):
    batch = next(iter(images.loader(64, seed=1)))
    assert list(batch) == ["image", "label", "path"]
    assert batch["image"].shape == (64, 32, 32, 3) and batch["image"].dtype == np.uint8
    assert batch["label"].dtype == np.int64
    codes = [CLASSES.index(p.split("/")[0]) for p in batch["path"]]
    assert batch["label"].tolist() == codes  # categories sorted: cat 0, dog 1, frog 2
    rows = [int(p.split("/")[1][:4]) for p in batch["path"]]
    assert np.array_equal(batch["image"][0], decode(_jpeg(rows[0])))
    tensors = next(iter(images.loader(64, seed=1, transform=TRANSFORM, format="torch")))
    assert tensors["image"].shape == (64, 3, 32, 32) and tensors["image"].dtype == torch.float32
    assert tensors["image"].is_contiguous() and tensors["label"].dtype == torch.int64
    grey = next(iter(images.loader(8, image_mode="L", image_size=(16, 20))))
    assert grey["image"].shape == (8, 16, 20, 1)


def test_one_epoch_delivers_every_row_once(images):
    loader = images.loader(64, seed=3, transform=TRANSFORM)
    seen = _by_row(loader)
    assert sorted(seen) == list(range(N_ROWS))


# -- the same augmentation whatever the batching --------------------------------------------
@BOTH
def test_identical_outputs_across_threads_and_batch_sizes(images, transform):
    reference = _by_row(images.loader(64, seed=5, transform=transform, num_threads=1))
    for batch_size in (7, 64, 256):
        for threads in (1, 2, 4):
            got = _by_row(images.loader(batch_size, seed=5, transform=transform, num_threads=threads))
            assert got.keys() == reference.keys()
            assert all(np.array_equal(got[r], reference[r]) for r in reference), (batch_size, threads)


def test_identical_outputs_across_ranks_and_a_new_seed_differs(images):
    reference = _by_row(images.loader(32, seed=5, transform=TRANSFORM))
    merged: dict[int, np.ndarray] = {}
    for rank in range(3):
        merged.update(_by_row(images.loader(32, seed=5, transform=TRANSFORM, rank=rank, world_size=3)))
    assert all(np.array_equal(merged[r], reference[r]) for r in reference)
    other = _by_row(images.loader(32, seed=6, transform=TRANSFORM))
    assert sum(not np.array_equal(other[r], reference[r]) for r in reference) > N_ROWS // 2


@BOTH
@pytest.mark.parametrize("workers", [0, 2])
def test_identical_outputs_across_torch_facades_and_workers(images, workers, transform):
    reference = _by_row(images.loader(64, seed=5, transform=transform, num_threads=1))
    loader = images.loader(64, seed=5, transform=transform, format="torch")
    order = [loader.indices(b) for b in range(len(loader))]
    for facade in ("torch_loader", "iterable_dataset"):
        if facade == "torch_loader":
            batches = list(loader.torch_loader(num_workers=workers))
        else:
            batches = list(torch.utils.data.DataLoader(loader.torch_dataset(), batch_size=None,
                                                       num_workers=workers))
        assert len(batches) == len(order)
        for rows, batch in zip(order, batches):
            assert batch["image"].shape == (len(rows), 3, 32, 32)
            for row, image in zip(rows, batch["image"].numpy()):
                assert np.array_equal(image, reference[int(row)].transpose(2, 0, 1))
    mapped = loader.torch_map_dataset()
    order = np.random.default_rng(0).permutation(N_ROWS).tolist()
    batches = torch.utils.data.DataLoader(mapped, batch_size=50, sampler=order, num_workers=workers,
                                          collate_fn=_whole)
    for start, batch in zip(range(0, N_ROWS, 50), batches):
        rows = order[start:start + 50]
        assert batch["image"].shape == (50, 3, 32, 32)
        for row, image in zip(rows, batch["image"].numpy()):
            assert np.array_equal(image, reference[row].transpose(2, 0, 1))


def _whole(batch):
    """Map-style batches come whole from ``__getitems__``: nothing to collate."""
    return batch


# -- resume, per-sample randomness, replay ---------------------------------------------------
@BOTH
def test_exact_resume_mid_epoch(images, transform):
    full = [b["image"] for b in images.loader(32, seed=9, transform=transform)]
    first = images.loader(32, seed=9, transform=transform)
    batches = iter(first)
    head = [next(batches)["image"] for _ in range(4)]
    state = first.state_dict()
    resumed = images.loader(32, seed=9, transform=transform, num_threads=1)
    resumed.load_state_dict(state)
    tail = [b["image"] for b in resumed]
    assert len(head) + len(tail) == len(full)
    assert all(np.array_equal(a, b) for a, b in zip(head + tail, full))


def test_per_sample_randomness_in_a_batch_of_256(images):
    loader = images.loader(256, seed=2, transform=Compose([PadCrop(32, 4), Flip()]), shuffle=False)
    batch = next(iter(loader))
    params = loader.last_params["params"]["ops"]
    flips = params[1]["flip"]
    offsets = set(zip(params[0]["y"].tolist(), params[0]["x"].tolist()))
    assert 0.35 < flips.mean() < 0.65 and len(offsets) >= 60  # 81 possible offsets
    originals = loader.images(np.arange(256))
    for i in range(256):  # each sample got its own crop and flip
        y, x = params[0]["y"][i], params[0]["x"][i]
        padded = np.pad(originals[i], ((4, 4), (4, 4), (0, 0)))[y:y + 32, x:x + 32]
        expected = padded[:, ::-1] if flips[i] else padded
        assert np.array_equal(batch["image"][i], expected)


def test_params_are_recorded_and_replay_the_batch(images):
    records = []
    loader = images.loader(50, seed=4, transform=TRANSFORM, on_params=records.append)
    batches = list(loader)
    assert [r["batch"] for r in records] == list(range(len(batches)))
    record = records[2]
    again = TRANSFORM.apply(ImageBatch(loader.images(record["row_ids"]), record["row_ids"]),
                            record["params"])
    assert np.array_equal(again.images, batches[2]["image"])
    loader.set_epoch(1)
    next(iter(loader))
    assert loader.last_params["epoch"] == 1 and records[-1]["epoch"] == 1


def test_epochs_draw_new_parameters_for_the_same_row(images):
    loader = images.loader(N_ROWS, seed=4, transform=TRANSFORM)
    first = _by_row(loader)
    loader.set_epoch(1)
    second = _by_row(loader)
    assert sum(not np.array_equal(first[r], second[r]) for r in first) > N_ROWS // 2


# -- mixing ---------------------------------------------------------------------------------
def test_mixing_loads_partners_and_gives_soft_labels(images):
    loader = images.loader(40, seed=8, transform=Compose([Scale(), Mix()]))
    batch = next(iter(loader))
    rows = loader.last_params["row_ids"]
    lam = loader.last_params["params"]["ops"][1]["lam"].astype(np.float32)
    partners = partner_rows(rows, N_ROWS, seed=8, epoch=0)
    assert batch["label"].shape == (40, 3) and batch["label"].dtype == np.float32
    np.testing.assert_allclose(batch["label"].sum(axis=1), 1, atol=1e-6)
    own, other = loader.images(rows) / 255, loader.images(partners) / 255
    expected = lam[:, None, None, None] * own + (1 - lam[:, None, None, None]) * other
    np.testing.assert_allclose(batch["image"], expected, atol=1e-5)
    onehot = np.eye(3, dtype=np.float32)  # row r is class r % 3 (cat, dog, frog: codes 0, 1, 2)
    expected_labels = lam[:, None] * onehot[rows % 3] + (1 - lam[:, None]) * onehot[partners % 3]
    np.testing.assert_allclose(batch["label"], expected_labels, atol=1e-6)
    assert (partners != rows).mean() > 0.9


def test_real_ops_per_sample_in_a_batch_of_256_and_mixup(images):
    loader = images.loader(256, seed=2, transform=CIFAR, shuffle=False)
    batch = next(iter(loader))["image"]
    assert batch.shape == (256, 32, 32, 3) and batch.dtype == np.float32
    crop, flip = loader.last_params["params"]["ops"][:2]
    offsets = set(zip(crop["top"].tolist(), crop["left"].tolist()))
    flips = flip["flip"]
    assert len(offsets) >= 60 and 0.35 < flips.mean() < 0.65
    mixing = images.loader(64, seed=2, transform=Compose([RandomResizedCrop(24), MixUp(alpha=1.0)]))
    mixed = next(iter(mixing))
    assert mixed["image"].shape[:3] == (64, 24, 24) and mixed["label"].shape == (64, 3)
    assert mixed["label"].dtype == np.float32
    np.testing.assert_allclose(mixed["label"].sum(axis=1), 1, atol=1e-5)
    assert (mixed["label"].max(axis=1) < 1).mean() > 0.5  # most rows mixed with another class


# -- other image columns ---------------------------------------------------------------------
def test_tensor_columns_and_hugging_face_structs(tmp_path):
    digits = np.arange(20 * 28 * 28, dtype=np.uint8).reshape(20, 28, 28)
    table = pa.table({"image": pa.FixedShapeTensorArray.from_numpy_ndarray(digits),
                      "label": pa.array(np.arange(20) % 10, pa.uint8())})
    batch = next(iter(datakiln.from_arrow(table).loader(20, shuffle=False, image_mode="L")))
    assert np.array_equal(batch["image"][:, :, :, 0], digits) and batch["label"].tolist() == list(
        np.arange(20) % 10)
    chunked = pa.concat_tables([table.slice(0, 6), table.slice(6)])
    rgba = next(iter(datakiln.from_arrow(chunked).loader(20, shuffle=False, image_mode="RGBA")))["image"]
    assert rgba.shape == (20, 28, 28, 4) and (rgba[..., 3] == 255).all()
    assert all(np.array_equal(rgba[..., c], digits) for c in range(3))
    assert next(iter(datakiln.from_arrow(table).loader(4, image_size=14)))["image"].shape == (4, 14, 14, 3)
    (tmp_path / "b.jpg").write_bytes(_jpeg(1))
    values = [{"bytes": _jpeg(0), "path": "a.jpg"}, {"bytes": None, "path": str(tmp_path / "b.jpg")}]
    structs = pa.array(values, pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    batch = next(iter(datakiln.from_arrow(pa.table({"img": structs})).loader(2, shuffle=False)))
    assert np.array_equal(batch["img"], np.stack([decode(_jpeg(0)), decode(_jpeg(1))]))


def test_chunked_sliced_and_memory_mapped_columns_give_the_right_images(images, tmp_path):
    table = images.to_arrow()
    chunked = pa.concat_tables([table.slice(0, 7), table.slice(7, 150), table.slice(157)])
    assert chunked.column("image").num_chunks == 3 and chunked.column("image").chunk(1).offset == 7
    reference = _by_row(images.loader(64, seed=1, transform=CIFAR))
    for ds in (datakiln.from_arrow(chunked), images.cache(str(tmp_path / "images.arrow"))):
        got = _by_row(ds.loader(64, seed=1, transform=CIFAR))
        assert all(np.array_equal(got[r], reference[r]) for r in reference)


def test_real_cifar_sample_loads_with_labels():
    files = sorted(sample_dataset("cifar10_jpg_subset/train").glob("*/*.jpg"))
    table = pa.table({"image": [f.read_bytes() for f in files],
                      "label": pa.array([f.parent.name for f in files]).dictionary_encode()})
    loader = datakiln.from_arrow(table).loader(len(files), shuffle=False, transform=TRANSFORM)
    batch = next(iter(loader))
    assert batch["image"].shape == (len(files), 32, 32, 3) and batch["image"].dtype == np.float32
    assert sorted(loader.categories["label"]) == sorted(f.parent.name for f in files)


# -- errors ------------------------------------------------------------------------------------
def test_corrupt_image_names_its_path_and_row(images):
    table = images.to_arrow()
    broken = table.column("image").to_pylist()
    broken[123] = broken[123][: len(broken[123]) * 2 // 3]
    ds = datakiln.from_arrow(table.set_column(0, "image", pa.array(broken)))
    with pytest.raises(ImageDecodeError, match=r"cat/0123\.jpg \(row 123, column 'image'\).*truncated"):
        list(ds.loader(64, seed=0))


def test_mixed_sizes_need_a_size_or_a_crop():
    sizes = [(32, 32), (40, 28), (32, 32)]
    ds = datakiln.from_arrow(pa.table({"image": [_jpeg(i, h, w) for i, (h, w) in enumerate(sizes)]}))
    with pytest.raises(InvalidArgumentError, match=r"different sizes.*image_size="):
        next(iter(ds.loader(3, shuffle=False)))
    assert next(iter(ds.loader(3, image_size=24)))["image"].shape == (3, 24, 24, 3)
    with pytest.raises(InvalidArgumentError, match="end the transform with a crop"):
        next(iter(ds.loader(3, transform=Compose([Flip()]))))


def test_argument_errors(images):
    plain = datakiln.from_arrow(pa.table({"x": [1, 2, 3]}))
    with pytest.raises(InvalidArgumentError, match="need an image column"):
        plain.loader(2, transform=TRANSFORM)
    with pytest.raises(InvalidArgumentError, match="datakiln.augment op"):
        images.loader(2, transform=lambda batch: batch)
    with pytest.raises(InvalidArgumentError, match="format='numpy' or 'torch'"):
        images.loader(2, format="pandas")
    with pytest.raises(InvalidArgumentError, match="image_mode"):
        images.loader(2, image_mode="CMYK")
    with pytest.raises(MemoryBudgetError, match="lower batch_size"):
        images.loader(256, transform=TRANSFORM, memory_budget="1MB")


def test_the_dataset_layer_never_imports_augment():
    """augment sits above dataset: it registers its batch types with the loader instead."""
    import ast
    from pathlib import Path

    import datakiln.dataset

    for path in Path(datakiln.dataset.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.startswith("datakiln.augment") for n in names), path.name
