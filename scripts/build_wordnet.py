"""Build datakiln's WordNet synonym table from Debian's ``wordnet-base`` (Princeton WordNet 3.0).

Usage::

    apt-get install -y wordnet-base
    python scripts/build_wordnet.py [--wordnet /usr/share/wordnet] \
        [--out src/datakiln/data/wordnet_synonyms.tsv.gz]

The output is a gzip'd, sorted, tab-separated text file (no code, no pickle):

* ``syn<TAB>pos<TAB>lemma|lemma|...`` — one line per synset with at least two distinct
  lemmas (nouns ``n``, verbs ``v``, adjectives ``a`` incl. satellites, adverbs ``r``);
  lemmas are lower-cased, ``_`` becomes a space, adjective markers like ``(a)`` dropped;
* ``exc<TAB>pos<TAB>inflected<TAB>base`` — WordNet's morphological exceptions
  (``geese → goose``), so inflected words find their synsets as WordNet's own morphy does.

The licence text is copied beside it as ``WORDNET_LICENSE``. The gzip header carries no
time stamp, so the same WordNet gives the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
from pathlib import Path

POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
_MARKER = re.compile(r"\([a-z]+\)$")


def _lemma(word: str) -> str:
    return _MARKER.sub("", word).replace("_", " ").lower()


def read_synsets(data_file: Path) -> list[list[str]]:
    """Synsets of one ``data.<pos>`` file as lists of distinct lemmas (in file order)."""
    synsets = []
    with open(data_file, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("  "):  # the licence header
                continue
            fields = line.split(" ")
            count = int(fields[3], 16)
            words = [_lemma(fields[4 + 2 * i]) for i in range(count)]
            distinct = list(dict.fromkeys(words))
            if len(distinct) >= 2:
                synsets.append(distinct)
    return synsets


def read_exceptions(exc_file: Path) -> list[tuple[str, str]]:
    """``(inflected, base)`` pairs of one ``<pos>.exc`` file."""
    pairs = []
    with open(exc_file, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            fields = line.split()
            for base in fields[1:]:
                if base != fields[0]:
                    pairs.append((_lemma(fields[0]), _lemma(base)))
    return pairs


def build(wordnet: Path, out: Path) -> dict[str, int]:
    """Write the table to ``out`` (atomically) and the licence beside it; counts by kind."""
    lines, counts = [], {"synsets": 0, "exceptions": 0}
    for pos, name in POS_FILES.items():
        for synset in read_synsets(wordnet / f"data.{name}"):
            lines.append(f"syn\t{pos}\t{'|'.join(synset)}")
            counts["synsets"] += 1
        exc = wordnet / f"{name}.exc"
        if exc.exists():
            for inflected, base in read_exceptions(exc):
                lines.append(f"exc\t{pos}\t{inflected}\t{base}")
                counts["exceptions"] += 1
    payload = ("\n".join(sorted(set(lines))) + "\n").encode("utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0,
                                              filename="") as handle:
        handle.write(payload)
    tmp.replace(out)
    licence = Path("/usr/share/doc/wordnet-base/copyright")
    if licence.exists():
        shutil.copyfile(licence, out.parent / "WORDNET_LICENSE")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    default_out = Path(__file__).resolve().parents[1] / "src/datakiln/data/wordnet_synonyms.tsv.gz"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    if not (args.wordnet / "data.noun").exists():
        raise SystemExit(f"no WordNet data in {args.wordnet}: apt-get install -y wordnet-base")
    counts = build(args.wordnet, args.out)
    print(f"{args.out}: {counts['synsets']:,} synsets, {counts['exceptions']:,} exceptions, "
          f"{args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
