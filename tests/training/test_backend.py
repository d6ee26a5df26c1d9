"""harness.training.backend: the deterministic column says whether the run computed on one thread."""

from harness.training import backend


def test_single_threaded_by_default_and_not_when_the_environment_says_more(monkeypatch):
    assert backend.single_threaded()  # configure_environment set one thread
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert not backend.single_threaded()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "2")
    assert not backend.single_threaded()
