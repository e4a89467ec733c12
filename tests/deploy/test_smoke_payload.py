"""MLflow scoring JSON -> Azure ML `input_data`, the shape the online / v1 scoring scripts read."""

from __future__ import annotations

from shared.adapters.smoke import to_azureml_payload


def test_dataframe_split_gets_an_index() -> None:
    out = to_azureml_payload({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}})
    assert out == {"input_data": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]], "index": [0, 1]}}


def test_records_become_split_and_params_are_kept() -> None:
    out = to_azureml_payload({"dataframe_records": [{"a": 1, "b": 2}, {"b": 4, "a": 3}], "params": {"k": 1}})
    assert out == {"input_data": {"columns": ["a", "b"], "index": [0, 1], "data": [[1, 2], [3, 4]]}, "params": {"k": 1}}


def test_tensors_pass_through() -> None:
    assert to_azureml_payload({"inputs": [[1.0, 2.0]]}) == {"input_data": [[1.0, 2.0]]}
    assert to_azureml_payload({"instances": {"x": [1]}}) == {"input_data": {"x": [1]}}
    assert to_azureml_payload({"input_data": [1]}) == {"input_data": [1]}
