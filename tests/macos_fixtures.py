"""Read the recorded macOS outputs in tests/fixtures/macos/ (see its README)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "macos"


def recorded(name: str) -> str:
    """The output as recorded: the file without its leading '# ' provenance lines."""
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "".join(lines)


def message_blocks(name: str = "torch_mps_messages.txt") -> dict[int, str]:
    """torch_mps_messages.txt: {block number: the message text}, '# ' lines dropped."""
    blocks: dict[int, str] = {}
    number = None
    for line in (FIXTURES / name).read_text().splitlines():
        if line.startswith("# [") and "]" in line:
            number = int(line[3 : line.index("]")])
            blocks[number] = ""
        elif number is not None and not line.startswith("#") and line.strip():
            blocks[number] += line + "\n"
    return blocks
