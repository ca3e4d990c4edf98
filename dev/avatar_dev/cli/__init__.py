"""The `avatar` command: one entry point for checking photos, training and serving on this machine, the local stack,
the demo, the benchmarks and the deploy tooling.

Exit codes: 0 done; 1 the command ran but could not do everything it was asked (each command's help says when); 2 a
usage error. A closed pipe (`avatar check photos/ | head`) ends the command quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

EXAMPLES = """examples:
  avatar check ../shared/faces                  # the photo checks of the upload pipeline, one line per photo
  avatar likeness --reference ../shared/faces photo.jpg   # how alike a face is to a person (0 to 1)
  avatar train ../shared/faces --out build/train
  avatar generate --model build/train/model.tar.gz --prompt "<<TOK>> as an astronaut" --out build/avatars
  avatar demo                                   # the whole product on this machine, with a report
  avatar COMMAND --help                         # every option of a command, with its default and an example
"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (flags say off); examples keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if not action.option_strings or "%(default)" in text or action.default is argparse.SUPPRESS:
            return text
        if action.nargs == 0:  # a flag
            return f"{text} (default: off)" if action.default is False else text
        if action.default is None or action.default == []:
            return text  # the help says what happens without it
        return f"{text} (default: %(default)s)"


def add_command(commands: Any, name: str, *, help: str, example: str, **options: Any) -> argparse.ArgumentParser:
    """A subcommand with its description, its defaults shown and an example in its help."""
    return commands.add_parser(  # type: ignore[no-any-return]
        name,
        help=help,
        description=options.pop("description", help[:1].upper() + help[1:] + "."),
        epilog=f"example:\n  {example}" + (f"\n\n{options.pop('notes')}" if "notes" in options else ""),
        formatter_class=HelpFormatter,
        **options,
    )


def _versions() -> str:
    found = []
    for distribution in ("avatar-service", "avatar-dev"):
        try:
            found.append(f"{distribution} {version(distribution)}")
        except PackageNotFoundError:
            found.append(f"{distribution} (not installed)")
    return "avatar: " + ", ".join(found)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from avatar_dev.cli import bench, deploy, identity, photos, provenance, serving, stack, training

    parser = argparse.ArgumentParser(
        prog="avatar",
        description="Personal avatar models from selfies: check photos, train, generate, run the whole system here.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_versions())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (photos, identity, training, serving, provenance, stack, bench, deploy):
        group.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `avatar` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args, parser)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining while it exits.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
