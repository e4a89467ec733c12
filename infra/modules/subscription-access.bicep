// Deployed at subscription scope (once per subscription that cleanup manages): Reader, and a
// narrow custom role to tag and delete resource groups (cleanup's two-phase mark-then-delete).
targetScope = 'subscription'

param principalId string
param appName string

var reader = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'

resource cleanupRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'modelops-cleanup', appName)
  properties: {
    roleName: 'modelops-reactor cleanup (${appName})'
    description: 'Tag (delete-after) and delete stale resource groups; read locks to report them.'
    type: 'CustomRole'
    assignableScopes: [
      subscription().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.Resources/subscriptions/resourceGroups/read'
          'Microsoft.Resources/subscriptions/resourceGroups/write'
          'Microsoft.Resources/subscriptions/resourceGroups/delete'
          'Microsoft.Resources/subscriptions/resourceGroups/resources/read'
          'Microsoft.Resources/tags/read'
          'Microsoft.Resources/tags/write'
          'Microsoft.Authorization/locks/read'
        ]
        notActions: []
      }
    ]
  }
}

resource readerAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, reader)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', reader)
  }
}

resource cleanupAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, cleanupRole.id)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: cleanupRole.id
  }
}
