"""Quarter spellings of SPEC, and stepping between quarters."""
import pytest

from scoring import periods
from scoring.errors import InputError


@pytest.mark.parametrize("text", ["2025Q3", "2025-Q3", "2025 Q3", "2025年第三季度", "2025年第3季度", "2025年三季度",
                                  "2025q3", "２０２５Ｑ３", " 2025年 第三季度 "])
def test_accepted_spellings(text):
    assert periods.parse_period(text) == "2025Q3"


@pytest.mark.parametrize("text", ["2025Q5", "2025Q0", "2025", "Q3 2025", "2025--Q3", "2025年第五季度", "", None, "25Q3",
                                  # digits other than ASCII and full-width ones (NFKC or \d would take them)
                                  "٢٠٢٥Q3", "2025Q٣", "2025年第٣季度", "²⁰²⁵Q3", "𝟐𝟎𝟐𝟓Q3", "２０２５Q³"])
def test_anything_else_is_an_error_naming_the_value(text):
    with pytest.raises(InputError, match="季度格式不正确") as exc:
        periods.parse_period(text)
    assert f"「{'' if text is None else text}」" in str(exc.value)


def test_stepping_and_labels():
    assert periods.previous("2025Q1") == "2024Q4"
    assert periods.quarters_between("2024Q3", "2025Q2") == ["2024Q3", "2024Q4", "2025Q1", "2025Q2"]
    assert periods.label("2025Q3") == "2025年第三季度"
    import datetime
    assert periods.current_quarter(datetime.date(2026, 11, 22)) == "2026Q4"
