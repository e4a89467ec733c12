"""Artifact transfer of a register copy against a real `mlflow server`: files fetched in parallel,
a big one in ranged GETs written in place, byte for byte; a local target store gets hard links."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from shared.adapters import artifact_transfer, http_splice
from shared.local.mlflow_server import MlflowServer


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def logged_run(mlflow_server: MlflowServer, tmp_path: Path) -> tuple[str, Path]:
    """A run whose artifacts are a directory with a big file (in ranges), a small one and a nested one."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_server.url)
    experiment = client.create_experiment(f"transfer-{os.urandom(4).hex()}")
    run = client.create_run(experiment)
    source = tmp_path / "source" / "model"
    (source / "nested").mkdir(parents=True)
    (source / "weights.bin").write_bytes(os.urandom(600_000))  # not a multiple of the range size
    (source / "MLmodel").write_text("flavors: {}\n")
    (source / "nested" / "empty.txt").write_bytes(b"")
    client.log_artifacts(run.info.run_id, str(source), artifact_path="model")
    return f"{client.get_run(run.info.run_id).info.artifact_uri}/model", source


class TestDownload:
    def test_files_come_byte_for_byte_with_the_big_one_in_ranges(
        self, logged_run: tuple[str, Path], mlflow_server: MlflowServer, tmp_path: Path, monkeypatch
    ) -> None:  # type: ignore[no-untyped-def]
        uri, source = logged_run
        monkeypatch.setattr(artifact_transfer, "RANGE_BYTES", 64 * 1024)  # 600 kB -> 10 ranged GETs
        ranges: list[str] = []
        fetch = artifact_transfer._fetch

        def counting(part):  # type: ignore[no-untyped-def]
            if part.start is not None:
                ranges.append(part.path)
            fetch(part)

        monkeypatch.setattr(artifact_transfer, "_fetch", counting)
        spliced: list[int] = []
        splice = http_splice._splice

        def spy(raw, sock, fd, offset, length):  # type: ignore[no-untyped-def]
            spliced.append(length)
            return splice(raw, sock, fd, offset, length)

        monkeypatch.setattr(http_splice, "_splice", spy)
        local = artifact_transfer.download(uri, tmp_path / "dl", mlflow_server.url)
        got = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
        assert got == ["MLmodel", "nested/empty.txt", "weights.bin"]
        for name in got:
            assert _digest(local / name) == _digest(source / name), name
        assert len(ranges) == 10 and set(ranges) == {"weights.bin"}
        # plain HTTP on Linux: every body (the 10 ranges and the 2 small files) spliced, none through Python
        assert sorted(spliced) == sorted([64 * 1024] * 9 + [600_000 - 9 * 64 * 1024, 12, 0])

    def test_a_runs_uri_comes_as_mlflow_downloads_it_run_files_and_logged_model_alike(
        self, mlflow_server: MlflowServer, tmp_path: Path, monkeypatch
    ) -> None:  # type: ignore[no-untyped-def]
        """`runs:/RUN/model` (a version registered from a run) is what the copy downloads: MLflow 3
        gives the run's artifacts under `model/` overlaid by the run's logged model `model`; the ranged
        transfer must serve that URI (it once fell back to MLflow's single-stream GETs for it)."""
        import mlflow

        from tests.support import train_and_register

        name = f"transfer-{os.urandom(3).hex()}"
        version, _ = train_and_register(mlflow_server.url, name, pip_requirements=["scikit-learn"])
        client = mlflow.MlflowClient(tracking_uri=mlflow_server.url)
        run_id = client.get_model_version(name, version).run_id
        assert run_id is not None
        extra = tmp_path / "extra"
        extra.mkdir()
        (extra / "weights.bin").write_bytes(os.urandom(300_000))
        (extra / "MLmodel").write_text("run copy, replaced by the logged model's\n")
        client.log_artifacts(run_id, str(extra), artifact_path="model")
        uri = f"runs:/{run_id}/model"
        # MLflow looks the logged model up through the global registry URI (ModelsArtifactRepository),
        # and quietly leaves it out when that is another server; set it for the reference download
        with monkeypatch.context() as env:
            env.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
            theirs = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "mlflow")))
        monkeypatch.setattr(artifact_transfer, "RANGE_BYTES", 64 * 1024)
        ranged: list[str] = []
        fetch = artifact_transfer._fetch

        def counting(part):  # type: ignore[no-untyped-def]
            if part.start is not None:
                ranged.append(part.path)
            fetch(part)

        monkeypatch.setattr(artifact_transfer, "_fetch", counting)
        ours = artifact_transfer.download(uri, tmp_path / "ours", mlflow_server.url)

        def files(root: Path) -> dict[str, str]:
            # MLflow adds registered_model_meta (name and version: null for a logged model); a copy needs none
            found = {str(p.relative_to(root)): _digest(p) for p in root.rglob("*") if p.is_file()}
            found.pop("registered_model_meta", None)
            return found

        assert files(ours) == files(theirs)
        assert (
            "weights.bin" in files(ours)
            and (ours / "MLmodel").read_text() != "run copy, replaced by the logged model's\n"
        )
        assert set(ranged) == {"weights.bin"} and len(ranged) == 5  # 300 kB in 64 kB ranges


class TestUpload:
    def test_a_local_target_store_gets_hard_links_of_the_downloaded_files(self, tmp_path: Path) -> None:
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'target.db'}")
        experiment = client.create_experiment("target", artifact_location=(tmp_path / "art").as_uri())
        run_id = client.create_run(experiment).info.run_id
        local = tmp_path / "downloaded"
        (local / "sub").mkdir(parents=True)
        (local / "a.bin").write_bytes(b"a" * 1000)
        (local / "sub" / "b.txt").write_text("b")
        artifact_transfer.upload(client, run_id, local, "model")
        listed = sorted(f.path for f in client.list_artifacts(run_id, "model"))
        assert listed == ["model/a.bin", "model/sub"]
        stored = next((tmp_path / "art").rglob("a.bin"))
        assert stored.read_bytes() == b"a" * 1000
        assert os.stat(stored).st_ino == os.stat(local / "a.bin").st_ino  # linked, not copied
