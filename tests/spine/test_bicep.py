"""infra/*.bicep read as text (the Bicep compiler cannot be installed here): secrets are Key Vault
references resolved by the user-assigned identity, so a redeploy cannot blank them; the cleanup
role holds exactly what the ARM provider calls; host.json's timeout note matches the plan."""

from __future__ import annotations

import json
import re

from tests.spine.bicep_text import BicepFile
from tests.support import ROOT, doc

MAIN = BicepFile(ROOT / "infra" / "main.bicep")
SUBSCRIPTION = BicepFile(ROOT / "infra" / "modules" / "subscription-access.bicep")
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"  # built-in role id (Azure RBAC docs)
SECRETISH = re.compile(r"SECRET|TOKEN|PASSWORD|_KEY$|CONNECTION_STRING$")
# what each ARM SDK call of shared/cleanup/arm_provider.py needs (Azure RBAC resource provider operations)
ARM_CALLS = {
    "resource_groups.list": "Microsoft.Resources/subscriptions/resourceGroups/read",
    "management_locks.list_at_subscription_level": "Microsoft.Authorization/locks/read",
    "tags.begin_update_at_scope": "Microsoft.Resources/tags/write",
    "resource_groups.begin_delete": "Microsoft.Resources/subscriptions/resourceGroups/delete",
}


def app_settings() -> dict[str, str]:
    block = MAIN.resource("app").block("appSettings")
    pairs = re.findall(r"^\s*\{\s*name:\s*'([^']+)',\s*value:\s*(.+?)\s*\}\s*$", block, re.M)
    assert pairs, "no app settings found in siteConfig.appSettings"
    return dict(pairs)


class TestSecretsStayInKeyVault:
    def test_no_secret_value_in_site_config_only_key_vault_references_from_a_named_secret_parameter(self) -> None:
        settings = app_settings()
        # every secret the sample settings document must be deployed, or a redeploy would drop it
        assert {"MLFLOW_WEBHOOK_SECRET", "DATABRICKS_WEBHOOK_SECRET"} <= set(settings)
        params = MAIN.params()
        vault = MAIN.of_type("Microsoft.KeyVault/vaults")[0].symbol
        reference = re.compile(
            rf"^'@Microsoft\.KeyVault\(SecretUri=\$\{{{vault}\.properties\.vaultUri\}}secrets/\$\{{(\w+)\}}/\)'$"
        )
        for name, value in settings.items():
            if name == "APPLICATIONINSIGHTS_CONNECTION_STRING":
                continue  # not a secret (an ingestion endpoint + key id; Entra auth via AUTHENTICATION_STRING)
            if not SECRETISH.search(name):
                continue
            match = reference.match(value)
            assert match, f"{name} = {value}: a secret app setting must be a Key Vault reference"
            assert match.group(1) in params, f"{name}: the secret name must come from a parameter"
            assert params[match.group(1)] not in (None, "''"), f"{name}: the secret name parameter needs a default"
        assert "''" not in {settings[n] for n in settings if SECRETISH.search(n)}

    def test_references_resolve_with_the_user_assigned_identity_which_may_read_the_vault_secrets(self) -> None:
        [identity] = MAIN.of_type("Microsoft.ManagedIdentity/userAssignedIdentities")
        app = MAIN.resource("app")
        assert app.value("type") == "'UserAssigned'"
        assert f"'${{{identity.symbol}.id}}': {{}}" in app.block("userAssignedIdentities")
        assert app.value("keyVaultReferenceIdentity") == f"{identity.symbol}.id"

        [vault] = MAIN.of_type("Microsoft.KeyVault/vaults")
        assert vault.value("enableRbacAuthorization") == "true"
        grants = [
            d
            for d in MAIN.of_type("Microsoft.Authorization/roleAssignments")
            if "keyVaultSecretsUser" in d.body and d.value("scope") == vault.symbol
        ]
        [grant] = grants
        assert grant.value("principalId") == f"{identity.symbol}.properties.principalId"
        assert f"keyVaultSecretsUser: '{KEY_VAULT_SECRETS_USER}'" in MAIN.variable("roles")
        assert grant.symbol in app.block("dependsOn"), "the app must not start before it may read its secrets"


class TestCleanupRole:
    def test_the_custom_role_holds_exactly_the_actions_the_arm_provider_calls_and_the_docs_list(self) -> None:
        source = (ROOT / "shared" / "cleanup" / "arm_provider.py").read_text()
        calls = set(re.findall(r"\.((?:resource_groups|management_locks|tags)\.\w+)\(", source))
        assert calls == set(ARM_CALLS), "a new ARM call needs its action in the role, docs/actions.md and ARM_CALLS"

        [role] = SUBSCRIPTION.of_type("Microsoft.Authorization/roleDefinitions")
        actions = re.findall(r"'([^']+)'", role.block("actions"))
        assert sorted(actions) == sorted(ARM_CALLS.values())
        assert re.findall(r"'([^']+)'", role.block("notActions")) == []

        [paragraph] = re.findall(r"The identity needs (.+?) and\s+nothing else", doc("actions.md"), re.S)
        assert sorted(re.findall(r"`([^`]+)`", paragraph)) == sorted(ARM_CALLS.values())

    def test_nothing_broader_than_the_custom_role_is_assigned_on_the_subscription(self) -> None:
        [assignment] = SUBSCRIPTION.of_type("Microsoft.Authorization/roleAssignments")
        [role] = SUBSCRIPTION.of_type("Microsoft.Authorization/roleDefinitions")
        assert assignment.value("roleDefinitionId") == f"{role.symbol}.id"


class TestHostTimeout:
    def test_the_timeout_note_matches_the_flex_consumption_plan_the_bicep_deploys(self) -> None:
        [plan] = MAIN.of_type("Microsoft.Web/serverfarms")
        assert plan.value("tier") == "'FlexConsumption'"
        timeout = json.loads((ROOT / "host.json").read_text())["functionTimeout"]
        [row] = [line for line in doc("azure.md").splitlines() if line.startswith("| `functionTimeout`")]
        assert f"`{timeout}`" in row and "Flex Consumption" in row
        assert "Consumption maximum" not in row  # 10 min is the old Consumption plan's cap, not Flex's
