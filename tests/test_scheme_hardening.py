"""A scheme with a non-finite or absurd number, or a YAML bomb, is refused at load, naming the place.

Before these checks a NaN total_max or item max loaded and made every unit 0.00 tied first (or
crashed the ranking), a NaN veto value never fired, and a few hundred bytes of YAML could exhaust
memory, the stack or float conversion.
"""
import os
import subprocess
import sys
import time

import pytest

from scoring.errors import Problems
from scoring.schemes import parse_scheme
from tests.support import ROOT, SPEC_SCHEME

ORG_GROUP = "sections[0](org).items[0](org.group)"
LINKS = "sections[1](site).items[0](site.links)"
TIERS = "sections[1](site).items[1](site.items).rule.tiers"
REPLY = "sections[1](site).items[2](site.reply)"
INTERP = "sections[1](site).items[3](site.interp)"


def problems_of(text: str) -> list[str]:
    with pytest.raises(Problems) as exc:
        parse_scheme(text)
    return exc.value.problems


def refused(mutation: tuple[str, str], fragment: str) -> None:
    assert mutation[0] in SPEC_SCHEME, mutation
    problems = problems_of(SPEC_SCHEME.replace(*mutation, 1))
    assert any(fragment in p for p in problems), problems


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1e308", "1.0e+308", "0", "-35", "true", "2000000000"])
def test_total_max_must_be_a_plausible_positive_number(value):
    refused(("total_max: 35", f"total_max: {value}"), "total_max:")


@pytest.mark.parametrize("mutation,fragment", [
    # section and item maxima
    (("name: 组织领导\n    max: 10", "name: 组织领导\n    max: .nan"), "sections[0](org).max:"),
    (("name: 组织领导\n    max: 10", "name: 组织领导\n    max: 1e308"), "sections[0](org).max:"),
    (("name: 成立领导小组, max: 2,", "name: 成立领导小组, max: .nan,"), f"{ORG_GROUP}.max:"),
    (("name: 成立领导小组, max: 2,", "name: 成立领导小组, max: .inf,"), f"{ORG_GROUP}.max:"),
    (("name: 成立领导小组, max: 2,", "name: 成立领导小组, max: 0,"), f"{ORG_GROUP}.max:必须大于0"),
    (("name: 成立领导小组, max: 2,", "name: 成立领导小组, max: -2,"), f"{ORG_GROUP}.max:"),
    (("name: 成立领导小组, max: 2,", "name: 成立领导小组, max: true,"), f"{ORG_GROUP}.max:应为数字"),
    # rule parameters
    (("per: 0.5}", "per: .nan}"), f"{LINKS}.rule.per:"),
    (("per: 0.5}", "per: .inf}"), f"{LINKS}.rule.per:"),
    (("per: 0.5}", "per: 1e308}"), f"{LINKS}.rule.per:"),
    (("per: 0.5}", "per: 2000000000}"), f"{LINKS}.rule.per:数值「2000000000」超出合理范围"),
    (("per: 0.5}", "per: true}"), f"{LINKS}.rule.per:应为数字"),
    (("full_at: 100, zero_at: 80", "full_at: .nan, zero_at: 80"), f"{REPLY}.rule.full_at:"),
    (("full_at: 100, zero_at: 80", "full_at: 100, zero_at: -.inf"), f"{REPLY}.rule.zero_at:"),
    (("full_at: 100, zero_at: 80", "full_at: 1e308, zero_at: 80"), f"{REPLY}.rule.full_at:"),
    (("denominator: policy_docs, full_at: 1.0", "denominator: policy_docs, full_at: .nan"), f"{INTERP}.rule.full_at:"),
    (("denominator: policy_docs, full_at: 1.0", "denominator: policy_docs, full_at: 0"), f"{INTERP}.rule.full_at:"),
    (("tiers: [[50, 6], [30, 4], [1, 2]]", "tiers: [[.nan, 6], [30, 4], [1, 2]]"), f"{TIERS}[0][0]:"),
    (("tiers: [[50, 6], [30, 4], [1, 2]]", "tiers: [[50, 6], [30, .inf], [1, 2]]"), f"{TIERS}[1][1]:"),
    (("tiers: [[50, 6], [30, 4], [1, 2]]", "tiers: [[1e308, 6], [30, 4], [1, 2]]"), f"{TIERS}[0][0]:"),
    (("tiers: [[50, 6], [30, 4], [1, 2]]", "tiers: [[50, 6], [30, true], [1, 2]]"), f"{TIERS}[1][1]:"),
    # bonus, penalties, veto, grades, indicators, checks
    (("bonus: {max: 5,", "bonus: {max: .inf,"), "bonus.max:"),
    (("bonus: {max: 5,", "bonus: {max: 5, min_base: .nan,"), "bonus.min_base:"),
    (("rule: {type: per, indicator: commendations, per: 1}", "rule: {type: per, indicator: commendations, per: .nan}"),
     "bonus.items[0](bonus.commend).rule.per:"),
    (("name: 获上级表彰, max: 3,", "name: 获上级表彰, max: .nan,"), "bonus.items[0](bonus.commend).max:"),
    (("indicator: criticisms, per: 3}", "indicator: criticisms, per: .inf}"), "penalties[0](pen.criticism).rule.per:"),
    (('op: ">", value: 0}', 'op: ">", value: .nan}'), "veto[0](veto.leak).value:"),
    (('op: ">", value: 0}', 'op: ">", value: 1e308}'), "veto[0](veto.leak).value:"),
    (('op: ">", value: 0}', 'op: ">", value: true}'), "veto[0](veto.leak).value:"),  # a count, not a bool
    (('op: ">", value: 0}', 'op: ">", value: 0, cap: .nan}'), "veto[0](veto.leak).cap:"),
    (('op: ">", value: 0}', 'op: ">", value: 0, cap: -1}'), "veto[0](veto.leak).cap:"),
    (("{name: 优秀, min: 90}", "{name: 优秀, min: .nan}"), "grades[0].min:"),
    (("{name: 合格, min: 60}", "{name: 合格, min: -.inf}"), "grades[2].min:"),
    (("name: 网站错链数, type: count}", "name: 网站错链数, type: count, max: .inf}"), "indicators[2](broken_links).max:"),
    (("missing: zero", "missing: zero\nchecks: [{id: c, expr: broken_links <= 1" + "0" * 400 + "}]"),
     "checks[0](c).expr:"),
])
def test_absurd_numbers_are_refused_naming_the_place(mutation, fragment):
    refused(mutation, fragment)


