"""Op strings (``kiln augment --ops``): every op name, values, errors, and a property test."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datakiln.augment import (
    Affine,
    CenterCrop,
    ColorJitter,
    Compose,
    CutMix,
    GaussianBlur,
    GaussianNoise,
    Grayscale,
    HorizontalFlip,
    MixUp,
    Normalize,
    RandomApply,
    RandomCrop,
    RandomErasing,
    RandomResizedCrop,
    Resize,
    Rotate,
    VerticalFlip,
    parse_ops,
)
from datakiln.augment.base import ImageBatch
from datakiln.augment.spec import OPS
from datakiln.errors import InvalidArgumentError


def test_the_issue_example():
    pipe = parse_ops("crop:32,padding=4; flip; jitter:0.4")
    assert isinstance(pipe, Compose)
    crop, flip, jitter = pipe.ops
    assert isinstance(crop, RandomCrop) and crop.size == (32, 32) and crop.padding == (4, 4, 4, 4)
    assert isinstance(flip, HorizontalFlip) and flip.p == 0.5
    assert isinstance(jitter, ColorJitter)
    assert jitter.brightness == jitter.contrast == jitter.saturation == (0.6, 1.4)
    assert jitter.hue == (0.0, 0.0)
    images = np.zeros((5, 32, 32, 3), np.uint8)
    out = pipe(ImageBatch(images=images, row_ids=np.arange(5)))
    assert out.images.shape == (5, 32, 32, 3)


@pytest.mark.parametrize(("text", "cls"), [
    ("crop:24", RandomCrop), ("rrc:224", RandomResizedCrop), ("resized_crop:64", RandomResizedCrop),
    ("resize:16", Resize), ("center_crop:8", CenterCrop), ("flip", HorizontalFlip),
    ("hflip:p=1", HorizontalFlip), ("vflip", VerticalFlip), ("rotate:15", Rotate),
    ("affine:degrees=10", Affine), ("jitter:0.2,0.3,0.4,0.1", ColorJitter), ("gray:0.2", Grayscale),
    ("grayscale", Grayscale), ("noise:8", GaussianNoise), ("blur:5", GaussianBlur),
    ("erase", RandomErasing), ("cutout:p=1", RandomErasing), ("normalize", Normalize),
    ("mixup:0.4", MixUp), ("cutmix", CutMix),
])
def test_every_op_name(text, cls):
    (op,) = parse_ops(text).ops
    assert type(op) is cls


def test_every_name_in_the_table_builds():
    needs_value = {"crop", "rrc", "resized_crop", "resize", "center_crop", "noise", "blur", "rotate"}
    for name in OPS:
        text = f"{name}:3" if name in needs_value else name
        assert len(parse_ops(text).ops) == 1, name


def test_values_keywords_tuples_and_shorthands():
    jitter, rrc, erase, blur, norm, crop = parse_ops(
        "JITTER:0.1,0.2,0.3,hue=0.05 ; rrc:224,scale=(0.08,1),ratio=[0.75, 1.333];"
        " erase:p=1.0,value=(1,2,3); blur:5,sigma=0.5,p=0.3; normalize:mean=(0.5,0.5,0.5),"
        "std=(0.2,0.2,0.2),scale=none; crop:32x24,pad_if_needed=true").ops
    assert jitter.brightness == (0.9, 1.1) and jitter.saturation == (0.7, 1.3)
    assert jitter.hue == (-0.05, 0.05)
    assert rrc.size == (224, 224) and tuple(rrc.scale) == (0.08, 1.0) and tuple(rrc.ratio) == (0.75, 1.333)
    assert erase.p == 1.0 and erase.value == (1, 2, 3)
    assert isinstance(blur, RandomApply) and blur.p == 0.3 and blur.op.sigma == (0.5, 0.5)
    assert norm.mean == (0.5, 0.5, 0.5) and norm.scale is None
    assert crop.size == (32, 24) and crop.pad_if_needed is True
    assert parse_ops("flip;;vflip;").ops[1].p == 0.5  # empty ops are ignored


@pytest.mark.parametrize(("text", "message"), [
    ("crop:32; spin:3", "unknown op 'spin'; valid ops: affine, blur, center_crop"),
    ("flip:q=0.5", "HorizontalFlip has no argument 'q'; valid: p"),
    ("blur:5,radius=2", "GaussianBlur has no argument 'radius'; valid: kernel_size, sigma, p"),
    ("jitter:0.1,0.1,0.1,0.1,auto,0", "at most 5 values"),
    ("crop:p=0.5,32", "positional value"),
    ("blur:5,kernel_size=3", "kernel_size given twice"),
    ("noise:std=@", "cannot read the value"),
    ("erase:scale=(0.1,0.2", "unbalanced"),
    ("jitter:hue=0.9", "hue must be in"),
    ("blur:4", "odd"),
    ("", "at least one op"),
    (" ; ", "at least one op"),
])
def test_errors_name_the_op_and_the_valid_choices(text, message):
    with pytest.raises(InvalidArgumentError, match=None) as info:
        parse_ops(text)
    assert message in str(info.value)


def test_an_error_names_the_op_position():
    with pytest.raises(InvalidArgumentError, match=r"op 2 \('blur:4'\)"):
        parse_ops("flip; blur:4")


_names = st.sampled_from(sorted(OPS))
_junk = st.text(alphabet=st.sampled_from(list("abcxyz0123456789.,;:=()[]-+ _eE")), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_junk, st.builds(lambda n, rest: f"{n}:{rest}", _names, _junk)))
def test_any_text_gives_a_pipeline_or_a_clear_error(text):
    try:
        pipe = parse_ops(text)
    except InvalidArgumentError as exc:
        assert str(exc)
    else:
        assert isinstance(pipe, Compose) and pipe.ops


@settings(max_examples=100, deadline=None)
@given(st.floats(0, 5, allow_nan=False), st.floats(0, 0.5), st.integers(1, 30))
def test_numbers_round_trip(strength, hue, size):
    jitter, crop = parse_ops(f"jitter:{strength!r},hue={hue!r}; crop:{size}").ops
    assert jitter.brightness == (max(0.0, 1 - strength), 1 + strength)
    assert jitter.hue == (-hue, hue)
    assert crop.size == (size, size)
