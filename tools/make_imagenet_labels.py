#!/usr/bin/env python3
"""Write the built-in ImageNet label tables (Sources/ViTKit/Resources/labels/), exactly as timm names the classes
(timm.data.ImageNetInfo(subset).index_to_description, from timm's packaged synset and lemma lists), for checkpoints
whose config has no label names. timm picks the list from the class count (timm.data.infer_imagenet_subset); so
does vitclassify:

    1000   imagenet-1k.txt          ImageNet-1k (index 0 = "tench, Tinca tinca"; "crane" is both 134 and 517)
    21843  imagenet-21k.txt         Google's ImageNet-21k (fall11), e.g. timm's *.augreg_in21k ViTs
    11821  imagenet-12k.indices     timm's ImageNet-12k subset, e.g. *.in12k models
    11221  imagenet-21k-miil.indices  ImageNet-21K-P (MIIL, fall11), e.g. *.miil_in21k models

Names are one per line; the two subsets are stored as indices into the 21k list, one per line (every one of their
synsets is in it).

    .venv-tools/bin/python tools/make_imagenet_labels.py [--out Sources/ViTKit/Resources/labels]
"""

import argparse
import os

from timm.data import ImageNetInfo


def names(info, count):
    assert info.num_classes() == count
    out = [info.index_to_description(i) for i in range(count)]
    for name in out:
        assert name and "\n" not in name and name == name.strip(), name
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="Sources/ViTKit/Resources/labels")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    def write(name, lines):
        with open(os.path.join(args.out, name), "w") as f:
            f.write("\n".join(map(str, lines)) + "\n")

    in1k = names(ImageNetInfo(), 1000)
    assert in1k[0] == "tench, Tinca tinca"
    write("imagenet-1k.txt", in1k)
    full = ImageNetInfo("imagenet-21k-goog")
    write("imagenet-21k.txt", names(full, 21843))
    position = {full.index_to_label_name(i): i for i in range(21843)}
    for subset, count, file in [("imagenet-12k", 11821, "imagenet-12k.indices"),
                                ("imagenet-21k-miil", 11221, "imagenet-21k-miil.indices")]:
        info = ImageNetInfo(subset)
        indices = [position[info.index_to_label_name(i)] for i in range(count)]
        assert all(full.index_to_description(j) == info.index_to_description(i) for i, j in enumerate(indices))
        write(file, indices)


if __name__ == "__main__":
    main()
