"""The cluster file: what it accepts, what it refuses (naming the entry and the fix), and its round trip."""

from __future__ import annotations

import pytest

from parm.serving.backends.remote.cluster import (Endpoint, dump_cluster, load_cluster, order_endpoints,
                                                  parse_cluster, pool_sizes)
from parm.serving.core.pools import BASE_POOL, parity_pool, pools_of_sizes

FILE = """
timeout_ms: 250
instances:
  - {pool: parity-0, url: grpc://127.0.0.1:9011, model: m-parity-0, timeout_ms: 40}
  - {pool: base, url: http://127.0.0.1:9001, model: m}
  - {pool: base, url: http://127.0.0.1:9002/, model: m, binary: false, input: x, output: y, version: 3}
"""


def test_a_cluster_file_reads_in_instance_order(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text(FILE)
    endpoints = load_cluster(path)
    assert [e.pool for e in endpoints] == [parity_pool(0), BASE_POOL, BASE_POOL]
    assert endpoints[0].scheme == "grpc" and endpoints[0].timeout_s == pytest.approx(0.040)
    assert endpoints[1].timeout_s == pytest.approx(0.250) and endpoints[1].binary
    third = endpoints[2]
    assert (third.url, third.binary, third.input, third.output, third.version) == (
        "http://127.0.0.1:9002", False, "x", "y", "3")
    assert third.address == ("127.0.0.1", 9002)
    ordered = order_endpoints(endpoints)
    assert [e.url for e in ordered] == ["http://127.0.0.1:9001", "http://127.0.0.1:9002", "grpc://127.0.0.1:9011"]
    assert pools_of_sizes("parm", pool_sizes(ordered), r=1) == {BASE_POOL: [0, 1], parity_pool(0): [2]}


def test_a_dumped_cluster_loads_back(tmp_path):
    endpoints = order_endpoints(parse_cluster({"instances": [
        {"pool": "base", "url": "http://127.0.0.1:1", "model": "a"},
        {"pool": "parity-1", "url": "http://127.0.0.1:2", "model": "b", "binary": False, "timeout_ms": 5}]}))
    path = tmp_path / "c.yaml"
    path.write_text(dump_cluster(endpoints, header="edit me\n\nthen serve"))
    assert path.read_text().startswith("# edit me\n#\n# then serve\n")
    assert load_cluster(path) == endpoints


@pytest.mark.parametrize(("doc", "message"), [
    ({}, "non-empty list `instances:`"),
    ({"instances": [], "timeout_ms": 5}, "non-empty list"),
    ({"instances": [{"pool": "base", "url": "http://h:1", "model": "m"}], "extra": 1}, "unknown top-level"),
    ({"instances": [{"pool": "base", "url": "http://h:1"}]}, "instances[0]: missing model"),
    ({"instances": [{"pool": "base", "url": "tcp://h:1", "model": "m"}]}, "http://HOST:PORT or grpc://HOST:PORT"),
    ({"instances": [{"pool": "base", "url": "http://h", "model": "m"}]}, "http://HOST:PORT"),
    ({"instances": [{"pool": "base", "url": "http://h:1/v2", "model": "m"}]}, "not a path"),
    ({"instances": [{"pool": "parity", "url": "http://h:1", "model": "m"}]}, "'base' or 'parity-J'"),
    ({"instances": [{"pool": "base", "url": "http://h:1", "model": "m", "binary": "yes"}]}, "true or false"),
    ({"instances": [{"pool": "base", "url": "http://h:1", "model": "m", "timeout_ms": 0}]}, "above 0"),
    ({"instances": [{"pool": "base", "url": "http://h:1", "model": "m", "port": 1}]}, "unknown key(s) ['port']"),
    ({"instances": [{"pool": "base", "url": "http://h:1", "model": "m"}], "timeout_ms": "fast"}, "timeout_ms must"),
])
def test_a_wrong_cluster_file_is_refused_naming_the_entry(doc, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                       .replace(")", r"\)")):
        parse_cluster(doc)


def test_a_missing_or_broken_file_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="parm export"):
        load_cluster(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("instances: [")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_cluster(tmp_path / "bad.yaml")


@pytest.mark.parametrize(("mode", "sizes", "message"), [
    ("parm", {BASE_POOL: 2}, "no instance of pool parity-0"),
    ("none", {BASE_POOL: 2, parity_pool(0): 1}, "pool parity-0 is not used by mode none"),
    ("parm", {BASE_POOL: 2, parity_pool(0): 1, parity_pool(1): 1}, "parity-1 is not used"),
])
def test_pools_must_be_the_modes_own(mode, sizes, message):
    with pytest.raises(ValueError, match=message):
        pools_of_sizes(mode, sizes, r=1)


def test_an_endpoint_writes_only_what_differs_from_the_defaults():
    endpoint = Endpoint(BASE_POOL, "http://127.0.0.1:1", "m")
    assert endpoint.to_dict() == {"pool": "base", "url": "http://127.0.0.1:1", "model": "m", "timeout_ms": 1000.0}
