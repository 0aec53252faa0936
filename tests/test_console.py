"""augframe's console lines (`augframe/_console.py`): each on a line of its
own, after a line another program (Keras' progress bar) may have left open."""

from __future__ import annotations

import logging

import pytest

from augframe import _console
from augframe._console import Say, after_open_line, break_line, write


def test_a_line_is_written_with_its_line_end(capsys):
    write("augframe: frame 2 built")
    write("second")
    assert capsys.readouterr().out == "augframe: frame 2 built\nsecond\n"


def test_after_an_open_line_only_the_first_line_starts_on_a_new_line(capsys):
    print("Epoch 1/3 ━━━━ 3/3", end="")  # a progress bar's unfinished line
    with after_open_line():
        write("first")
        write("second")
    assert capsys.readouterr().out == "Epoch 1/3 ━━━━ 3/3\nfirst\nsecond\n"


def test_no_break_when_no_line_may_be_open(capsys):
    with after_open_line(False):
        break_line()
        write("line")
    break_line()  # outside: nothing is open
    assert capsys.readouterr().out == "line\n"


def test_the_flag_is_restored_on_leaving_even_on_an_error(capsys):
    with after_open_line():
        with pytest.raises(RuntimeError), after_open_line(False):
            raise RuntimeError("boom")
        assert _console._open is True  # the outer block's state again
        break_line()
        break_line()  # once only
    assert _console._open is False
    assert capsys.readouterr().out == "\n"


def test_say_logs_and_prints_only_when_verbose_and_unlogged(
    capsys, caplog, monkeypatch
):
    logger = logging.getLogger("augframe")
    # pytest's capture handlers sit on the root logger: cut augframe's
    # logger off them, as in a program that set up no logging at all.
    monkeypatch.setattr(logger, "propagate", False)
    assert not logger.hasHandlers()
    Say(verbose=0)("quiet")
    Say(verbose=1)("frame 2 built")
    assert capsys.readouterr().out == "augframe: frame 2 built\n"
    monkeypatch.setattr(logger, "propagate", True)  # a handler is set up now
    with caplog.at_level(logging.INFO, logger="augframe"):
        Say(verbose=1)("logged, not printed")
    assert capsys.readouterr().out == ""
    assert [r.getMessage() for r in caplog.records] == ["logged, not printed"]
    assert caplog.records[0].levelno == logging.INFO
