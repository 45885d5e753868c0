"""docs/alerts-guide.*: the officers' guide has a section for every alert kind the wire contract
knows (and spool_overflow, named by the design), in Chinese and in English, and the Chinese one
uses the glossary's words for the alert lifecycle and outcomes."""

from __future__ import annotations

import re

import pytest

from pak.wire.common import load_schema
from tests import services

DOCS = services.REPO / "docs"
GUIDES = ("alerts-guide.zh-CN.md", "alerts-guide.en.md")


def _kinds() -> set[str]:
    schema = load_schema("alert")
    kinds = set(schema["properties"]["kind"]["enum"])
    assert "stolen_hit" in kinds
    return kinds | {"spool_overflow"}


@pytest.mark.parametrize("guide", GUIDES)
def test_every_kind_has_a_section(guide: str) -> None:
    text = (DOCS / guide).read_text()
    headed = set(re.findall(r"^## .*[(（]`([a-z_]+)`", text, flags=re.M))
    missing = sorted(_kinds() - headed)
    assert not missing, f"{guide} has no section for {missing}"


def test_chinese_guide_uses_the_glossary_terms() -> None:
    text = (DOCS / "alerts-guide.zh-CN.md").read_text()
    for term in ("待签收", "已签收", "已派警", "已办结", "已找回", "未找到", "误报",
                 "布控", "撤控", "查询事由", "被盗车辆预警", "网关离线", "盲区", "电量低"):
        assert term in text, term
