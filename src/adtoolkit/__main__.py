"""Allow ``python -m adtoolkit`` as an alias of the ``adtoolkit`` command."""

from adtoolkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
