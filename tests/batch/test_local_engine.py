"""The embedded batch engine on a real registered MLflow model."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared.batch.local_engine import InputError, score
from shared.batch.progress import TerminalProgress
from shared.errors import PermanentError
from shared.executors.batch_local import LocalBatchExecutor
from tests.batch.conftest import batch_context, make_frame


class TestLocalExecutor:
    def test_parquet_input_is_scored_like_pyfunc_predict(self, tmp_path, registered_model, reference_predict):
        frame = make_frame(10_000, seed=7)
        frame.to_parquet(tmp_path / "input.parquet", row_group_size=3_000)
        messages: list[str] = []
        ctx = batch_context(
            tmp_path,
            f"kind: local\ninput: {tmp_path / 'input.parquet'}\n"
            f"output: {tmp_path / 'out' / 'scored-{model_version}.parquet'}\nbatch_rows: 1024",
            registered_model,
            progress=messages.append,
        )

        outcome = LocalBatchExecutor().execute(ctx)

        output = tmp_path / "out" / f"scored-{registered_model.version}.parquet"
        assert outcome.recheck_after_seconds is None
        assert outcome.outputs.to_dict()["rows"] == 10_000
        assert outcome.outputs.to_dict()["output"] == str(output.resolve())
        assert outcome.outputs.to_dict()["model_uri"] == registered_model.ref.uri
        scored = pq.read_table(output).to_pandas()
        assert scored["row_id"].tolist() == list(range(10_000))  # order and count preserved
        np.testing.assert_array_equal(scored["prediction"].to_numpy(), reference_predict(frame))
        assert set(scored["model_version"]) == {registered_model.version}
        footer = pq.read_metadata(output).metadata
        assert footer[b"modelops.model_name"] == registered_model.name.encode()
        assert footer[b"modelops.model_version"] == registered_model.version.encode()
        assert messages[-1].startswith("scored 10,000 of 10,000 rows")
        assert not [p for p in output.parent.iterdir() if p.name.endswith(".tmp")]

    def test_csv_input_is_scored_like_pyfunc_predict(self, tmp_path, registered_model, reference_predict):
        frame = make_frame(5_000, seed=3)
        frame.to_csv(tmp_path / "input.csv", index=False)
        ctx = batch_context(
            tmp_path,
            f"kind: local\ninput: {tmp_path / 'input.csv'}\noutput: {tmp_path / 'scored.parquet'}\nbatch_rows: 700",
            registered_model,
        )

        outcome = LocalBatchExecutor().execute(ctx)

        scored = pq.read_table(tmp_path / "scored.parquet").to_pandas()
        assert outcome.outputs.to_dict()["rows"] == 5_000
        assert scored["row_id"].tolist() == list(range(5_000))
        np.testing.assert_array_equal(scored["prediction"].to_numpy(), reference_predict(frame))

    def test_a_retry_after_a_finished_write_reuses_the_output(self, tmp_path, registered_model):
        make_frame(2_000).to_parquet(tmp_path / "input.parquet")
        target = f"kind: local\ninput: {tmp_path / 'input.parquet'}\noutput: {tmp_path / 'o.parquet'}"
        first = LocalBatchExecutor().execute(batch_context(tmp_path, target, registered_model))
        written = (tmp_path / "o.parquet").stat().st_mtime_ns

        again = LocalBatchExecutor().execute(batch_context(tmp_path, target, registered_model))

        assert again.outputs.to_dict()["reused"] is True
        assert again.outputs.to_dict()["rows"] == first.outputs.to_dict()["rows"] == 2_000
        assert (tmp_path / "o.parquet").stat().st_mtime_ns == written

    def test_input_missing_a_model_column_fails_with_a_clear_message(self, tmp_path, registered_model):
        make_frame(100).drop(columns=["f2"]).to_parquet(tmp_path / "input.parquet")
        ctx = batch_context(
            tmp_path,
            f"kind: local\ninput: {tmp_path / 'input.parquet'}\noutput: {tmp_path / 'o.parquet'}",
            registered_model,
        )

        with pytest.raises(PermanentError, match="f2"):
            LocalBatchExecutor().execute(ctx)
        assert not list(tmp_path.glob("*o.parquet*"))  # no half file left behind

    def test_missing_input_is_a_permanent_error_naming_the_path(self, tmp_path, registered_model):
        ctx = batch_context(
            tmp_path,
            f"kind: local\ninput: {tmp_path / 'nope.parquet'}\noutput: {tmp_path / 'o.parquet'}",
            registered_model,
        )
        with pytest.raises(PermanentError, match="nope.parquet"):
            LocalBatchExecutor().execute(ctx)


class _Doubler:
    def predict(self, data):
        return data["x"].to_numpy() * 2


class TestEngine:
    def test_directory_of_parquet_files_is_read_in_name_order(self, tmp_path):
        folder = tmp_path / "in"
        folder.mkdir()
        for part in range(3):
            rows = pa.table({"x": np.arange(part * 10, part * 10 + 10)})
            pq.write_table(rows, folder / f"part-{part:05d}.parquet")
        (folder / "_SUCCESS").write_text("")
        seen: list[tuple[int, int | None]] = []

        result = score(
            _Doubler(),
            folder,
            tmp_path / "o.parquet",
            model_version="1",
            batch_rows=4,
            progress=lambda done, total: seen.append((done, total)),
        )

        assert result.rows == 30
        assert pq.read_table(tmp_path / "o.parquet")["prediction"].to_pylist() == [2 * i for i in range(30)]
        assert seen[-1] == (30, 30)

    def test_an_input_column_named_prediction_is_refused(self, tmp_path):
        pq.write_table(pa.table({"x": [1], "prediction": [0]}), tmp_path / "i.parquet")
        with pytest.raises(InputError, match="prediction"):
            score(_Doubler(), tmp_path / "i.parquet", tmp_path / "o.parquet", model_version="1")

    def test_a_failure_mid_stream_keeps_the_previous_output(self, tmp_path):
        pq.write_table(pa.table({"x": np.arange(10)}), tmp_path / "i.parquet")
        score(_Doubler(), tmp_path / "i.parquet", tmp_path / "o.parquet", model_version="1")

        class FailsOnSecondBatch:
            calls = 0

            def predict(self, data):
                self.calls += 1
                if self.calls == 2:
                    raise ValueError("boom")
                return data["x"].to_numpy()

        with pytest.raises(InputError, match="boom"):
            score(FailsOnSecondBatch(), tmp_path / "i.parquet", tmp_path / "o.parquet", model_version="2", batch_rows=5)
        assert pq.read_table(tmp_path / "o.parquet")["model_version"].to_pylist() == ["1"] * 10
        assert sorted(p.name for p in tmp_path.iterdir()) == ["i.parquet", "o.parquet"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestTerminalProgress:
    def test_on_a_terminal_row_messages_redraw_one_bar_line(self):
        out = _Terminal()
        with TerminalProgress(out, width=10, min_interval=0) as bar:
            bar("starting Databricks run 42")
            bar("scored 5 of 10 rows (50%, 5 rows/s)")
            bar("scored 10 of 10 rows (100%, 5 rows/s)")
        frames = out.getvalue().split("\r")
        assert frames[1] == "starting Databricks run 42\x1b[K"
        assert frames[2] == "[#####-----] scored 5 of 10 rows (50%, 5 rows/s)\x1b[K"
        assert frames[3].startswith("[##########] scored 10 of 10 rows")
        assert out.getvalue().endswith("\n")

    def test_in_a_log_file_lines_are_throttled_but_the_last_one_is_kept(self):
        out = io.StringIO()
        bar = TerminalProgress(out, width=10)
        for done in range(1, 11):
            bar(f"scored {done} of 10 rows")
        lines = out.getvalue().splitlines()
        assert lines == ["[#---------] scored 1 of 10 rows", "[##########] scored 10 of 10 rows"]
