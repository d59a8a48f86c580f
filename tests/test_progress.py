"""Progress display: a bar on a terminal, lines in logs."""

from __future__ import annotations

import io

from rubricrl.progress import LineProgress, progress_bar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_lines_at_start_each_tenth_and_end():
    out = io.StringIO()
    bar = progress_bar(20, "grading", unit="ex", file=out)
    assert isinstance(bar, LineProgress)
    for _ in range(20):
        bar.update(1)
    bar.set_postfix(ungraded=2)
    bar.close()
    bar.close()  # once
    lines = out.getvalue().splitlines()
    assert lines[0] == "grading: 0/20 ex to do"
    assert lines[-1].startswith("grading: 20/20 (100%)") and lines[-1].endswith("ungraded=2")
    assert len(lines) == 1 + 9 + 1 and "~" in lines[1] and "s left" in lines[1]  # 10%..90%, then the end


def test_slow_work_prints_by_time_too():
    out = io.StringIO()
    bar = LineProgress(1000, "generating", every_s=0.0, file=out)
    bar.update(1)
    bar.update(1)
    assert out.getvalue().splitlines()[1:] == [ln for ln in out.getvalue().splitlines()[1:] if "generating: " in ln]
    assert len(out.getvalue().splitlines()) == 3


def test_a_terminal_gets_tqdm_and_disable_shows_nothing():
    from tqdm import tqdm

    tty = _Tty()
    assert isinstance(progress_bar(3, "x", file=tty), tqdm)
    quiet = io.StringIO()
    bar = progress_bar(3, "x", disable=True, file=quiet)
    bar.update(3)
    bar.close()
    assert quiet.getvalue() == ""


def test_the_final_line_is_not_printed_twice():
    out = io.StringIO()
    bar = LineProgress(2, "eval", every_s=0.0, file=out)
    bar.update(2)  # shown at once (every_s=0): the end
    bar.close()
    assert out.getvalue().splitlines().count(out.getvalue().splitlines()[-1]) == 1
