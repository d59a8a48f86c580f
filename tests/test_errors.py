"""run_guarded: the one error policy of `rubricrl` and `python -m rubricrl.report.eval_runner`."""

from __future__ import annotations

import pytest

from rubricrl.errors import UserError, run_guarded


def _raise(exc: BaseException):
    def body():
        raise exc

    return body


def test_exit_codes_and_one_line_messages(capsys):
    assert run_guarded(lambda: None) == 0
    assert run_guarded(lambda: 3) == 3
    assert run_guarded(_raise(UserError("bad key", path="a.yaml", line=4))) == 2
    assert capsys.readouterr().err.strip() == "a.yaml:4: bad key"
    assert run_guarded(_raise(KeyboardInterrupt())) == 130
    assert run_guarded(_raise(BrokenPipeError())) == 0
    assert run_guarded(_raise(ValueError("boom"))) == 1
    err = capsys.readouterr().err
    assert "error: ValueError: boom" in err and "Traceback" not in err


def test_debug_shows_the_unexpected_error():
    with pytest.raises(ValueError):
        run_guarded(_raise(ValueError("boom")), debug=True)
