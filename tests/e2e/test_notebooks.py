"""The data engineers' notebooks: stored without outputs, and every cell runs on a sample lake."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

PROJECT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((PROJECT / "notebooks").glob("*.ipynb"))
# Text each notebook must print when it worked on a real lake (not only "no error").
EXPECTED_TEXT = {
    "01_explore_lake.ipynb": "orders added by version",
    "02_rfm_segments.ipynb": "customers with a purchase in the look-back window",
    "03_recommendations.ipynb": "recommendations from model",
}


def test_there_are_the_three_notebooks():
    assert [p.name for p in NOTEBOOKS] == sorted(EXPECTED_TEXT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    dirty = [i for i, cell in enumerate(code) if cell.outputs or cell.execution_count is not None]
    assert not dirty, f"{path.name}: code cells {dirty} hold outputs; clear them before committing"


def _kernel_manager(spec_root: Path) -> AsyncKernelManager:
    """A kernel on this interpreter (the project's venv), whatever kernels the machine has registered."""
    spec_dir = spec_root / "o2o-venv"
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "o2o venv",
                "language": "python",
            }
        )
    )
    specs = KernelSpecManager(kernel_dirs=[str(spec_root)], ensure_native_kernel=False)
    return AsyncKernelManager(kernel_name="o2o-venv", kernel_spec_manager=specs)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_the_sample_lake(path, trained_sample_lake, tmp_path):
    nb = nbformat.read(path, as_version=4)
    kernel = _kernel_manager(tmp_path / "kernels")
    client = NotebookClient(
        nb,
        km=kernel,
        timeout=900,  # per cell; the machine may be shared
        startup_timeout=180,
        resources={"metadata": {"path": str(path.parent)}},
    )
    env = {**os.environ, **trained_sample_lake.env()}
    try:
        # A client given its kernel manager leaves the kernel running by default: its JVM (1 GiB heap)
        # stayed up until the test process ended, three of them by the last notebook.
        client.execute(env=env, cleanup_kc=True)
    finally:
        # Keep what ran for a person to open when something failed.
        nbformat.write(nb, tmp_path / path.name)
    assert not kernel.has_kernel, "the notebook's kernel (and its Spark JVM) is still running"

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code), f"{path.name}: not every cell ran"
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0].ename}: {errors[0].evalue}"
    printed = "\n".join(
        out.get("text", "") if out.output_type == "stream" else json.dumps(out.get("data", {}))
        for cell in code
        for out in cell.outputs
    )
    assert EXPECTED_TEXT[path.name] in printed, f"{path.name} did not print {EXPECTED_TEXT[path.name]!r}"
