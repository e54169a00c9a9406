"""The README's walk-through is the script the e2e suite runs, line for line."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_walkthrough_is_the_tested_script():
    readme = (ROOT / "README.md").read_text()
    script = (ROOT / "deploy" / "walkthrough.sh").read_text().splitlines()
    body = script[script.index("set -euo pipefail") + 1 :]  # after the shebang and header
    commands = [line for line in body if line.strip()]
    missing = [line for line in commands if line not in readme]
    assert not missing, f"README walk-through differs from deploy/walkthrough.sh: {missing}"


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in readme
