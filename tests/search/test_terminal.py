"""Lines for a terminal (search/terminal.py)."""
from search import terminal


def test_say_wraps_prose_and_keeps_a_path_whole(capsys):
    path = "/data/" + "d" * 120 + "/report.html"
    terminal.say("report: " + path)
    terminal.say("  importance not estimated: " + "word " * 40)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "report:" and lines[1] == "  " + path
    assert all(len(line) <= terminal.WIDTH for line in lines[2:]) and all(line.startswith("    ") for line in lines[3:])
