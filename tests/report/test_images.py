"""Image grids: exact tiling, captions, comparison pairs, PNG round trip, HTML data URIs."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from datakiln.errors import InvalidArgumentError
from datakiln.report.images import (
    comparison_grid,
    html_figure,
    image_grid,
    to_png,
    to_uint8_rgb,
)


def _images(n: int, h: int = 8, w: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_grid_places_every_image_pixel_for_pixel():
    images = _images(5, 6, 10)
    grid = image_grid(images, columns=3, scale=1, padding=2, background=255)
    # 2 rows of (6 + 2) + 2, 3 columns of (10 + 2) + 2
    assert grid.shape == (2 * 8 + 2, 3 * 12 + 2, 3) and grid.dtype == np.uint8
    for index, image in enumerate(images):
        row, column = divmod(index, 3)
        top, left = 2 + row * 8, 2 + column * 12
        assert np.array_equal(grid[top:top + 6, left:left + 10], image)
    assert (grid[:2] == 255).all() and (grid[:, :2] == 255).all()
    assert (grid[10:16, 26:36] == 255).all()  # the sixth cell is empty


def test_default_scale_enlarges_small_images_to_64_pixels_by_nearest_neighbour():
    images = _images(4, 32, 32)
    grid = image_grid(images, padding=0)
    assert grid.shape == (128, 128, 3)  # 2 × 2 cells of 64 px: scale 2
    assert np.array_equal(grid[:64:2, :64:2], images[0])
    assert np.array_equal(grid[1:64:2, 1:64:2], images[0])
    assert image_grid(_images(1, 100, 20), padding=0).shape == (100, 20, 3)  # already large: scale 1


def test_mixed_sizes_sit_top_left_in_cells_of_the_largest():
    small, large = _images(1, 4, 6)[0], _images(1, 10, 8, seed=1)[0]
    grid = image_grid([small, large], columns=2, scale=1, padding=1, background=0)
    assert grid.shape == (12, 1 + 2 * 9, 3)
    assert np.array_equal(grid[1:5, 1:7], small)
    assert (grid[5:11, 1:9] == 0).all()  # the rest of the small image's cell is background
    assert np.array_equal(grid[1:11, 10:18], large)


def test_captions_are_drawn_under_their_cell_only():
    images = np.full((3, 16, 16, 3), 200, dtype=np.uint8)
    plain = image_grid(images, columns=3, scale=4, padding=2)
    captioned = image_grid(images, columns=3, scale=4, padding=2, labels=["cat", None, "dog"])
    assert captioned.shape[0] == plain.shape[0] + 14  # one caption strip
    strip = captioned[2 + 64:2 + 64 + 14]
    cells = [strip[:, 2 + i * 66:2 + i * 66 + 64] for i in range(3)]
    assert (cells[0] < 128).any() and (cells[2] < 128).any()  # dark text
    assert (cells[1] == 255).all()  # no label, no ink
    assert np.array_equal(captioned[2:66, 2:66], images[0].repeat(4, 0).repeat(4, 1))


def test_long_captions_are_cut_to_their_cell():
    grid = image_grid(_images(2, 32, 32), columns=2, padding=2, labels=["x" * 200, ""])
    second_cell = grid[2 + 64:, 2 + 66:]
    assert (second_cell == 255).all()  # the long first caption did not spill over


def test_to_uint8_rgb_layouts_and_floats():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(to_uint8_rgb(grey), np.repeat(grey[:, :, None], 3, axis=2))
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 255
    assert to_uint8_rgb(rgba).shape == (2, 2, 3)
    chw = np.random.default_rng(0).integers(0, 256, (3, 5, 7), dtype=np.uint8)
    assert np.array_equal(to_uint8_rgb(chw), chw.transpose(1, 2, 0))
    unit = np.array([[[0.0, 0.5, 1.0]]])
    assert to_uint8_rgb(unit).tolist() == [[[0, 128, 255]]]
    normalised = np.array([[[-2.0, 0.0, 2.0]]])  # stretched from its own range
    assert to_uint8_rgb(normalised).tolist() == [[[0, 128, 255]]]
    with pytest.raises(InvalidArgumentError, match=r"shape \(2, 2, 5\)"):
        to_uint8_rgb(np.zeros((2, 2, 5)))


def test_comparison_grid_puts_each_augmented_image_beside_its_original():
    originals = _images(3, 32, 32)
    flipped = originals[:, :, ::-1]
    grid = comparison_grid(originals, flipped, pairs_per_row=3, gap=1, padding=4)
    # scale 2 (64 px): a pair is 64 + 1 + 64 wide; three pairs with 4 px padding
    assert grid.shape == (4 + 64 + 4, 4 + 3 * (129 + 4), 3)
    for index in range(3):
        left = 4 + index * 133
        assert np.array_equal(grid[4:68:2, left:left + 64:2], originals[index])
        assert (grid[4:68, left + 64] == 160).all()  # the grey gap
        assert np.array_equal(grid[4:68:2, left + 65:left + 129:2], flipped[index])


def test_comparison_grid_with_crops_and_labels():
    originals = _images(4, 40, 40)
    crops = originals[:, 4:36, 4:36]
    grid = comparison_grid(originals, crops, labels=["a", "b", "c", "d"], pairs_per_row=4, scale=2)
    assert grid.dtype == np.uint8 and grid.shape == (4 + 80 + 14 + 4, 4 + 4 * (161 + 4), 3)
    left = 4 + 165  # the second pair: its crop (64 px shown) sits top-left in an 80 px cell
    assert np.array_equal(grid[4:68:2, left + 81:left + 145:2], crops[1])
    assert (grid[4:84, left + 80] == 160).all()  # the grey line between the two
    assert (grid[68:84, left + 81:left + 161] == 255).all()  # the rest of the crop's cell is white
    with pytest.raises(InvalidArgumentError, match="3 originals, 2 augmented"):
        comparison_grid(originals[:3], crops[:2])


def test_grid_rejects_bad_arguments_by_name():
    with pytest.raises(InvalidArgumentError, match="at least one image"):
        image_grid([])
    with pytest.raises(InvalidArgumentError, match="2 images, 1 labels"):
        image_grid(_images(2), labels=["a"])
    with pytest.raises(InvalidArgumentError, match="columns"):
        image_grid(_images(2), columns=0)


def test_png_round_trip_is_lossless():
    grid = image_grid(_images(6, 9, 9), labels=list("abcdef"))
    decoded = np.asarray(Image.open(io.BytesIO(to_png(grid))))
    assert np.array_equal(decoded, grid)


def test_html_figure_embeds_the_png_and_escapes_the_caption():
    grid = image_grid(_images(2, 8, 8), scale=1)
    fragment = html_figure(grid, caption="real <b>&</b> generated", max_width=300)
    match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', fragment)
    assert match is not None
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(base64.b64decode(match.group(1))))), grid)
    assert "real &lt;b&gt;&amp;&lt;/b&gt; generated" in fragment and "<b>" not in fragment
    assert "width:300px" in fragment and fragment.startswith("<figure")
    assert html_figure(to_png(grid)).count("<figcaption") == 0
    with pytest.raises(InvalidArgumentError, match="not a PNG"):
        html_figure(b"GIF89a...")
