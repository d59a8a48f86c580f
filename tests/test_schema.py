import pytest
from pydantic import ValidationError

from rubricrl.rubrics.schema import Criterion, Rubric, bank_hash


def test_negative_points_imply_negative():
    assert Criterion(id="a", text="x", points=-3).negative


def test_tiers_must_increase():
    with pytest.raises(ValidationError, match="strictly increasing"):
        Criterion(id="a", text="x", tiers=[{"score": 2}, {"score": 1}])


def test_no_positive_points_rejected():
    with pytest.raises(ValidationError, match="positive points"):
        Rubric(id="r", criteria=[Criterion(id="a", text="x", points=-1)])


def test_duplicate_ids_rejected():
    c = Criterion(id="a", text="x")
    with pytest.raises(ValidationError, match="duplicate"):
        Rubric(id="r", criteria=[c, c])


def test_unknown_key_rejected():
    with pytest.raises(ValidationError, match="Extra inputs"):
        Criterion(id="a", text="x", wieght=2)


def test_content_hash_ignores_provenance_but_not_content():
    a = Rubric(id="r", criteria=[Criterion(id="a", text="x")], source="one.yaml")
    b = Rubric(id="r", criteria=[Criterion(id="a", text="x")], source="two.yaml")
    c = Rubric(id="r", criteria=[Criterion(id="a", text="y")])
    assert a.content_hash() == b.content_hash() != c.content_hash()
    assert bank_hash([a, c]) == bank_hash([c, a])


def test_normalise_tiers():
    c = Criterion(id="a", text="x", tiers=[{"score": 1}, {"score": 5}, {"score": 10}])
    assert c.normalise(1) == 0.0 and c.normalise(10) == 1.0 and c.normalise(5.5) == pytest.approx(0.5)


def test_scale_overrides_tier_range():
    tiers = [{"score": s, "label": f"{s - 1}-{s}"} for s in (2, 4, 6, 8, 10)]
    c = Criterion(id="a", text="x", tiers=tiers, scale=(1, 10))
    assert c.normalise(1) == 0.0 and c.normalise(10) == 1.0
