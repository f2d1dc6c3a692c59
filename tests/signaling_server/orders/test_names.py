"""Names typed in one field become valid DICOM PN values; PN given as such is kept; what PN cannot hold is refused."""

from __future__ import annotations

import pytest

from signaling_server.orders.names import as_person_name, person_name


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("张三", "张^三"),
        ("王小明", "王^小明"),
        ("欧阳娜娜", "欧阳^娜娜"),  # a compound surname
        ("欧阳", "欧^阳"),  # two characters: one family, one given
        ("Li Wei", "Li Wei^"),  # never reordered by guess: the whole as the family name
        ("  Li   Wei ", "Li Wei^"),
        ("张^三", "张^三"),
        ("Wang^Fang=王^芳", "Wang^Fang=王^芳"),
    ],
)
def test_a_typed_name_becomes_a_pn_with_its_components(typed: str, kept: str) -> None:
    assert person_name(typed) == kept
    assert "^" in person_name(typed)  # never the retired free form


@pytest.mark.parametrize("bad", ["", " ^ ", "a\\b", "a\nb", "a=b=c=d", "a^b^c^d^e^f", "x" * 65])
def test_what_pn_cannot_hold_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        person_name(bad)


def test_any_display_name_is_made_a_pn_by_dropping_what_pn_cannot_hold() -> None:
    assert as_person_name("李医生") == "李^医生"
    assert as_person_name("Dr Wang = Chief\\") == "Dr Wang Chief^"
    assert as_person_name("") == ""
    assert len(as_person_name("y" * 300)) <= 64
