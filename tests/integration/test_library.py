"""The photo library on real models and the fixture photos: Obama's photos cluster
together, and once the cluster is named, later photos of him are recognised."""

from __future__ import annotations

import shutil
from pathlib import Path

from faceindex.gallery import open_gallery
from faceindex.library import PhotoLibrary
from faceindex.pipeline import Pipeline

OBAMA = ("obama.jpg", "obama2.jpg", "obama3.jpg")
OTHERS = ("biden.jpg", "alex-lacamoire.png", "lin-manuel-miranda.png", "two_people.jpg")


def test_obama_clusters_together_and_naming_him_makes_later_photos_identify(
    pipeline: Pipeline, fixtures_dir: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    (photos / "trip").mkdir(parents=True)
    for name in OBAMA[:2] + OTHERS:
        shutil.copy(fixtures_dir / name, photos / name)
    shutil.copy(fixtures_dir / OBAMA[2], photos / "trip" / OBAMA[2])
    with (
        open_gallery(tmp_path / "g.db", pipeline=pipeline) as gallery,
        PhotoLibrary(gallery) as library,
    ):
        report = library.scan([photos])
        assert (report.new, report.errors, report.faces) == (7, 0, 8)
        listing = library.clusters()
        by_photo = {Path(f.path).name: c.id for c in listing.clusters for f in c.faces}
        obama = by_photo["obama.jpg"]
        # all three Obama photos, and Obama in the two-people photo, in one cluster
        assert by_photo["obama2.jpg"] == by_photo["obama3.jpg"] == obama
        (cluster,) = [c for c in listing.clusters if c.id == obama]
        assert sorted(Path(f.path).name for f in cluster.faces) == sorted(
            (*OBAMA, "two_people.jpg")
        )
        assert by_photo.get("biden.jpg") != obama
        assert by_photo.get("alex-lacamoire.png") != obama
        person = library.name(obama, "Barack Obama")
        assert person.templates >= 3

        shutil.copy(fixtures_dir / "obama_small.jpg", photos / "later.jpg")
        again = library.scan([photos])
        assert (again.new, again.unchanged, again.recognised) == (1, 7, 1)
        shown = {Path(p).name for p in library.photos_of([person.id])}
        assert shown == set(OBAMA) | {"two_people.jpg", "later.jpg"}
        assert gallery.identify(fixtures_dir / "obama2.jpg")[0].person is not None
