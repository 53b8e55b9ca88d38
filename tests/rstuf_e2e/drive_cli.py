"""Answer the interactive prompts of the real `rstuf` CLI in a pseudo-terminal, as a person at a
terminal would: typed answers for its text prompts, arrow keys and Enter for its menus.

Runs under the RSTUF venv's Python (pexpect is installed there, not in the main test venv):

    python drive_cli.py SCRIPT.json

SCRIPT.json: {"argv": [program, args...], "steps": [...], "transcript": path, "timeout": s}.
Each step is one of
    ["ask", PATTERN, ANSWER]      wait for PATTERN (a regex), type ANSWER and Enter
    ["select", PATTERN, OPTION]   wait for PATTERN, then for the menu under it, move the cursor
                                  to the option labelled OPTION and press Enter
    ["expect", PATTERN]           wait for PATTERN
The CLI must then exit; this script exits with its exit status (1 when it did not finish). The
terminal output, with its escape sequences removed, is written to `transcript` and printed.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time

import pexpect

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")
DOWN = "\x1b[B"
# The menu library (beaupy) draws its options under the prompt and ends with this line.
MENU_END = "to confirm"


def plain(text: str) -> str:
    """Terminal output without escape sequences and carriage returns."""
    return ANSI.sub("", text).replace("\r", "")


def menu_options(drawn: str) -> list[str]:
    """The option labels of the last menu in `drawn` (which ends where the menu's closing line
    starts): its lines just above that, one option each, the current one marked with '> '."""
    option = re.compile(r"^(?:> |  )(\S.*?)\s*$")
    lines = plain(drawn).split("\n")
    while lines and not option.match(lines[-1]):
        lines.pop()
    options: list[str] = []
    while lines and option.match(lines[-1]):
        options.insert(0, option.match(lines.pop()).group(1))
    return options


def main() -> int:
    script = json.loads(open(sys.argv[1]).read())
    argv = script["argv"]
    env = dict(os.environ)
    env.update(
        # prompt_toolkit would otherwise ask the terminal for the cursor position and wait.
        PROMPT_TOOLKIT_NO_CPR="1",
        TERM="xterm",
        COLUMNS="200",
        LINES="50",
        NO_COLOR="1",
    )
    child = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8",
                          timeout=script.get("timeout", 30), dimensions=(50, 200))
    log: list[str] = []

    class Tee:
        def write(self, s: str) -> None:
            log.append(s)

        def flush(self) -> None:
            pass

    child.logfile_read = Tee()
    status = 1
    try:
        for step in script["steps"]:
            kind, pattern = step[0], step[1]
            child.expect(pattern)
            seen = child.before + child.after
            if kind == "ask":
                child.sendline(step[2])
            elif kind == "select":
                child.expect(MENU_END)
                options = menu_options(seen + child.before)
                if step[2] not in options:
                    raise RuntimeError(f"menu after {pattern!r} has no option {step[2]!r}: {options}")
                # Let the menu finish drawing and switch the terminal to raw mode before keys come.
                time.sleep(0.1)
                for _ in range(options.index(step[2])):
                    child.send(DOWN)
                    child.expect(MENU_END)
                child.send("\r")
            elif kind != "expect":
                raise RuntimeError(f"unknown step {step!r}")
        child.expect(pexpect.EOF)
        child.close()
        status = child.exitstatus if child.exitstatus is not None else 1
    except (pexpect.TIMEOUT, pexpect.EOF, RuntimeError) as e:
        log.append(f"\n[drive_cli] stopped at step {step!r}: {type(e).__name__}: {str(e).splitlines()[0]}\n")
        if child.isalive():
            child.terminate(force=True)
    text = plain("".join(log))
    with open(script["transcript"], "w") as f:
        f.write(text)
    print(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
