"""Per-group error rates and the worst/best ratio, checked by hand."""

from __future__ import annotations

import json
import math

import pytest

from faceindex.eval.groups import disparity, group_of, group_rates, pair_group

# At threshold 0.5:
#   F: genuine .9 .4 (1 miss of 2), impostor .7 .2 .1 (1 false match of 3)
#   M: genuine .8 .6 .55 -inf (1 miss, the failure, of 4), impostor .3 .2 (none of 2)
#   one cross-group impostor at .95 and one unlabelled genuine at .1: excluded
SCORES = [0.9, 0.4, 0.7, 0.2, 0.1, 0.8, 0.6, 0.55, -math.inf, 0.3, 0.2, 0.95, 0.1]
SAME = [1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1]
GROUPS = ["F"] * 5 + ["M"] * 6 + [None, None]


def test_rates_per_group_by_hand() -> None:
    b = group_rates(SCORES, SAME, GROUPS, threshold=0.5)
    f, m = b.groups
    assert (f.group, f.n_genuine, f.n_impostor) == ("F", 2, 3)
    assert (f.false_matches, f.false_non_matches) == (1, 1)
    assert (f.fmr, f.fnmr) == (pytest.approx(1 / 3), 0.5)
    assert (m.n_genuine, m.n_impostor, m.fmr, m.fnmr) == (4, 2, 0.0, 0.25)
    assert b.n_excluded == 2
    assert (b.fnmr_disparity.worst_group, b.fnmr_disparity.best_group) == ("F", "M")
    assert b.fnmr_disparity.ratio == 2.0
    # FMR: M made no false match in 2 trials, F did: the ratio is unbounded.
    d = b.fmr_disparity
    assert (d.worst_group, d.best_group, d.ratio) == ("F", "M", math.inf)
    assert "no errors in 2 trials" in d.note


def test_json_has_no_infinities() -> None:
    d = group_rates(SCORES, SAME, GROUPS, threshold=0.5).to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["fmr_disparity"]["ratio"] is None
    assert d["fnmr_disparity"]["ratio"] == 2.0 and d["rate_names"] == ["FMR", "FNMR"]


def test_zero_and_missing_rates() -> None:
    assert disparity("FMR", {"a": (0.0, 10), "b": (0.0, 5)}).ratio == 1.0
    one = disparity("FMR", {"a": (0.1, 10), "b": (None, 0)})
    assert one.ratio is None and "fewer than two" in one.note
    equal = disparity("FNMR", {"b": (0.2, 5), "a": (0.2, 5)})
    assert (equal.best_group, equal.worst_group, equal.ratio) == ("a", "b", 1.0)
    # A group with only genuine trials has no FMR and stays out of the FMR ratio.
    b = group_rates([0.9, 0.2, 0.6], [1, 0, 0], ["x", "y", "y"], threshold=0.5)
    assert b.groups[0].fmr is None and b.groups[0].fnmr == 0.0
    assert b.fmr_disparity.ratio is None


def test_failures_never_accepted_even_at_minus_infinity() -> None:
    b = group_rates([-math.inf, -math.inf], [1, 0], ["g", "g"], threshold=-math.inf)
    assert (b.groups[0].fmr, b.groups[0].fnmr) == (0.0, 1.0)


def test_pair_and_person_rules() -> None:
    assert pair_group("F", "F") == "F"
    assert pair_group("F", "M") is None and pair_group(None, None) is None
    assert group_of("ann", {"ann": "F"}) == "F"
    assert group_of("bob", {"ann": "F"}) is None and group_of("ann", None) is None


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="equal length"):
        group_rates([0.1], [1, 0], ["a"], threshold=0.5)
    with pytest.raises(ValueError, match="NaN"):
        group_rates([math.nan], [1], ["a"], threshold=0.5)
