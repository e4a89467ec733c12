"""Who refused an Azure ML online endpoint call, and the fix: the service rejecting the token (401)
vs Entra refusing the credential, against the online-endpoint contract server."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import PermanentError
from tests.contract.aml_online_server import AmlOnlineContract
from tests.contract.credentials import RefusingCredential, StaticTokenCredential
from tests.deploy.conftest import Registry
from tests.deploy.test_deploy_online import online_config, run


@pytest.mark.parametrize("who", ["service", "entra"])
def test_a_refused_call_names_who_refused_and_the_fix(
    aml: AmlOnlineContract, registry: Registry, tmp_path: Path, who: str
) -> None:
    config = online_config(tmp_path, aml)
    credential = StaticTokenCredential("expired-token") if who == "service" else RefusingCredential()
    with pytest.raises(PermanentError) as refused:
        run(config, tmp_path, registry, "churn-auth", registry.log_sklearn("churn-auth"), credential=credential)  # type: ignore[arg-type]
    text = str(refused.value)
    if who == "service":
        assert "Azure ML rejected the access token Entra issued (AuthenticationFailed" in text
        assert "Entra (the identity provider)" not in text
    else:
        assert "Entra (the identity provider) refused the credential" in text and "AADSTS7000215" in text
        assert "rejected the access token" not in text
    assert aml.endpoints == {}
