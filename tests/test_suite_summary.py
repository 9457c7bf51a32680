"""The suite says what it did not run: a count of passes alone hides a missing PostgreSQL."""
from __future__ import annotations


def test_the_summary_names_what_did_not_run(monkeypatch, tmp_path):
    """Without PostgreSQL and the corpus the summary says so in one line (issue 14)."""
    import conftest
    monkeypatch.setattr(conftest, "PG_URL", "")
    monkeypatch.setattr(conftest, "CORPUS", tmp_path / "nowhere")
    missing = conftest.not_run()
    assert len(missing) == 2 and "MAILD_TEST_PG" in missing[0] and "nowhere" in missing[1]
    monkeypatch.setattr(conftest, "PG_URL", "postgresql://x")
    monkeypatch.setattr(conftest, "CORPUS", tmp_path)
    assert conftest.not_run() == []
