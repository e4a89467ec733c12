// Deployed at subscription scope (once per subscription that cleanup manages): a narrow custom
// role with exactly the four actions shared/cleanup/arm_provider.py calls, and nothing else:
//   resource_groups.list                        -> resourceGroups/read
//   management_locks.list_at_subscription_level -> locks/read
//   tags.begin_update_at_scope (mark, unmark)   -> tags/write
//   resource_groups.begin_delete                -> resourceGroups/delete
targetScope = 'subscription'

param principalId string
param appName string

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
          'Microsoft.Authorization/locks/read'
          'Microsoft.Resources/tags/write'
          'Microsoft.Resources/subscriptions/resourceGroups/delete'
        ]
        notActions: []
      }
    ]
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
