"""The testbed for real: built in its sandbox, its links timed, queries served through it, torn down.

Needs root and namespaces (CI runs as root); skipped with the reason where they are not permitted.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from parm.testbed import sandbox
from parm.testbed.network import Testbed
from parm.workload.links import LinkSpec

REASON = sandbox.unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def test_a_check_serves_every_query_on_links_of_the_given_rate_and_leaves_nothing(tmp_path) -> None:
    out = tmp_path / "check.json"
    done = subprocess.run([sys.executable, "-m", "parm", "testbed", "check", "--hosts", "3", "--rate-mbit", "200",
                           "--queries", "100", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert 0.7 * 200 <= report["transfer"]["mbit_per_s"] <= 1.05 * 200  # goodput of a shaped 200 Mbit/s link
    assert report["serving"]["answered"] == 100 and report["serving"]["shuffled_mb"] > 0
    assert all(url.startswith("http://10.77.0.") for url in report["serving"]["endpoints"])
    assert report["left_after_down"] == []
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "parm-h" not in names  # nothing of it ever existed outside its sandbox


def test_up_is_idempotent_and_down_removes_everything() -> None:
    script = (
        "from parm.testbed import sandbox; from parm.testbed.network import Testbed, LinkSpec; import json\n"
        "sandbox.prepare(); bed = Testbed(2, LinkSpec(100.0, 'tbf', 20))\n"
        "bed.up(); bed.up(); built = sorted(bed.leftovers()); bed.down(); bed.down()\n"
        "print(json.dumps([built, bed.leftovers()]))\n")
    done = subprocess.run(sandbox.sandboxed(["-c", script]), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    built, left = json.loads(done.stdout.splitlines()[-1])
    assert built == ["parm-br", "parm-h0", "parm-h1", "parm-v0", "parm-v1"]  # the hosts' own ends live inside them
    assert left == []


@pytest.mark.parametrize(("link", "message"), [(LinkSpec(qdisc="tbf", limit=50), "tbf"),
                                               (LinkSpec(qdisc="pfifo", limit=100), "limit 100")])
def test_a_link_is_shaped_both_ways_with_its_queue(link: LinkSpec, message: str) -> None:
    commands = " ".join(" ".join(c) for c in link.commands("dev0"))
    assert message in commands and "1000mbit" in commands


def test_a_queue_this_kernel_lacks_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="pfifo, bfifo, tbf"):
        LinkSpec(qdisc="fq_codel")
    with pytest.raises(ValueError, match="1 to 200 hosts"):
        Testbed(0)
