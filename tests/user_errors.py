"""How a command's user error must look: exit status 2, one `error: ...` line on stderr."""
from __future__ import annotations

import pytest


def user_error(capsys, main, *args) -> str:
    """Run `main(*args)`; return the message of the one error line it must end with."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(*args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0][len("error: "):]
