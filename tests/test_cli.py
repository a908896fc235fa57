"""The command line: `main([...])` in process for speed, and subprocesses for the real thing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fastcron.cli import main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastcron", *args], capture_output=True, text=True, timeout=60)


def test_explain_prints_the_description_and_next_fires() -> None:
    result = run("explain", "0 9 * * MON-FRI", "--tz", "Europe/Berlin", "--count", "3", "--after", "2024-01-05T12:00:00+00:00")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "0 9 * * MON-FRI  (Europe/Berlin)"
    assert lines[1] == "At 09:00, Monday through Friday"
    assert [line.strip() for line in lines[2:]] == [
        "2024-01-08T09:00:00+01:00",
        "2024-01-09T09:00:00+01:00",
        "2024-01-10T09:00:00+01:00",
    ]


def test_explain_json_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "*/15 * * * *", "--count", "2", "--after", "2024-01-01T00:00:00+00:00", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["artifact_type"] == "card"
    assert payload["data"]["next"] == ["2024-01-01T00:15:00+00:00", "2024-01-01T00:30:00+00:00"]
    assert payload["data"]["tz"] == "UTC"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "0 0 32 * *"], "fastcron: day-of-month: 32 is out of range 1-31 (column 5)"),
        (["explain", "* * * * *", "--tz", "Nowhere/City"], 'fastcron: unknown time zone "Nowhere/City"'),
        (["explain", "* * * * *", "--count", "-1"], "--count must be 0-10000"),
        (["explain", "* * * * *", "--after", "yesterday"], "--after 'yesterday' is not an ISO-8601 datetime"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
