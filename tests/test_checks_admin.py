"""Factor XII's checks in parts: what the runbook may no longer say, the paths asked, the live links."""

import re
from datetime import datetime, timedelta, timezone

import pytest

from factorlab import catalogue
from factorlab.checks import admin_processes as admin
from factorlab.checks.runbook import still_says

RUNBOOK = catalogue.load().get("12").runbook


def retired(text: str) -> list[str]:
    return [words for pattern, words in RUNBOOK["retired"] if still_says(text, pattern)]


def documented(text: str) -> list[str]:
    return [words for pattern, words in RUNBOOK["documented"] if re.search(pattern, text)]


@pytest.mark.parametrize("text", [
    'Once a week: `curl "https://shortly.example.com/admin/purge?token=$SHORTLY_ADMIN_TOKEN"`.',
    "The cron job runs `curl -fsS -X POST -H \"Authorization: Bearer $KEY\" https://shortly/api/tasks/purge-expired`.",
    "Or with httpie: `http POST https://shortly.example.com/maintenance/cleanup key==…`",
    "Schema changes run by themselves when the app starts (`migrate()` at import).",
    "Every web and worker process creates the table as it boots, so a schema change ships with a deploy.",
    "The app migrates the database on startup.",
    "Set SHORTLY_ADMIN_TOKEN in .env.",
])
def test_the_runbook_may_not_say_the_sin_in_other_words(text):
    assert retired(text), text


@pytest.mark.parametrize("text", [
    "Nothing changes the database when the app starts: a process that starts only reads and writes rows.",
    "Admin tasks are one-off processes: none of them is a URL, and none runs when a process starts.",
    "See https://12factor.net/admin-processes for why.",
    "The purge used to be a URL, `/admin/purge?token=…`; it is a one-off now.",
    "Run `curl https://shortly.example.com/api/release` to see which release answers.",
])
def test_the_runbook_may_say_what_is_true_now(text):
    assert not retired(text), text


def test_the_runbook_says_how_a_one_off_runs_with_a_release():
    assert len(documented("Weekly: `python release.py run -- flask --app shortly purge-expired`.")) == 2
    assert len(documented("Weekly: `./deploy.sh admin flask --app shortly purge-expired`.")) == 2
    # a laptop's way alone does not say how the servers run it, nor does a process type of deploy.sh
    assert len(documented("`honcho run flask --app shortly purge-expired`; `deploy.sh run web`.")) == 1


def test_every_route_is_asked_with_task_words_in_its_variable_parts():
    made = {admin.CONVERTER.sub(value, rule) for rule in ["/admin/tasks/<name>", "/x/<int:days>", "/<path:p>/go"]
            for value in admin.CONVERTED}
    assert {"/admin/tasks/purge-expired", "/admin/tasks/0", "/x/0", "/purge/go"} <= made
    assert not any("<" in path for path in made)


def test_a_live_link_that_expired_while_the_purge_ran_may_go():
    now = datetime.now(timezone.utc)
    live = {"soon": now - timedelta(seconds=1), "later": now + timedelta(seconds=30)}
    assert admin._still_live(live) == {"later"}
