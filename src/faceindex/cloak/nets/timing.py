"""Time one cloak step per net: photo -> chip -> net -> similarity -> gradient on the photo.

``python -m faceindex.cloak.nets.timing PHOTO [--threads N] [--repeats R]`` prints, for each
torch embedder, the median over ``R`` runs (after two warm-up runs) of a forward and
backward pass for the photo's largest face, and the machine's load average before and
after, because on a shared machine the figures move with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)

    import torch

    from faceindex.cloak.nets import image_tensor, load_torch_embedders
    from faceindex.io.image import load_image
    from faceindex.pipeline import Pipeline

    torch.set_num_threads(args.threads)
    image = load_image(args.photo)
    faces = Pipeline.from_settings().find_faces(image)
    if not faces:
        raise SystemExit(f"no face in {args.photo}")
    print(f"threads {args.threads}, load average {os.getloadavg()}")
    for emb in load_torch_embedders():
        matrix = emb.chip_matrix(image, faces[0])
        with torch.no_grad():
            clean = emb.embed(image_tensor(image), [matrix])
        forward, total = [], []
        for _ in range(args.repeats + 2):
            x = image_tensor(image).requires_grad_(True)
            start = time.perf_counter()
            similarity = (emb.embed(x, [matrix]) * clean).sum()
            mid = time.perf_counter()
            torch.autograd.grad(similarity, x)
            total.append(time.perf_counter() - start)
            forward.append(mid - start)
        print(
            f"{emb.model_id}: forward {1000 * statistics.median(forward[2:]):.1f} ms, "
            f"forward+backward {1000 * statistics.median(total[2:]):.1f} ms a face"
        )
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
