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