def test_the_messages_say_why_in_chinese():
    problems = problems_of(SPEC_SCHEME.replace("total_max: 35", "total_max: .nan")
                           .replace("per: 0.5}", "per: 1e308}"))
    assert "total_max:数值「nan」不是有限的数字" in problems
    assert f"{LINKS}.rule.per:数值「1e+308」超出合理范围(0 到 1e+09)" in problems


def test_what_stays_allowed():
    """A bool veto on a bool indicator, exponent floats and lower-is-better rates still load."""
    text = (SPEC_SCHEME
            .replace("veto:  [", "veto:  [{id: veto.group, name: 未成立领导小组, indicator: has_leading_group, "
                                 "op: '==', value: false}, ")
            .replace("per: 0.5}", "per: 5e-1}")
            .replace("full_at: 100, zero_at: 80", "full_at: 0, zero_at: 20"))
    s = parse_scheme(text)
    assert s.vetoes[0].value == 0.0
    assert s.item("site.links").rule.per == 0.5


# -- YAML bombs ------------------------------------------------------------------------------------
def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\nscheme: *i\n"


BOMBS = {
    "billion_laughs": billion_laughs(),
    "deep_nesting": "scheme: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "huge_integer": SPEC_SCHEME.replace("total_max: 35", "total_max: " + "9" * 400),
    "recursive_alias": "scheme: &a [*a]\n",
    "too_large": SPEC_SCHEME + "#" + "x" * 1_100_000 + "\n",
}


def test_the_billion_laughs_is_small():
    assert len(BOMBS["billion_laughs"].encode()) <= 476


@pytest.mark.parametrize("name", list(BOMBS))
def test_yaml_bombs_are_refused_fast(name):
    start = time.perf_counter()
    with pytest.raises(Problems) as exc:
        parse_scheme(BOMBS[name])
    assert time.perf_counter() - start < 1.0
    message = str(exc.value)
    assert "考评表" in message and len(message) < 2000, message


# -- through the command line --------------------------------------------------------------------
def cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "scoring", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("text,fragment", [
    (SPEC_SCHEME.replace("total_max: 35", "total_max: .nan"), "total_max:数值「nan」不是有限的数字"),
    (SPEC_SCHEME.replace('op: ">", value: 0}', 'op: ">", value: .nan}'), "veto[0](veto.leak).value:"),
    (BOMBS["billion_laughs"], "别名"),
    (BOMBS["deep_nesting"], "嵌套"),
    (BOMBS["huge_integer"], "位数"),
])
def test_cli_refuses_a_bad_scheme_with_exit_1(tmp_path, text, fragment):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    r = cli("--db", str(tmp_path / "x.duckdb"), "scheme", str(bad))
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "Traceback" not in out and fragment in out, out
