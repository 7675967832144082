"""A rule-set upload cannot stall the service: capped questions, a bounded check, off the loop."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from app.triage import checks
from app.triage.rules import MAX_QUESTIONS, RuleSet
from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem, pointers


def every_answer_matters(n: int, version: str) -> str:
    """A rule set whose first rule needs every one of ``n`` answers: 2**n cases to walk."""
    questions = "\n".join(
        f"  - id: q{i}\n    type: boolean\n    text_nl: vraag {i}\n    text_en: question {i}"
        for i in range(n)
    )
    needs_all = ", ".join(f"{{any: [q{i}, {{not: q{i}}}]}}" for i in range(n))
    rule = "    outcome: a\n    basis: test\n    rationale_nl: a\n    rationale_en: a\n"
    return (
        f"version: {version}\ntitle: every answer matters\ndescription: test\n"
        f"questions:\n{questions}\n"
        "outcomes:\n  - code: a\n    label_nl: a\n    label_en: a\n    advice_nl: a\n"
        "    advice_en: a\n    care_types: []\n"
        "target_group:\n  default: somatic\n"
        f"rules:\n  - id: R1\n    when: {{all: [{needs_all}]}}\n{rule}"
        f"  - id: R2\n    otherwise: true\n{rule}"
    )


async def upload(client: httpx.AsyncClient, seed: Seed, source: str) -> httpx.Response:
    return await client.post(
        "/v1/triage/rules", json={"source": source}, headers=auth(seed.keys["admin"])
    )


async def test_too_many_questions_is_a_clear_422(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await upload(client, seed, every_answer_matters(MAX_QUESTIONS + 1, "big-1"))
    body = assert_problem(r, 422, type_slug="validation")
    assert pointers(body) == ["#/source"]
    assert f"at most {MAX_QUESTIONS} questions" in body["detail"]
    assert body["errors"][0]["location"] == "questions"


@pytest.mark.parametrize("n", [20, MAX_QUESTIONS])
async def test_a_decision_tree_too_large_to_check_is_a_clear_422(
    client: httpx.AsyncClient, seed: Seed, n: int
) -> None:
    r = await upload(client, seed, every_answer_matters(n, f"wide-{n}"))
    body = assert_problem(r, 422, type_slug="validation")
    assert pointers(body) == ["#/source"]
    assert "too large to check" in body["detail"]
    r = await client.get("/v1/triage/rules/wide-20", headers=auth(seed.keys["admin"]))
    assert r.status_code == 404  # nothing stored


async def test_the_check_runs_off_the_event_loop(
    client: httpx.AsyncClient, seed: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked_in: list[threading.Thread] = []
    started = threading.Event()
    real = checks.check_ruleset

    def spy(ruleset: RuleSet, **kwargs: int) -> checks.CheckReport:
        if ruleset.version == "wide-ok":  # not the built-in set, stored on first use
            checked_in.append(threading.current_thread())
            started.set()
        return real(ruleset, **kwargs)

    monkeypatch.setattr("app.triage.service.check_ruleset", spy)
    pending = asyncio.create_task(upload(client, seed, every_answer_matters(11, "wide-ok")))
    answered_during_check = 0
    while not pending.done():
        r = await client.get("/healthz")
        assert r.status_code == 200
        if started.is_set() and not pending.done():
            answered_during_check += 1
        await asyncio.sleep(0)
    r = await pending
    assert r.status_code == 201, r.text
    assert checked_in
    assert threading.main_thread() not in checked_in
    assert answered_during_check > 0
