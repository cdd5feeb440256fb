"""Text tool-call cases, one or more per model family known to the public parsers (vLLM, SGLang).

Every string was written for this project (same formats as the upstream parsers, new content).
CASES (family_cases_*.py, built with family_helpers.C) is a plain list of dicts, converted into
corpus Cases here:

    id        unique case id, "<family>-<what>"
    family    family key (the README's coverage table)
    text      the assistant text as the backend returns it (special tokens kept, as with
              skip_special_tokens=False)
    calls     [[tool_name, {input}], ...] the structured calls a correct parser emits, in order
    prose     the visible text around the calls, in order (split only where a call sits);
              reasoning, protocol framing and call markup are not prose; compared with
              whitespace collapsed
    tools     optional: the request's tools (default: the corpus tools)
    thinking  optional: the reasoning text a correct parser separates out
    note      optional: why the case exists / which upstream behaviour it mirrors

Where the project decided against an upstream parser, the case says what the project does and why
(note "policy: ...").
"""
from __future__ import annotations

from toolcall_corpus import Case
from toolcall_corpus.family_cases_policy import CASES as POLICY_CASES
from toolcall_corpus.family_cases_tags import CASES as TAG_CASES
from toolcall_corpus.family_cases_tokens import CASES as TOKEN_CASES
from toolcall_corpus.tools import ALL_TOOLS

CASES = TAG_CASES + TOKEN_CASES + POLICY_CASES


def _to_case(case: dict) -> Case:
    calls = tuple((name, arguments) for name, arguments in case["calls"])
    return Case(f"family-{case['id']}", "family" if calls else "negative", case["text"], calls, tuple(case["prose"]),
                tuple(case.get("tools", ALL_TOOLS)), (case["thinking"],) if case.get("thinking") else (),
                case["family"], loose=True)


FAMILY_CASES = [_to_case(case) for case in CASES]
