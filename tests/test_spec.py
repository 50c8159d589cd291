"""spec.py: the release spec (TOML) and its strict validation; every mistake is a SpecError naming the spot."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from relake.errors import SpecError
from relake.spec import Rule, Spec, load_spec, parse_spec

GOOD = """\
name = "relaion-research"
base = "laion-original"
description = "partner lists plus NSFW filtering"
min_crowd = 50
[params]
keywords = "(^|\\\\W)(nsfw|xxx)(\\\\W|$)"
threshold = 0.95
[[rule]]
id = "partner-image-hashes"
blocklist = "partner-md5"
category = "safety"
sensitive = true
side = "laion-md5"
side_key = "SAMPLE_ID"
side_hash = "md5"
[[rule]]
id = "partner-urls"
blocklist = "partner-urls"
category = "safety"
[[rule]]
id = "hash-column"
blocklist = "partner-md5"
column = "md5"
category = "safety"
[[rule]]
id = "unsafe-keyword"
where = "punsafe > $threshold AND regexp_matches(lower(TEXT), $keywords)"
category = "nsfw"
"""

HEAD = 'name = "new"\nbase = "orig"\n'
OK_RULE = '[[rule]]\nid = "ok"\nwhere = "punsafe > 0.5"\ncategory = "c"\n'


def parse(text: str) -> Spec:
    return parse_spec(text.encode(), "spec.toml")


def fails(text: str, *needles: str) -> str:
    with pytest.raises(SpecError) as info:
        parse(text)
    msg = str(info.value)
    assert msg.startswith("spec.toml: "), msg
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg
    return msg


def test_a_good_spec_parses_completely() -> None:
    spec = parse(GOOD)
    assert (spec.name, spec.base, spec.min_crowd) == ("relaion-research", "laion-original", 50)
    assert spec.description == "partner lists plus NSFW filtering"
    assert spec.params == {"keywords": "(^|\\W)(nsfw|xxx)(\\W|$)", "threshold": 0.95}
    assert spec.rules == (
        Rule(id="partner-image-hashes", category="safety", sensitive=True, blocklist="partner-md5",
             side="laion-md5", side_key="SAMPLE_ID", side_hash="md5"),
        Rule(id="partner-urls", category="safety", blocklist="partner-urls"),
        Rule(id="hash-column", category="safety", blocklist="partner-md5", column="md5"),
        Rule(id="unsafe-keyword", category="nsfw",
             where="punsafe > $threshold AND regexp_matches(lower(TEXT), $keywords)"),
    )
    assert spec.text == GOOD
    assert spec.sha256 == hashlib.sha256(GOOD.encode()).hexdigest()


def test_defaults() -> None:
    spec = parse(HEAD + OK_RULE)
    assert (spec.min_crowd, spec.params, spec.description) == (1000, {}, "")
    assert spec.rules[0].sensitive is False


def test_load_spec_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    assert load_spec(good) == parse(GOOD)
    bad = tmp_path / "bad.toml"
    bad.write_text(HEAD + "colour = 1\n" + OK_RULE)
    with pytest.raises(SpecError, match=r"^.*bad\.toml: unknown key\(s\) \['colour'\]"):
        load_spec(bad)
    with pytest.raises(SpecError, match="cannot read the spec"):
        load_spec(tmp_path / "missing.toml")


# --- strictness -------------------------------------------------------------------------------------------------


def test_not_toml() -> None:
    fails("name = \n", "not valid TOML")
    with pytest.raises(SpecError, match="not valid TOML"):
        parse_spec(b"\xff\xfe name", "spec.toml")


def test_unknown_top_level_key() -> None:
    fails(HEAD + "rules_extra = 1\n" + OK_RULE, "unknown key(s) ['rules_extra']", "allowed:", "'rule'")


def test_unknown_rule_key_is_named_with_its_rule() -> None:
    fails(HEAD + OK_RULE + '[[rule]]\nid = "b"\nwhere = "true"\ncategory = "c"\ncatgory = "typo"\n',
          "rule #2", "['catgory']", "allowed:")


def test_duplicate_rule_ids() -> None:
    fails(HEAD + OK_RULE + OK_RULE, "rule id 'ok' is used twice")


def test_blocklist_and_where_together_or_neither() -> None:
    fails(HEAD + '[[rule]]\nid = "r"\nblocklist = "b"\nwhere = "true"\ncategory = "c"\n',
          "rule 'r'", "exactly one of 'blocklist' or 'where'")
    fails(HEAD + '[[rule]]\nid = "r"\ncategory = "c"\n', "rule 'r'", "exactly one of 'blocklist' or 'where'")


def test_missing_category() -> None:
    fails(HEAD + '[[rule]]\nid = "r"\nwhere = "true"\n', "rule 'r' needs a 'category'", "public manifest")


def test_missing_id_name_or_base() -> None:
    fails(HEAD + '[[rule]]\nwhere = "true"\ncategory = "c"\n', "rule #1 needs an 'id'")
    fails('base = "orig"\n' + OK_RULE, "'name' must be given as a string")
    fails('name = "new"\n' + OK_RULE, "'base' must be given as a string")
    fails('name = 3\nbase = "orig"\n' + OK_RULE, "'name' must be given as a string")


def test_no_rules() -> None:
    fails(HEAD, "no [[rule]] entries")
    fails(HEAD + "rule = []\n", "no [[rule]] entries")
    fails(HEAD + 'rule = "x"\n', "no [[rule]] entries")
    fails(HEAD + "rule = [1]\n", "rule #1 must be a table")


@pytest.mark.parametrize("bad", ["../x", "v*", "a/b", ".hidden", "", "a b", "x" * 101, "é"])
def test_bad_version_names(bad: str) -> None:
    quoted = bad.replace("\\", "\\\\").replace('"', '\\"')
    fails(f'name = "{quoted}"\nbase = "orig"\n' + OK_RULE, "'name'", "invalid version name")
    fails(f'name = "new"\nbase = "{quoted}"\n' + OK_RULE, "'base'", "invalid version name")


@pytest.mark.parametrize(("key", "what"), [("id", "rule id"), ("category", "category"), ("blocklist", "blocklist")])
@pytest.mark.parametrize("bad", ["../x", "v*", "a b", ""])
def test_bad_names_inside_rules(key: str, what: str, bad: str) -> None:
    fields = {"id": '"r"', "category": '"c"', "blocklist": '"b"'}
    fields[key] = f'"{bad}"'
    rule = "[[rule]]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items())
    fails(HEAD + rule, f"invalid {what} name")


@pytest.mark.parametrize("where", ["true; DROP TABLE x", "punsafe > 0.5;", "", "   "])
def test_where_must_be_one_expression(where: str) -> None:
    fails(HEAD + f'[[rule]]\nid = "r"\nwhere = "{where}"\ncategory = "c"\n',
          "rule 'r'", "one non-empty SQL expression (no ';')")


def test_wrong_types() -> None:
    fails(HEAD + '[[rule]]\nid = "r"\nwhere = 1\ncategory = "c"\n', "'where' must be a string")
    fails(HEAD + '[[rule]]\nid = "r"\nblocklist = ["a"]\ncategory = "c"\n', "'blocklist' must be a string")
    fails(HEAD + '[[rule]]\nid = "r"\nwhere = "true"\ncategory = "c"\nsensitive = "yes"\n',
          "'sensitive' must be true or false")
    fails(HEAD + "min_crowd = -1\n" + OK_RULE, "min_crowd must be a non-negative integer")
    fails(HEAD + "min_crowd = true\n" + OK_RULE, "min_crowd must be a non-negative integer")
    fails(HEAD + "min_crowd = 1.5\n" + OK_RULE, "min_crowd must be a non-negative integer")


def test_params() -> None:
    fails(HEAD + 'params = "x"\n' + OK_RULE, "[params] must be a table")
    fails(HEAD + '[params]\n"bad name" = 1\n' + OK_RULE, "param name 'bad name' must be a plain identifier")
    fails(HEAD + "[params]\nt = { a = 1 }\n" + OK_RULE,
          "param 't' must be a string, number, boolean or a flat list of them (not a table)")
    fails(HEAD + '[params]\nrule = "x"\n' + OK_RULE, "'rule' is reserved")
    spec = parse(HEAD + '[params]\nwords = ["a", "b"]\nflag = true\nn = 3\n' + OK_RULE)
    assert spec.params == {"words": ["a", "b"], "flag": True, "n": 3}


def test_image_options() -> None:
    bl = '[[rule]]\nid = "r"\nblocklist = "b"\ncategory = "c"\n'
    fails(HEAD + bl + 'column = "md5"\nside = "t"\n', "give 'column' or 'side', not both")
    fails(HEAD + bl + 'side = "t"\nside_join = "sha"\n', "side_join must be 'id' or 'url'")
    fails(HEAD + bl + 'side_key = "SAMPLE_ID"\n', "['side_key'] need a 'side' table")
    fails(HEAD + '[[rule]]\nid = "r"\nwhere = "true"\ncategory = "c"\ncolumn = "md5"\n',
          "['column'] apply to image-hash blocklist rules")
    assert parse(HEAD + bl + 'side = "t"\nside_join = "url"\n').rules[0].side_join == "url"
