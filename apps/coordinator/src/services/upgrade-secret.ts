/**
 * The AAD the password of a major upgrade's subscription role is sealed with in the upgrade's row
 * (the new instance's agent gets it in the clear for each step; key rotation re-seals it with this).
 */
export function upgradePasswordContext(tenantId: string): string {
  return `tenant:${tenantId}:upgrade-password`;
}
