"""The generated P4 constants must match icpn.constants, or P4 and Python disagree on the wire."""

from __future__ import annotations

from icpn import codegen
from icpn.constants import DropReason, P4Const, p4_constants
from icpn.paths import PROJECT_ROOT


def test_committed_constants_p4_is_up_to_date() -> None:
    assert codegen.GENERATED_FILE.read_text() == codegen.render(), (
        "p4src/shared/constants.p4 is stale: run `make constants` and commit it"
    )


def test_every_drop_reason_has_a_p4_constant() -> None:
    names = {c.name: c.value for c in p4_constants()}
    for reason in DropReason:
        assert names[f"DROP_{reason.name}"] == reason.value
    assert names["DROP_REASON_COUNT"] == len(DropReason)


def test_configurable_constant_renders_as_overridable_define() -> None:
    text = codegen.render([P4Const("OPT_TYPE", 0x13, 8, "an option", configurable=True)])
    assert "#ifndef OPT_TYPE\n#define OPT_TYPE 0x13\n#endif" in text


def test_plain_constant_renders_as_typed_const() -> None:
    text = codegen.render([P4Const("SIZE", 64, 32, "a size", radix=10)])
    assert "const bit<32> SIZE = 64;" in text


def test_values_fit_their_widths() -> None:
    for const in p4_constants():
        assert 0 <= const.value < (1 << const.width), const


def test_every_drop_reason_is_documented() -> None:
    doc = (PROJECT_ROOT / "docs" / "dataplane.md").read_text()
    missing = [r.name for r in DropReason if f"| `{r.name}` |" not in doc]
    assert not missing, f"docs/dataplane.md lacks drop reasons {missing}"


def test_reciprocal_division_is_exact_for_48_bit_timestamps() -> None:
    from random import Random

    from icpn.constants import US_PER_S_RECIPROCAL

    rng = Random(7)
    edges = [0, 1, 999_999, 1_000_000, 1_000_001, (1 << 48) - 1]
    edges += [k * 1_000_000 + d for k in (1, 2**20, 2**28) for d in (-1, 0, 1)]
    for t in edges + [rng.randrange(1 << 48) for _ in range(100_000)]:
        assert (t * US_PER_S_RECIPROCAL) >> 68 == t // 1_000_000, t
