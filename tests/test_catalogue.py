"""The catalogue: one list of exercises that everything else reads."""

import pytest

from factorlab import catalogue

SLUGS = ["01_codebase", "02_dependencies", "03_config", "04_backing_services", "05_build_release_run",
         "06_processes", "07_port_binding", "08_concurrency", "09_disposability", "10_dev_prod_parity",
         "11_logs", "12_admin_processes"]


def test_lists_the_twelve_factors_in_order(course):
    assert [ex.id for ex in course.exercises] == SLUGS
    assert [ex.factor for ex in course.exercises] == list(range(1, 13))


@pytest.mark.parametrize("key", ["03", "3", "03_config", "config", "CONFIG", " 03 "])
def test_finds_an_exercise_by_any_of_its_names(course, key):
    assert course.get(key).id == "03_config"


def test_unknown_id_lists_the_valid_ones(course):
    with pytest.raises(catalogue.CatalogueError, match="expected one of 01_codebase, 02_dependencies"):
        course.get("13")


def test_every_ready_exercise_has_folders_hints_and_registered_checks(course):
    from factorlab import checks

    for ex in course.exercises:
        if not ex.ready:
            continue
        assert ex.starter.is_dir() and ex.solution.is_dir(), ex.id
        assert len(ex.hints) >= 2, ex.id
        assert ex.url.startswith("https://12factor.net/"), ex.id
        for check_id in ex.checks:
            assert checks.get(check_id).factor == ex.factor, check_id


def test_each_exercise_s_checks_live_in_the_module_named_after_its_slug(course):
    from factorlab import checks

    for ex in course.exercises:
        for check_id in ex.checks:
            found = checks.get(check_id)
            assert found.module == ex.name, f"{check_id}: expected an id {ex.name}.<name>"
            assert found.func.__module__ == f"factorlab.checks.{ex.name}", check_id
    registered = {c.id for c in checks.REGISTRY.values() if c.func.__module__.startswith("factorlab.checks.")}
    assert registered == {c for ex in course.exercises for c in ex.checks}, "a check the catalogue never runs"


def test_each_factor_names_its_sin_and_fix(course):
    assert all(ex.sin and ex.fix for ex in course.exercises)


def test_starting_point_is_the_previous_solution(course):
    assert course.starting_point(course.get("01")) == course.legacy
    assert course.starting_point(course.get("03")) == course.get("02").solution


def test_find_root_prefers_the_environment(tmp_path, monkeypatch, fake_course):
    assert catalogue.find_root() == fake_course.root
    monkeypatch.delenv("FACTORLAB_COURSE")
    monkeypatch.chdir(fake_course.root / "legacy")
    assert catalogue.find_root() == fake_course.root


def test_a_broken_catalogue_is_reported(tmp_path):
    (tmp_path / "exercises.toml").write_text("[[exercise]\n")
    with pytest.raises(catalogue.CatalogueError, match="cannot read"):
        catalogue.load(tmp_path)


def test_a_solution_must_pass_every_check_up_to_its_own(course):
    through = course.checks_through(course.get("03"))
    assert through[0] == "codebase.git_repository" and through[-1] == course.get("03").checks[-1]
    assert len(through) == sum(len(course.get(n).checks) for n in ("01", "02", "03"))
    assert course.app_file == "shortly.py"


def test_the_starters_as_shipped_are_recorded(course):
    from factorlab.starters import tree_of

    stale = [ex.id for ex in course.exercises if ex.ready and tree_of(course, ex) != ex.starter_tree]
    assert not stale, f"run `python -m factorlab.dev.starters` and commit exercises.toml: stale {stale}"
