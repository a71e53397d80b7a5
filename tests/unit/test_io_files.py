"""The shared readers: photo suffixes, the person-folder walker, the pairs CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceindex.errors import InvalidInputError, NotFoundError
from faceindex.io.files import IMAGE_SUFFIXES, is_image_file, person_folders, photos_in
from faceindex.io.pairs import Pair, read_pairs


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- files


def test_image_suffixes_are_the_union_accepted_before() -> None:
    assert IMAGE_SUFFIXES == {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.jpg", True),
        ("a.JPG", True),
        ("dir.d/a.JpEg", True),
        ("a.png", True),
        ("a.gif", True),
        ("a.tif", True),
        ("a.webp", True),
        ("a.mp4", False),
        ("a.avi", False),
        ("a.jpg.txt", False),
        ("jpg", False),
        ("a", False),
        (".jpg", False),  # a dot-file named ".jpg" has no suffix
    ],
)
def test_is_image_file_by_name_only(name: str, expected: bool, tmp_path: Path) -> None:
    assert is_image_file(name) is expected
    assert is_image_file(tmp_path / "does-not-exist" / name) is expected


def test_person_folders(tmp_path: Path) -> None:
    root = tmp_path / "people"
    touch(root / "bob" / "2.png")
    touch(root / "bob" / "1.JPG")
    touch(root / "bob" / "notes.txt")
    touch(root / "bob" / "._1.jpg")  # macOS resource fork: hidden, skipped
    touch(root / "bob" / "nested" / "3.jpg")  # not searched
    touch(root / "ann" / "a.webp")
    touch(root / "empty" / "readme.md")  # no photo: left out
    touch(root / ".trash" / "x.jpg")  # hidden folder: left out
    touch(root / "loose.jpg")  # a file at the top is nobody's
    (root / "folder.jpg").mkdir()  # a folder with an image suffix is a person, not a photo
    touch(root / "folder.jpg" / "f.gif")
    assert person_folders(root) == [
        ("ann", [root / "ann" / "a.webp"]),
        ("bob", [root / "bob" / "1.JPG", root / "bob" / "2.png"]),
        ("folder.jpg", [root / "folder.jpg" / "f.gif"]),
    ]
    assert person_folders(str(root))[0][0] == "ann"
    assert photos_in(root / "bob") == [root / "bob" / "1.JPG", root / "bob" / "2.png"]


def test_person_folders_empty_and_missing(tmp_path: Path) -> None:
    assert person_folders(tmp_path) == []
    with pytest.raises(NotFoundError, match="no such folder"):
        person_folders(tmp_path / "nope")
    with pytest.raises(NotFoundError):
        person_folders(touch(tmp_path / "file.jpg"))


# ---------------------------------------------------------------- pairs


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


def test_read_pairs_unlabelled(tmp_path: Path) -> None:
    p = write(tmp_path / "d" / "p.csv", " A , b ,note\nx/1.png , y.png,hi\n\nz.png,\n", "utf-8-sig")
    f = read_pairs(p)
    assert f.path == p and f.root == tmp_path / "d"
    # line numbers are the file's own (the blank line 3 is skipped, not renumbered)
    assert f.pairs == (Pair(2, "x/1.png", "y.png", None), Pair(4, "z.png", "", None))
    assert f.resolve("x/1.png") == tmp_path / "d" / "x" / "1.png"
    assert read_pairs(p, root=tmp_path / "r").resolve("a.jpg") == tmp_path / "r" / "a.jpg"
    assert read_pairs(p, root=str(tmp_path)).root == tmp_path
    assert f.resolve("/abs/a.jpg") == Path("/abs/a.jpg")
    # a 'same' column is ignored unless labels are asked for
    assert read_pairs(write(tmp_path / "s.csv", "a,b,same\nx,y,maybe\n")).pairs[0].same is None


def test_read_pairs_labelled(tmp_path: Path) -> None:
    p = write(tmp_path / "p.csv", "a,b,Same\nx,y,1\nx,z,false\nx,w,YES\nx,v,n\n")
    assert [(q.line, q.same) for q in read_pairs(p, labelled=True).pairs] == [
        (2, True),
        (3, False),
        (4, True),
        (5, False),
    ]


@pytest.mark.parametrize(
    ("text", "labelled", "message"),
    [
        ("left,right\nx,y\n", False, r"bad\.csv: header must name columns 'a' and 'b' \(got"),
        ("", False, "header must name columns 'a' and 'b'"),
        ("a,b\nx,y\n", True, "header must name columns 'a', 'b' and 'same'"),
        ("a,b,same\nx,y,1\nx,y,maybe\n", True, r"bad\.csv line 3: 'same' must be 1 or 0"),
        ("a,b,same\nx,y,\n", True, "line 2: 'same' must be 1 or 0, got ''"),
        ("a,b,same\nx,,1\n", True, r"bad\.csv line 2: empty path"),
    ],
)
def test_read_pairs_bad_csv(tmp_path: Path, text: str, labelled: bool, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        read_pairs(write(tmp_path / "bad.csv", text), labelled=labelled)
    assert info.value.details["path"] == str(tmp_path / "bad.csv")


def test_read_pairs_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        read_pairs(tmp_path / "missing.csv")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(InvalidInputError, match="not a UTF-8 CSV file"):
        read_pairs(binary)
    huge = write(tmp_path / "huge.csv", "a,b\nx,y\nx," + "y" * 200_000 + "\n")
    with pytest.raises(InvalidInputError, match=r"huge\.csv line 3: malformed CSV"):
        read_pairs(huge)
