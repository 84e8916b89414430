"""`make docs` builds the API reference of the public names without a warning: the configuration, the golden
model, the RTL and its IP packaging, the verification launcher, the training layers and kernels; the command
line and internal modules stay out of it."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_make_docs_builds_the_public_api_without_warnings(tmp_path):
    out = tmp_path / "api"
    # Set-up first, on its own: pip's messages about package indexes are not the API reference's warnings.
    setup = subprocess.run(["make", "-s", "setup"], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert setup.returncode == 0, setup.stderr[-3000:]
    res = subprocess.run(["make", "-s", "docs", f"API_DIR={out}"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "warn" not in (res.stdout + res.stderr).lower(), res.stdout + res.stderr
    pages = {p.relative_to(out).as_posix() for p in out.rglob("*.html")}
    for page, name in [("essop/config.html", "EssopConfig"), ("essop/hdl/array.html", "EssopArray"),
                       ("essop/golden/array.html", "EssopArrayModel"), ("essop/training/layers.html", "convert"),
                       ("essop/hdl/ip.html", "write_ip"), ("essop/sim/runner.html", "run_cocotb"),
                       ("essop/formal/proofs.html", "PROOFS"), ("essop/golden/faults.html", "FaultPlan")]:
        assert page in pages
        assert f'id="{name}"' in (out / page).read_text()          # a documented member, not source text
    # Internals and the command line are not part of the reference.
    assert not any(p.startswith(("essop/app", "essop/training/native", "essop/training/campaign",
                                 "essop/sim/tb_")) for p in pages)
    # A name a module keeps private (no __all__ entry) is not documented (its source may still be shown).
    assert 'id="_ConvGeometry"' not in (out / "essop/training/layers.html").read_text()
