"""Who refused resolving an Azure ML workspace through ARM, and the fix: ARM rejecting a token Entra
issued (401 InvalidAuthenticationToken) is not Entra refusing the credential."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.adapters.azureml_workspace import mlflow_tracking_uri
from shared.config.registries import AzureMLRegistry
from shared.errors import PermanentError
from shared.local.mlflow_server import MlflowServer
from tests.contract.credentials import RefusingCredential, StaticTokenCredential
from tests.contract.https import TestCA
from tests.registries.conftest import AmlWorkspace, entra_like_token, register_context
from tests.registries.test_azureml_target import _config, _params


def refusal(tmp_path: Path, source: MlflowServer, aml: AmlWorkspace, credential: object) -> str:
    ctx = register_context(tmp_path, _config(source, aml), "m", "1", _params(source))
    with pytest.raises(PermanentError) as refused:
        mlflow_tracking_uri(ctx.target(AzureMLRegistry), credential=credential)
    return str(refused.value)


def test_arm_rejecting_an_issued_token_names_audience_and_tenant(
    aml: AmlWorkspace, trust_test_ca: TestCA, tmp_path: Path, source_server: MlflowServer
) -> None:
    other_tenant = StaticTokenCredential(entra_like_token("99999999-0000-0000-0000-000000000000"))
    text = refusal(tmp_path, source_server, aml, other_tenant)
    assert "rejected the access token Entra issued (InvalidAuthenticationToken" in text
    assert "audience" in text and "tenant" in text and "Entra (the identity provider)" not in text


def test_entra_refusing_the_credential_names_entra_and_the_credential(
    aml: AmlWorkspace, trust_test_ca: TestCA, tmp_path: Path, source_server: MlflowServer
) -> None:
    text = refusal(tmp_path, source_server, aml, RefusingCredential())
    assert "Entra (the identity provider) refused the credential" in text and "AADSTS7000215" in text
    assert "rejected the access token" not in text
