"""faceindex calibrate and stats on the fake backends: what is supported is stored, what
is not is refused with its reason, and the gallery's decision follows."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import Run

from faceindex.testing.synthetic import synthetic_photo_bytes


def _people(root: Path, people: int, photos: int) -> Path:
    for person in range(1, people + 1):
        folder = root / f"person{person:03d}"
        folder.mkdir(parents=True)
        for variant in range(photos):
            (folder / f"{variant}.png").write_bytes(
                synthetic_photo_bytes([person], variant=variant, size=(200, 200))
            )
    return root


@pytest.mark.slow  # about a second: the fast tier stays fast
def test_too_few_trials_are_refused_not_guessed(cli: Run, tmp_path: Path) -> None:
    folder = _people(tmp_path / "few", people=12, photos=4)
    r = cli("calibrate", str(folder), "--dry-run", "--json")
    assert r.code == 0, r.err
    out = r.json
    assert (out["people"], out["photos"], out["genuine_pairs"], out["impostor_pairs"]) == (
        12,
        48,
        72,
        1056,
    )
    assert out["threshold"] is None and out["tail"] is None and out["genuine"] is None
    assert len(out["refused"]) == 3 and "needs 3000" in out["refused"][0]
    assert out["stored"] is False
    # A looser target that 1056 impostor pairs do support (3/0.01 = 300) is granted.
    r = cli("calibrate", str(folder), "--target-fmr", "0.01", "--json")
    assert r.json["threshold"] is not None and r.json["stored"] is True
    assert len(r.json["refused"]) == 2
    text = cli("calibrate", str(folder), "--target-fmr", "0.01", "--dry-run").out
    assert "verification threshold" in text and "not stored (--dry-run)" in text


@pytest.mark.slow  # calibrates on 150 synthetic photos (seconds)
def test_calibration_is_stored_and_sets_the_decision(cli: Run, tmp_path: Path) -> None:
    folder = _people(tmp_path / "many", people=50, photos=3)
    assert cli("stats", "--json").code == 6  # no gallery yet: stats only reads one
    assert cli("enroll", "P1", folder / "person001" / "0.png").code == 0
    before = cli("stats", "--json").json
    assert before["threshold_rule"] == "fixed" and before["expected_fpir"] is None
    r = cli("calibrate", str(folder), "--enrol", "1", "--json")
    assert r.code == 0, r.err
    cal = r.json
    assert cal["refused"] == [] and cal["stored"] is True
    assert cal["impostor_person_scores"] == 100 * 49 and cal["genuine_person_scores"] == 100
    assert 0.0 < cal["threshold"] < 1.0 and cal["tail"]["beta"] > 0
    assert cal["eer"] == 0.0  # the fake embedder separates synthetic people perfectly

    after = cli("stats", "--json").json
    assert after["threshold_rule"] == "size-aware"
    assert after["expected_fpir"] is not None and after["expected_fnir"] is not None
    assert after["expected_fpir"] <= 0.01 + 1e-9  # the target it was set for
    assert after["threshold"] >= round(cal["threshold"], 6)  # never below the 1:1 threshold
    events = cli("audit", "--action", "calibrate", "--json").lines
    assert len(events) == 1

    assert cli("calibrate", "--reset").code == 0
    assert cli("stats", "--json").json["threshold_rule"] == "fixed"


def test_calibrate_usage_errors(cli: Run, tmp_path: Path) -> None:
    assert cli("calibrate").code == 2
    assert cli("calibrate", str(tmp_path), "--reset").code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("calibrate", str(empty))
    assert r.code == 3 and "at least two people" in r.err
    r = cli("calibrate", str(_people(tmp_path / "two", 2, 2)), "--target-fmr", "2")
    assert r.code == 3
