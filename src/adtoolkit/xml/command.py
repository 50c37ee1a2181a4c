"""``adtoolkit xml``: validate, and build attributes/layout files from short specs.

    adtoolkit xml validate FILE...            attributes and layout files, cross-checked
    adtoolkit xml attributes SPEC [-o OUT]    build an attributes file from YAML/TOML
    adtoolkit xml layout SPEC [-o OUT]        build a layout file from YAML/TOML
    adtoolkit xml layout --nexus ATTRS.xml    NeXus layout placing those NDAttributes
    adtoolkit xml layout --default            ADCore's built-in layout

Problems are printed as ``file:line: severity: message``; the exit code is 1 when
there is any error (or any warning with ``--strict``), 2 for unusable input.
Built files are validated before they are written, and not written if invalid.
"""

from __future__ import annotations

import argparse
import sys

ATTRIBUTES_EXAMPLE = """\
example spec (YAML; TOML uses [[attributes]] tables with the same keys):
  attributes:
    - {name: Temp, pv: "IOC:temp", dbrtype: DBR_DOUBLE, description: sample temperature}
    - {name: Counter, param: ARRAY_COUNTER, datatype: INT}
    - {name: Pi, function: myAttrFunct1, arg: PI}
    - {name: Beamline, const: BL-1}
"""

LAYOUT_EXAMPLE = """\
example specs (YAML or TOML; paths are relative to the spec):
  nexus: {attributes: attrs.xml, placement: {Temp: detector}}
or
  groups:
    - name: entry
      nx_class: NXentry
      datasets:
        - {name: title, value: my run}
      groups:
        - name: instrument
          nx_class: NXinstrument
          datasets:
            - {name: data, source: detector, det_default: true}
            - {name: temperature, ndattribute: Temp, when: OnFileClose}
        - {name: data, nx_class: NXdata, hardlinks: {data: /entry/instrument/data}}
        - {name: meta, ndattr_default: true}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="xml_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("validate", help="check attributes and layout files against the IOC's rules")
    p.add_argument("files", nargs="+", metavar="FILE", help="attributes and layout XML files")
    p.add_argument("--strict", action="store_true", help="fail on warnings too")
    p.add_argument(
        "--ophyd",
        action="store_true",
        help="also warn when /entry/data/data (read by ophyd's AD_HDF5 handler) is not the detector data",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")

    p = sub.add_parser(
        "attributes",
        help="build an attributes file from a YAML/TOML spec",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=ATTRIBUTES_EXAMPLE,
    )
    p.add_argument("spec", metavar="SPEC", help="YAML (.yaml/.yml) or TOML (.toml) spec")
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write here (atomically) instead of printing"
    )

    p = sub.add_parser(
        "layout",
        help="build a layout file from a spec, or a ready-made one",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=LAYOUT_EXAMPLE,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "spec", nargs="?", metavar="SPEC", help="YAML (.yaml/.yml) or TOML (.toml) spec"
    )
    src.add_argument("--nexus", metavar="ATTRIBUTES", help="NeXus layout for this attributes file")
    src.add_argument("--default", action="store_true", help="ADCore's built-in default layout")
    p.add_argument(
        "--attributes",
        metavar="FILE",
        action="append",
        default=[],
        help="attributes file(s) to cross-check ndattribute= names against (repeatable)",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write here (atomically) instead of printing"
    )


def _print_problems(problems, quiet: bool = False) -> None:
    for problem in problems:
        if quiet and problem.severity != "error":
            continue
        print(problem, file=sys.stderr)


def _failed(problems, strict: bool = False) -> bool:
    return any(p.severity == "error" or strict for p in problems)


def _emit(model, output: str | None, problems) -> int:
    _print_problems(problems)
    if _failed(problems):
        print("not written: fix the errors above", file=sys.stderr)
        return 1
    if output:
        model.write(output)
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(model.to_xml())
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from adtoolkit.adcore.xmlreader import XMLParseError, XMLSecurityError
    from adtoolkit.xml.attributesfile import parse_attributes
    from adtoolkit.xml.spec import SpecError, attributes_from_spec, layout_from_spec, load_spec
    from adtoolkit.xml.validator import validate, validate_files
    from adtoolkit.xml.xmltext import XMLStructureError

    try:
        if args.xml_command == "validate":
            problems = validate_files(args.files, ophyd=args.ophyd)
            _print_problems(problems, args.quiet)
            failed = _failed(problems, args.strict)
            if not failed and not args.quiet:
                warnings = sum(p.severity != "error" for p in problems)
                tail = f", {warnings} warning(s)" if warnings else ""
                print(f"{len(args.files)} file(s): no errors{tail}", file=sys.stderr)
            return 1 if failed else 0

        if args.xml_command == "attributes":
            model = attributes_from_spec(load_spec(args.spec), where=args.spec)
            return _emit(model, args.output, validate(model))

        # layout
        names: list[str] = []
        for path in args.attributes:
            names += parse_attributes(path).names
        if args.nexus:
            attrs = parse_attributes(args.nexus)
            from adtoolkit.xml.layouts import nexus_layout_from_attributes

            model = nexus_layout_from_attributes(attrs)
            names += attrs.names
            have_names = True
        elif args.default:
            from adtoolkit.xml.layouts import default_layout

            model = default_layout()
            have_names = bool(args.attributes)
        else:
            spec_path = Path(args.spec)
            model = layout_from_spec(load_spec(spec_path), where=args.spec, base=spec_path.parent)
            have_names = bool(args.attributes)
        return _emit(model, args.output, validate(model, names if have_names else None))
    except (
        SpecError,
        XMLParseError,
        XMLSecurityError,
        XMLStructureError,
        FileNotFoundError,
    ) as exc:
        print(f"adtoolkit xml {args.xml_command}: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # a builder refused a value
        print(f"adtoolkit xml {args.xml_command}: {exc}", file=sys.stderr)
        return 2
