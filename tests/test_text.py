from __future__ import annotations

import pytest

from calltrack.text import has_control


@pytest.mark.parametrize("c", [chr(n) for n in [*range(32), 127]])
def test_every_c0_control_and_del_is_found(c: str) -> None:
    assert has_control(f"a{c}b")


@pytest.mark.parametrize("c", ["\t", "\n", "\r"])
def test_free_text_may_keep_tabs_and_line_breaks(c: str) -> None:
    assert has_control(c)
    assert not has_control(f"a{c}b", allow_whitespace=True)
    assert has_control(f"a{c}b\x00", allow_whitespace=True)


@pytest.mark.parametrize("text", ["", "plain", "Zürich café", "émoji 📞", "\u0080\u00a0", "a b"])
def test_printable_text_and_non_ascii_pass(text: str) -> None:
    assert not has_control(text)
    assert not has_control(text, allow_whitespace=True)
