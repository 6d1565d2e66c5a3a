"""Image synthesizers measured: ConditionalGAN vs ConvVAE on real images, judged by
datakiln's image evaluation against a real holdout.

    python benchmarks/image_synth.py --data mnist --train-images 6000 --gan-epochs 8
    python benchmarks/image_synth.py --data cifar  # ../shared/datasets/cifar10_jpg_subset train / val

Prints one table (fit seconds, feature Fréchet distance with its 95% bootstrap interval, KID,
precision, recall, class fidelity by an independent real-trained classifier, the share of
generated images closer to a training image than the holdout's 5th percentile, in pixels and
features) with the real holdout as the reference row, and a last line with the GAN's Fréchet
distance relative to the VAE's (the peer measured in the same run). Feature-space values are
not comparable to published Inception FIDs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"


def _mnist(split: str, limit: int) -> pa.Table:
    import datakiln

    prefix = "train" if split == "train" else "t10k"
    ds = datakiln.read(
        str(SHARED / "mnist" / f"{prefix}-images-idx3-ubyte.gz"),
        labels=str(SHARED / "mnist" / f"{prefix}-labels-idx1-ubyte.gz"),
    )
    return ds.to_arrow().slice(0, limit)


def _cifar(split: str, limit: int) -> pa.Table:
    import datakiln

    table = datakiln.read_images(
        SHARED / "cifar10_jpg_subset" / ("train" if split == "train" else "val")
    ).to_arrow()
    keep = np.sort(np.random.default_rng(0).permutation(table.num_rows)[:limit])
    return table.take(pa.array(keep)).select(["image", "label"])


def _resized(table: pa.Table, size: int) -> pa.Table:
    from datakiln.synth.images._data import images_to_arrays, labels_table

    arrays = images_to_arrays(table, size=size)
    return labels_table(arrays.pixels, arrays.codes, arrays.classes, arrays.label_type)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=["mnist", "cifar"], default="mnist")
    parser.add_argument("--train-images", type=int, default=6000)
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--gan-epochs", type=int, default=8)
    parser.add_argument("--vae-epochs", type=int, default=15)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--gan-lr", type=float, default=5e-4)
    parser.add_argument("--per-class", type=int, default=200, help="generated images per class")
    parser.add_argument("--classifier-epochs", type=int, default=6)
    parser.add_argument("--image-size", type=int, default=None, help="resize first (default: as stored)")
    parser.add_argument("--gan-batch", type=int, default=64)
    parser.add_argument("--latent", type=int, default=128)
    parser.add_argument("--diffaugment", default="color,translation,cutout")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    from datakiln.evaluation.images import evaluate_images
    from datakiln.synth.images import ConditionalGAN, ConvVAE
    from datakiln.synth.images._training import default_threads

    load = _mnist if args.data == "mnist" else _cifar
    train, test = load("train", args.train_images), load("test", args.test_images)
    print(
        f"{args.data}: {train.num_rows:,} training images, {test.num_rows:,} holdout images, "
        f"{default_threads()} torch thread(s)",
        flush=True,
    )
    rows = []
    judge = None
    common = {
        "early_stopping": False,
        "image_size": args.image_size,
        "threads": args.threads,
        "width": args.width,
    }
    models = (
        (
            "ConditionalGAN",
            ConditionalGAN(
                epochs=args.gan_epochs,
                lr=args.gan_lr,
                batch_size=args.gan_batch,
                latent_dim=args.latent,
                diffaugment=args.diffaugment,
                **common,
            ),
        ),
        ("ConvVAE", ConvVAE(epochs=args.vae_epochs, sigma=1.0 if args.data == "mnist" else 0.3, **common)),
    )
    if args.image_size is not None:
        train, test = _resized(train, args.image_size), _resized(test, args.image_size)
    for name, model in models:
        started = time.perf_counter()
        model.fit(
            train,
            on_epoch=lambda r, n=name: print(
                f"  {n} epoch {r.epoch}: "
                + ", ".join(f"{k} {v:.3g}" for k, v in r.losses.items())
                + f" ({r.seconds:.0f} s)",
                flush=True,
            ),
        )
        seconds = time.perf_counter() - started
        codes = np.repeat(np.arange(len(model.classes_)), args.per_class)
        from datakiln.synth.images._data import labels_table

        pixels = model._generate(codes, np.random.default_rng(1))
        generated = labels_table(pixels, codes, model.classes_, model.label_type_)
        report = evaluate_images(
            train, generated, holdout=test, classifier=judge, seed=0, classifier_epochs=args.classifier_epochs
        )
        judge = report.classifier  # one judge for both models
        rows.append((name, seconds, report))
    print()
    header = (
        f"{'model':<16}{'fit s':>8}{'FD (95% CI)':>24}{'KID':>9}{'prec':>7}{'recall':>7}{'class fid.':>11}"
        f"{'mem px':>8}{'mem feat':>9}{'copies px':>10}"
    )
    print(header)
    for name, seconds, report in rows:
        m = report.measures
        fd = m["frechet_distance"]
        print(
            f"{name:<16}{seconds:>8.0f}{fd['value']:>10.2f} "
            f"[{fd['interval'][0]:.2f}, {fd['interval'][1]:.2f}]"
            f"{m['kid']['value']:>9.3f}{m['precision_recall']['precision']:>7.2f}{m['precision_recall']['recall']:>7.2f}"
            f"{m['class_fidelity']['accuracy']:>11.1%}{m['memorisation']['pixel']['share_below']:>8.1%}"
            f"{m['memorisation']['feature']['share_below']:>9.1%}"
            f"{m['memorisation']['pixel']['share_below_and_singular']:>10.1%}"
        )
    m = rows[0][2].measures
    fd = m["frechet_distance_holdout"]
    print(
        f"{'real holdout':<16}{'':>8}{fd['value']:>10.2f} [{fd['interval'][0]:.2f}, {fd['interval'][1]:.2f}]"
        f"{m['kid_holdout']['value']:>9.3f}{m['precision_recall_holdout']['precision']:>7.2f}"
        f"{m['precision_recall_holdout']['recall']:>7.2f}{m['classifier_holdout_accuracy']['value']:>11.1%}"
        f"{'5.0%':>8}{'5.0%':>9}"
    )
    gan, vae = (
        rows[0][2].measures["frechet_distance"]["value"],
        rows[1][2].measures["frechet_distance"]["value"],
    )
    print(
        f"headline: ConditionalGAN feature FD {gan:.2f} vs ConvVAE {vae:.2f} (ratio {gan / vae:.2f}; "
        f"lower is better), class fidelity {rows[0][2].measures['class_fidelity']['accuracy']:.1%} vs "
        f"{rows[1][2].measures['class_fidelity']['accuracy']:.1%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
