"""signaling_server.access.redaction (pure): a patient's identifiers struck out of free text, in every form we hold,
and nothing else touched. Examples first, then properties over generated names, IDs, dates and text (hypothesis)."""

from __future__ import annotations

import re

from hypothesis import assume, given
from hypothesis import strategies as st

from signaling_server.access import redaction
from signaling_server.access.redaction import MARKER, NONE, Identifiers, name_components, redact, redact_json

ZHANG = Identifiers(names=("Zhang^San=张^三",), ids=("N-3", "ACC1", "310101198002020011"), birth_dates=("19800202",))


def test_a_name_in_every_form_we_hold_is_struck_out() -> None:
    cases = {
        "Patient Zhang San attended.": f"Patient {MARKER} attended.",
        "ZHANG SAN": MARKER,
        "zhangsan, sanzhang": f"{MARKER}, {MARKER}",
        "San Zhang / Zhang, San / Zhang^San": f"{MARKER} / {MARKER} / {MARKER}",
        "Seen by Dr. Li for Mr Zhang's thyroid.": f"Seen by Dr. Li for Mr {MARKER}'s thyroid.",
        "患者张三，女。": f"患者{MARKER}，女。",
        "张 三 复查": f"{MARKER} 复查",
        "三张图片": "三张图片",  # "three pictures": the Chinese name is matched family-first only
        "患者Zhang San女": f"患者{MARKER}女",
        "Zhang3 and 3Zhang": f"{MARKER}3 and 3{MARKER}",  # digits do not make a longer word
    }
    for text, shown in cases.items():
        assert redact(text, ZHANG) == shown, text


def test_a_latin_name_is_matched_as_a_word_and_short_components_are_skipped() -> None:
    he = Identifiers(names=("He^Y",))
    assert redact("the heart, and He Y himself; HE said", he) == f"the heart, and {MARKER} himself; {MARKER} said"
    assert redact("Y is a letter, and so is y", he) == "Y is a letter, and so is y"  # one letter: left alone
    assert redact("van der Berg, Anna", Identifiers(names=("van der Berg^Anna",))) == MARKER


def test_ids_and_birth_dates_in_their_common_forms() -> None:
    text = (
        "ID N-3 (not N-33), acc ACC1, resident 310101198002020011; born 1980-02-02, 1980/2/2, 19800202, "
        "1980.02.02, 1980年2月2日, 1980 年 02 月 02 日; not 21980-02-02 nor 1980-02-021."
    )
    assert redact(text, ZHANG) == (
        f"ID {MARKER} (not N-33), acc {MARKER}, resident {MARKER}; born {MARKER}, {MARKER}, {MARKER}, "
        f"{MARKER}, {MARKER}, {MARKER}; not 21980-02-02 nor 1980-02-021."
    )


def test_json_strings_are_redacted_and_keys_and_numbers_kept() -> None:
    content = {"Zhang": "Zhang San", "nodules": [{"location": "right lobe", "mm": 12, "note": "N-3"}], "ok": True}
    assert redact_json(content, ZHANG) == {
        "Zhang": MARKER, "nodules": [{"location": "right lobe", "mm": 12, "note": MARKER}], "ok": True,
    }  # fmt: skip
    assert redact_json(content, NONE) == content


def test_name_components_follow_the_pn_groups() -> None:
    assert name_components("Zhang^San^^Dr=张^三=") == [["Zhang", "San", "Dr"], ["张", "三"]]
    assert name_components("") == []


# --- properties ---------------------------------------------------------------------------------------------------

LATIN = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyzÀÉÖüß", min_size=1, max_size=10)
HAN = st.text(alphabet="张王李赵刘陈杨黄周吴三四伟芳娜秀英敏静丽强磊军洋", min_size=1, max_size=3)
SEPARATORS = st.sampled_from([" ", ", ", "; ", "\n", "。", "，", "(", ")", " - ", "：", "患者", "年龄"])
FILLER = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)


Patient = tuple[Identifiers, list[str], list[tuple[str, str | None]]]


@st.composite
def patients(draw: st.DrawFn) -> Patient:
    """A patient, the forms of their identifiers a report might hold, and the strings that must never remain."""
    family, given_ = draw(LATIN), draw(LATIN)
    han_family, han_given = draw(HAN), draw(HAN)
    local_id = draw(st.text(alphabet="ABCDEFGHJKMNPQRSTUVWXYZ0123456789-", min_size=2, max_size=12))
    year, month, day = draw(st.integers(1900, 2025)), draw(st.integers(1, 12)), draw(st.integers(1, 28))
    birth = f"{year:04d}{month:02d}{day:02d}"
    who = Identifiers(names=(f"{family}^{given_}={han_family}^{han_given}",), ids=(local_id,), birth_dates=(birth,))
    forms = [
        family, given_, f"{family} {given_}", f"{given_} {family}", f"{family}{given_}", f"{family}, {given_}",
        f"{family.upper()} {given_.lower()}", f"{han_family}{han_given}", f"{han_family} {han_given}", local_id,
        birth, f"{year}-{month:02d}-{day:02d}", f"{year}/{month}/{day}", f"{year}年{month}月{day}日",
        f"{year}年{month:02d}月{day:02d}日",
    ]  # fmt: skip
    letters = r"[A-Za-z\u00C0-\u024F]"  # the Latin letters that make a longer word (Chinese ones do not)
    alphanumerics = r"[0-9A-Za-z\u00C0-\u024F]"
    never = [(part, letters) for part in (family, given_) if len(part) >= 2]
    never += [(han_family + han_given, None), (local_id, alphanumerics), (birth, "[0-9]")]
    return who, forms, never


@given(patients(), st.lists(st.tuples(SEPARATORS, st.integers(0, 14)), min_size=1, max_size=8), SEPARATORS)
def test_redacting_never_leaves_the_patients_identifiers(
    patient: Patient, pieces: list[tuple[str, int]], last: str
) -> None:
    who, forms, never = patient
    text = "".join(sep + forms[i] for sep, i in pieces) + last
    shown = redact(text, who)
    for leaked, word in never:  # a Latin name or an ID may stay inside a longer word or number, never on its own
        alone = rf"(?<!{word}){re.escape(leaked)}(?!{word})" if word else re.escape(leaked)
        assert not re.search(alone, shown, re.IGNORECASE), (leaked, shown)
    if any(len(forms[i]) >= 2 for _, i in pieces):  # a lone one-letter name part is left alone by design
        assert MARKER in shown


@given(patients(), FILLER)
def test_text_without_the_identifiers_is_unchanged(patient: Patient, text: str) -> None:
    who, _, _ = patient
    folded = text.lower()
    (name,) = who.names
    parts = [part for group in name_components(name) for part in group]
    assume(not any(part.lower() in folded for part in parts))
    assume(not any(identifier.lower() in folded for identifier in who.ids))
    assume(not any(birth[:4] in text for birth in who.birth_dates))
    assert redact(text, who) == text


@given(patient=patients(), pieces=st.lists(st.tuples(FILLER, st.integers(0, 14)), max_size=4), tail=FILLER)
def test_skipping_texts_without_a_component_never_changes_the_result(patient: Patient, pieces: list[tuple[str, int]],
                                                                     tail: str) -> None:  # fmt: skip
    """The shortcut (no component of any identifier in the text, case-folded: nothing compiled) is exact."""
    who, forms, _ = patient
    text = "".join(filler + forms[i] for filler, i in pieces) + tail
    pattern = redaction._pattern(who)
    assert pattern is not None
    assert redact(text, who) == pattern.sub(MARKER, text)
    assert redact(text.upper(), who) == pattern.sub(MARKER, text.upper())
