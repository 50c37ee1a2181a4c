"""docker/ files agree with each other and with the README.

There is no docker engine on CI, so these tests read the files instead of running
them: the compose services, published ports, volume mappings and PV prefixes must
match the Dockerfile, the ibek IOC configuration of the real ADSimDetector, and the
commands the README tells users to type.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
ADSIM_CONFIG = DOCKER / "adsim" / "config" / "ioc.yaml"
README = ROOT / "README.md"

#: README heading of each service's instructions -> compose service name
README_SECTIONS = {
    "Real ADSimDetector (docker)": "adsim",
    "adtoolkit's simulated IOC (docker)": "adtoolkit-ioc",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _volumes(service: dict) -> list[tuple[str, str]]:
    """(host path, container path) of each bind mount, relative hosts resolved."""
    pairs = []
    for entry in service.get("volumes", []):
        host, container = entry.split(":")[:2]
        if host.startswith("."):
            host = str((COMPOSE.parent / host).resolve())
        pairs.append((host, container))
    return pairs


def _data_volume(service: dict) -> tuple[str, str]:
    data = [(h, c) for h, c in _volumes(service) if c.startswith("/data/")]
    assert len(data) == 1, f"expected one /data/ volume in {service}"
    return data[0]


def _ports(service: dict) -> set[tuple[str, int, int, str]]:
    """(host ip, host port, container port, protocol) of each published port."""
    published = set()
    for entry in service["ports"]:
        spec, _, proto = entry.partition("/")
        ip, host, container = spec.split(":")
        published.add((ip, int(host), int(container), proto or "tcp"))
    return published


def _readme_section(title: str) -> str:
    text = README.read_text()
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ )", text, re.S | re.M)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def _readme_exports(title: str) -> dict[str, str]:
    block = re.search(r"```bash\n(.*?)```", _readme_section(title), re.S)
    assert block, f"README section {title!r} has no bash block"
    env: dict[str, str] = {}
    for line in block.group(1).splitlines():
        words = shlex.split(line)
        if words[:1] == ["export"]:
            env.update(word.split("=", 1) for word in words[1:])
    return env


def _readme_commands(title: str) -> list[list[str]]:
    block = re.search(r"```bash\n(.*?)```", _readme_section(title), re.S)
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


def _dockerfile_cmd() -> list[str]:
    cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE.read_text(), re.M)
    assert cmd, "Dockerfile has no exec-form CMD"
    return yaml.safe_load(cmd.group(1))  # a JSON list is valid YAML


def _option(argv: list[str], name: str) -> str:
    assert name in argv, f"{name} missing from {argv}"
    return argv[argv.index(name) + 1]


def _adsim_prefixes() -> dict[str, str]:
    """entity type -> full PV prefix (P + R) in the ibek IOC configuration."""
    config = yaml.safe_load(ADSIM_CONFIG.read_text())
    return {e["R"].strip(":"): e["P"] + e["R"] for e in config["entities"]}


def test_services_exist(compose):
    assert set(compose["services"]) == {"adsim", "adtoolkit-ioc"}
    assert set(README_SECTIONS.values()) == set(compose["services"])


def test_real_adsimdetector_uses_a_pinned_maintained_image(compose):
    image = compose["services"]["adsim"]["image"]
    name, _, tag = image.partition(":")
    assert name == "ghcr.io/epics-containers/ioc-adsimdetector-runtime"
    assert tag and tag != "latest"
    assert image in README.read_text()


def test_adsim_config_is_mounted_where_ibek_reads_it(compose):
    volumes = _volumes(compose["services"]["adsim"])
    assert (str(ADSIM_CONFIG.parent), "/epics/ioc/config") in volumes
    config = yaml.safe_load(ADSIM_CONFIG.read_text())
    types = [e["type"] for e in config["entities"]]
    assert types.count("ADSimDetector.simDetector") == 1
    assert "ADCore.NDFileHDF5" in types and "ADCore.NDStdArrays" in types


@pytest.mark.parametrize("title,service", README_SECTIONS.items())
def test_ports_are_loopback_same_number_tcp_and_udp(compose, title, service):
    ports = _ports(compose["services"][service])
    assert {ip for ip, *_ in ports} == {"127.0.0.1"}
    assert all(host == container for _, host, container, _ in ports)
    (port,) = {host for _, host, _, _ in ports}
    assert {proto for *_, proto in ports} == {"tcp", "udp"}
    env = _readme_exports(title)
    assert env["EPICS_CA_ADDR_LIST"] == f"127.0.0.1:{port}"
    assert env["EPICS_CA_AUTO_ADDR_LIST"] == "NO"
    # the IOC inside listens on that port
    if service == "adsim":
        server_port = compose["services"][service]["environment"]["EPICS_CA_SERVER_PORT"]
    else:
        server_port = _option(_dockerfile_cmd(), "--port")
    assert int(server_port) == port


def test_the_two_iocs_can_run_side_by_side(compose):
    ports = [{h for _, h, _, _ in _ports(s)} for s in compose["services"].values()]
    assert not ports[0] & ports[1]
    data = [_data_volume(s) for s in compose["services"].values()]
    assert data[0][0] != data[1][0]
    prefixes = {_readme_exports(title)["ADTOOLKIT_IOC_PREFIX"] for title in README_SECTIONS}
    assert len(prefixes) == 2


@pytest.mark.parametrize("title,service", README_SECTIONS.items())
def test_data_directory_mapping_matches_readme(compose, title, service):
    host, container = _data_volume(compose["services"][service])
    assert host != container, "the point is two different paths"
    env = _readme_exports(title)
    assert env["ADTOOLKIT_IOC_WRITE_ROOT"] == container
    assert env["ADTOOLKIT_READ_ROOT"] == host
    assert ["mkdir", "-p", host] in _readme_commands(title)
    compose_cmd = ["docker", "compose", "-f", "docker/compose.yaml", "up", "-d"]
    assert any(c[:6] == compose_cmd and c[-1] == service for c in _readme_commands(title))


def test_real_adsim_prefix_matches_readme():
    prefixes = _adsim_prefixes()
    prefix = _readme_exports("Real ADSimDetector (docker)")["ADTOOLKIT_IOC_PREFIX"]
    # plugin names the device layer (and apstools) expect under the prefix
    for plugin in ("cam1", "image1", "HDF1"):
        assert prefixes[plugin] == f"{prefix}{plugin}:"
    assert f"adtoolkit demo --prefix {prefix}" in _readme_section("Real ADSimDetector (docker)")


def test_simulated_ioc_container_matches_compose_and_readme(compose):
    service = compose["services"]["adtoolkit-ioc"]
    build = service["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    cmd = _dockerfile_cmd()
    assert cmd[:2] == ["adtoolkit", "ioc"]
    # loopback inside a container is unreachable from the host
    assert _option(cmd, "--interfaces") == "0.0.0.0"
    env = _readme_exports("adtoolkit's simulated IOC (docker)")
    assert _option(cmd, "--prefix") == env["ADTOOLKIT_IOC_PREFIX"]
    _, container = _data_volume(service)
    assert _option(cmd, "--write-root") == container

    dockerfile = DOCKERFILE.read_text()
    (port,) = {h for _, h, _, _ in _ports(service)}
    assert re.search(rf"^EXPOSE {port}/tcp {port}/udp$", dockerfile, re.M)
    assert re.search(r"^FROM python:3\.11", dockerfile, re.M)
    # everything the image COPYs exists in the build context
    for sources in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for source in sources.split():
            assert (ROOT / source).exists(), source


def test_container_command_is_accepted_by_adtoolkit_ioc():
    from adtoolkit import cli

    parser = cli.build_parser()
    cmd = _dockerfile_cmd()
    args, _ = parser.parse_known_args(cmd[1:2])
    if args._module is None:
        pytest.skip(f"{args._missing} is not on this branch yet")
    args = parser.parse_args(cmd[1:])  # argparse exits (SystemExit) on an unknown option
    assert args.prefix == "adt:"
    assert args.interfaces in (["0.0.0.0"], "0.0.0.0")
