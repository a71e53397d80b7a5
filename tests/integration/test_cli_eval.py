"""`faceindex eval pairs|gallery` on a small folder tree made from the fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from faceindex.cli.main import main


@pytest.fixture()
def tree(tmp_path: Path, fixtures_dir: Path) -> Path:
    root = tmp_path / "people"
    people = {
        "obama": ["obama.jpg", "obama2.jpg", "obama3.jpg"],
        "biden": ["biden.jpg"],
        "alex": ["alex-lacamoire.png"],
        "lin": ["lin-manuel-miranda.png"],
    }
    for person, names in people.items():
        (root / person).mkdir(parents=True)
        for name in names:
            shutil.copy(fixtures_dir / name, root / person / name)
            mirrored = ImageOps.mirror(Image.open(fixtures_dir / name).convert("RGB"))
            mirrored.save(root / person / f"m-{Path(name).stem}.jpg")
    (root / "pairs.csv").write_text(
        "a,b,same\n"
        "obama/obama.jpg,obama/obama2.jpg,1\n"
        "obama/obama.jpg,obama/obama3.jpg,1\n"
        "biden/biden.jpg,biden/m-biden.jpg,1\n"
        "obama/obama.jpg,biden/biden.jpg,0\n"
        "alex/alex-lacamoire.png,lin/lin-manuel-miranda.png,0\n"
        "obama/obama2.jpg,lin/lin-manuel-miranda.png,0\n"
    )
    (root / "groups.json").write_text(
        json.dumps({"obama": "M", "biden": "M", "alex": "M", "lin": "M"})
    )
    return root


def test_eval_pairs_writes_report(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code = main(
        [
            "eval",
            "pairs",
            str(tree / "pairs.csv"),
            "--groups",
            str(tree / "groups.json"),
            "--out",
            str(out),
            "--json",
            "-v",
        ]
    )
    stdout, stderr = capsys.readouterr()
    assert code == 0
    result = json.loads(stdout)  # one JSON document: progress went to stderr
    assert "embedding: " in stderr and " photos (100%) in " in stderr
    v = result["verification"]
    assert v["n_genuine"] == 3 and v["n_impostor"] == 3
    assert v["auc"] == 1.0 and v["eer"] == 0.0
    assert v["at_threshold"]["fmr"] == 0.0 and v["at_threshold"]["fnmr"] == 0.0
    assert {p.name for p in out.iterdir()} >= {
        "roc.png",
        "det.png",
        "scores.png",
        "report.html",
        "report.json",
    }
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html
    # 3 impostor trials cannot measure an FMR of 0.001: no threshold is recommended for it
    assert main(["eval", "pairs", str(tree / "pairs.csv"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "recommended threshold" not in text
    assert "no threshold recommended for FMR 0.001: it needs at least 1000 impostor " in text


def test_eval_gallery_human_summary(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "eval",
            "gallery",
            str(tree),
            "--enrol",
            "2",
            "--unknown-fraction",
            "0.25",
            "--out",
            str(tmp_path / "g"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "identification (mean-top2): rank-1" in out
    assert (tmp_path / "g" / "cmc.png").is_file()
    summary = json.loads((tmp_path / "g" / "report.json").read_text())
    assert summary["identification"]["n_nonmated"] >= 2


def test_eval_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "pairs", str(tmp_path / "none.csv")]) == 6
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\nx.jpg,y.jpg\n")  # no `same` column
    assert main(["eval", "pairs", str(bad)]) == 3
    capsys.readouterr()


def test_eval_groups_auto(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--groups auto``: groups from the attribute models, said to be estimated."""
    out = tmp_path / "auto"
    argv = ["eval", "gallery", str(tree), "--enrol", "2", "--groups", "auto", "--out", str(out)]
    assert main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["groups_estimated"] is True
    est = result["group_estimation"]
    assert est["unit"] == "person" and est["faces_per_person"] == 10
    assert "carry the models' own errors" in est["caveat"]
    gender = est["groupings"]["gender"]
    # four men (public figures): the gender model reads each person's photos as M
    assert gender["counts"] == {"M": 4} and gender["undecided"] == []
    assert set(est["groupings"]["age"]["assigned"]) == {"obama", "biden", "alex", "lin"}
    assert [g["grouping"] for g in result["more_groups"]] == ["age"]
    assert {g["group"] for g in result["groups"]["groups"]} == {"M"}
    page = (out / "report.html").read_text()
    assert "Groups: ESTIMATED, not labels" in page
    assert json.loads((out / "report.json").read_text())["groups_estimated"] is True
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "groups ESTIMATED per person: " in text and "estimated apparent-age band" in text

    # pairs: per person (the paths have person folders), or per photo when asked
    pairs = ["eval", "pairs", str(tree / "pairs.csv"), "--groups", "auto", "--out", str(out)]
    assert main([*pairs, "--json"]) == 0
    est = json.loads(capsys.readouterr().out)["group_estimation"]
    assert est["unit"] == "person" and set(est["groupings"]["gender"]["assigned"]) == {
        "obama",
        "biden",
        "alex",
        "lin",
    }
    assert main([*pairs, "--json", "--group-unit", "photo"]) == 0
    est = json.loads(capsys.readouterr().out)["group_estimation"]
    assert est["unit"] == "photo" and "obama/obama.jpg" in est["groupings"]["gender"]["assigned"]
    assert main(["eval", "pairs", str(tree / "pairs.csv"), "--group-unit", "photo"]) == 2
