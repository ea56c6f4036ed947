"""Shared command-line behaviour of the hrface_jax entry points."""

import sys
from collections.abc import Callable

from absl import flags, logging


def quiet_logging() -> None:
  """WARNING and above unless --verbosity was given: orbax and TFDS log every
  checkpoint and file at INFO, which buries the progress lines."""
  if not flags.FLAGS["verbosity"].present:  # a library sets it to INFO itself
    logging.set_verbosity(logging.WARNING)


_HELP = ("-h", "-help", "--help", "--helpshort", "--helpfull", "-?")


def private_flags_parser(
  own: flags.FlagValues, program: str, doc: str | None
) -> Callable[[list[str]], list[str]]:
  """An ``app.run(flags_parser=...)`` for a CLI with its own FlagValues.

  The CLIs keep their flags off absl's global FLAGS, so importing several of
  them (tests, scripts) cannot clash over --dataset or --checkpoint. Parses
  ``own`` first, then absl's global flags (logging) on what is left.
  """

  def parse(argv: list[str]) -> list[str]:
    if any(a in _HELP for a in argv[1:]):
      print(doc or "")
      print(own.get_help())
      sys.exit(0)
    own.unparse_flags()
    try:
      return flags.FLAGS(own(argv, known_only=True))
    except flags.Error as e:
      print(f"{program}: error: {e} (see --help)", file=sys.stderr)
      sys.exit(1)
    except (KeyError, AttributeError) as e:  # ml_collections: --config.NO_SUCH=...
      overrides = [a for a in argv[1:] if a.startswith("--config.")]
      print(
        f"{program}: error: the config has no field {e}; check the overrides "
        f"{overrides}",
        file=sys.stderr,
      )
      sys.exit(1)

  return parse
