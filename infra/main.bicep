// modelops-reactor on Azure Functions (Flex Consumption, Python 3.11), identity-based throughout:
// storage (host + ledger Table + action queue), a user-assigned managed identity with its roles,
// Application Insights, an optional outcome Event Grid topic, a Key Vault holding the webhook
// secrets (app settings are Key Vault references only, resolved with the user-assigned identity),
// and the AML workspace's system topic subscription to the native `aml_events` function.
//
// siteConfig.appSettings REPLACES every app setting on each deployment: a secret set by hand with
// `az functionapp config appsettings set` would be blanked by the next redeploy. So no secret value
// is ever written here; each secret setting is a Key Vault reference built from a parameter naming
// the vault secret, and the value lives (and survives redeploys) in the vault.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p appName=... workspaceName=... ...
targetScope = 'resourceGroup'

@description('Function app name (globally unique); also the prefix of the other resources.')
@minLength(3)
@maxLength(40)
param appName string

param location string = resourceGroup().location

@description('Storage account name: 3-24 lowercase letters and digits, globally unique.')
@maxLength(24)
param storageAccountName string = take(toLower(replace('${appName}st${uniqueString(resourceGroup().id)}', '-', '')), 24)

@description('Azure ML workspace whose events drive the reactor and where models are registered.')
param workspaceName string

@description('Resource group of the Azure ML workspace (defaults to this one).')
param workspaceResourceGroup string = resourceGroup().name

@description('Create the Event Grid subscription to aml_events: needs the code published first.')
param deployEventSubscription bool = false

@description('Give the identity the cleanup role (four actions, see modules/subscription-access.bicep) on this subscription.')
param grantCleanupOnSubscription bool = true

@description('Create an Event Grid topic for outcome events (CloudEvents, Entra auth only).')
param createOutcomeTopic bool = true

@description('NCRONTAB schedules of the timers.')
param cleanupSchedule string = '0 0 3 * * *'
param pollSchedule string = '0 */5 * * * *'
@description('NCRONTAB schedule of the retention timer (prunes the ledger past retention.keep)')
param retentionSchedule string = '0 30 3 * * *'

@description('Path of the YAML config inside the deployed package (`modelops config init --azure` writes modelops.yaml; the embedded local default is refused in Azure).')
param configPath string = 'modelops.yaml'

@description('Client id (and/or App ID URI, comma-separated) of the Entra app registration whose tokens, with the app role ModelOps.Operator, open the ops routes; empty keeps them closed (401).')
param opsAudience string = ''

@description('Key Vault (created here, RBAC authorization) holding the webhook secrets: 3-24 letters, digits and dashes, globally unique.')
@maxLength(24)
param keyVaultName string = take('${appName}-kv', 24)

@description('Name of the vault secret holding MLFLOW_WEBHOOK_SECRET (set it with `az keyvault secret set`).')
param mlflowWebhookSecretName string = 'mlflow-webhook-secret'

@description('Name of the vault secret holding DATABRICKS_WEBHOOK_SECRET (set it with `az keyvault secret set`).')
param databricksWebhookSecretName string = 'databricks-webhook-secret'

param maximumInstanceCount int = 40

@allowed([2048, 4096])
param instanceMemoryMB int = 2048

var actionsQueue = 'modelops-actions'
var ledgerTable = 'modelopsledger'
var packageContainer = 'app-package'
var roles = {
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // the host's own blobs (leases, timers, package)
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  eventGridDataSender: 'd5a91429-5739-47e2-a06b-3470a27159e7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6' // read secret values: what Key Vault references need
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${appName}-id'
  location: location
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false // identity only: no account key to leak
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource packages 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: packageContainer
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: actionsQueue
}

resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${actionsQueue}-poison'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource table 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: ledgerTable
}

resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in [roles.blobDataOwner, roles.queueDataContributor, roles.tableDataContributor]: {
    name: guid(storage.id, identity.id, role)
    scope: storage
    properties: {
      principalId: identity.properties.principalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
    }
  }
]

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${appName}-logs'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${appName}-ai'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
  }
}

resource insightsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

resource outcomeTopic 'Microsoft.EventGrid/topics@2022-06-15' = if (createOutcomeTopic) {
  name: '${appName}-outcomes'
  location: location
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true // Entra only: MODELOPS_OUTCOME_TOPIC_KEY stays empty
  }
}

resource outcomeSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (createOutcomeTopic) {
  name: guid(resourceGroup().id, '${appName}-outcomes', identity.id, roles.eventGridDataSender)
  scope: outcomeTopic
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventGridDataSender)
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true // roles, not access policies: a redeploy cannot drop anyone's access
    enableSoftDelete: true
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

resource vaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${appName}-plan'
  location: location
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true // Linux
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id // Key Vault references resolve with the user-assigned identity
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${packageContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [
        // identity-based host storage; the reactor reads the same settings for its Table + queue
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId }
        { name: 'AZURE_CLIENT_ID', value: identity.properties.clientId }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identity.properties.clientId};Authorization=AAD' }
        { name: 'MODELOPS_CONFIG', value: configPath }
        { name: 'MODELOPS_STATE_DIR', value: '/tmp/modelops' } // scratch only: state lives in Table Storage
        { name: 'MODELOPS_STATE_BACKEND', value: 'azure' }
        { name: 'MODELOPS_LEDGER_TABLE', value: ledgerTable }
        { name: 'MODELOPS_ACTIONS_QUEUE', value: actionsQueue }
        { name: 'MODELOPS_CLEANUP_SCHEDULE', value: cleanupSchedule }
        { name: 'MODELOPS_POLL_SCHEDULE', value: pollSchedule }
        { name: 'MODELOPS_RETENTION_SCHEDULE', value: retentionSchedule }
        { name: 'MODELOPS_TRUSTED_PROXIES', value: 'host' } // App Service's front end appends the client to X-Forwarded-For
        { name: 'MODELOPS_OUTCOME_TOPIC_ENDPOINT', value: createOutcomeTopic ? outcomeTopic.properties.endpoint : '' }
        { name: 'MODELOPS_OPS_TENANT_ID', value: empty(opsAudience) ? '' : tenant().tenantId }
        { name: 'MODELOPS_OPS_AUDIENCE', value: opsAudience }
        // secrets: Key Vault references only; a versionless URI follows the secret's latest version
        { name: 'MLFLOW_WEBHOOK_SECRET', value: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${mlflowWebhookSecretName}/)' }
        { name: 'DATABRICKS_WEBHOOK_SECRET', value: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${databricksWebhookSecretName}/)' }
      ]
    }
  }
  dependsOn: [
    storageRoles // the host cannot start before it may read its storage
    vaultSecretsUser // nor resolve its secrets before it may read them
  ]
}

module workspaceAccess 'modules/workspace-access.bicep' = {
  name: '${appName}-workspace-access'
  scope: resourceGroup(workspaceResourceGroup)
  params: {
    workspaceName: workspaceName
    principalId: identity.properties.principalId
    functionAppId: app.id
    deployEventSubscription: deployEventSubscription
  }
}

module subscriptionAccess 'modules/subscription-access.bicep' = if (grantCleanupOnSubscription) {
  name: '${appName}-subscription-access'
  scope: subscription()
  params: {
    principalId: identity.properties.principalId
    appName: appName
  }
}

output functionAppName string = app.name
output identityClientId string = identity.properties.clientId
output storageAccountName string = storage.name
output keyVaultName string = vault.name
output outcomeTopicEndpoint string = createOutcomeTopic ? outcomeTopic.properties.endpoint : ''
