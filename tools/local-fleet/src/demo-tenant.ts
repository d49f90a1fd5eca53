/**
 * The demo tenant: created on first start with external access and a generated password (kept
 * in <state>/demo-password, mode 0600, so every start can print it again), reused afterwards.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { RunState, TenantStatus, type CoordinatorService } from '@pgs/proto';
import { Code, RpcError, type Client } from '@pgs/rpc';
import { DEFAULT_TENANT_SPEC } from '@pgs/tenancy';
import { waitUntil } from './readiness.js';

/** The state of the demo tenant after ensureDemoTenant. */
export interface DemoTenant {
  tenant: string;
  password: string;
  created: boolean;
}

function readPassword(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim() || undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function savePassword(file: string, password: string): void {
  fs.writeFileSync(file, `${password}\n`, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}

/** 24 url-safe characters: within the 8..99 rule and easy to paste into a URI. */
function generatePassword(): string {
  return crypto.randomBytes(18).toString('base64url');
}

/** The demo tenant's idle-suspend policy: five minutes, as Neon suspends a compute. */
export const DEMO_IDLE_SUSPEND_SECONDS = 300;

/** Creates the demo tenant (or reuses it), makes sure access is on, and waits until it is ACTIVE (or SUSPENDED). */
export async function ensureDemoTenant(
  client: Client<typeof CoordinatorService>,
  tenant: string,
  passwordFile: string,
  timeoutMs: number,
  onProgress: (text: string) => void,
  abort?: () => Error | undefined,
): Promise<DemoTenant> {
  let password = readPassword(passwordFile);
  let created = false;
  let exists = true;
  try {
    await client.getTenant({ id: tenant }, { timeoutMs: 10_000 });
  } catch (err) {
    if (!(err instanceof RpcError && err.code === Code.NOT_FOUND)) throw err;
    exists = false;
  }
  if (!exists) {
    password = generatePassword();
    // Saved before the call: if the launcher dies right after, the next start still knows it.
    savePassword(passwordFile, password);
    await client.createTenant(
      {
        id: tenant,
        ownerPassword: password,
        spec: {
          resources: { ...DEFAULT_TENANT_SPEC.resources },
          nodes: DEFAULT_TENANT_SPEC.nodes,
          syncReplicas: DEFAULT_TENANT_SPEC.syncReplicas,
          externalAccess: true,
          description: 'demo tenant of the local fleet',
          runState: RunState.RUNNING,
          // Scale to zero on show: after five idle minutes it stops, and the next client wakes it.
          idleSuspendSeconds: DEMO_IDLE_SUSPEND_SECONDS,
        },
        idempotencyKey: `local-fleet-${tenant}`,
      },
      { timeoutMs: 10_000 },
    );
    created = true;
  } else {
    await client.setTenantAccess({ id: tenant, externalAccess: true }, { timeoutMs: 10_000 });
  }
  let last = '';
  await waitUntil(
    `tenant ${tenant}`,
    timeoutMs,
    async () => {
      const res = await client.getTenant({ id: tenant }, { timeoutMs: 10_000 });
      const status = TenantStatus[res.tenant?.status ?? TenantStatus.UNSPECIFIED] ?? 'UNKNOWN';
      const text = `tenant ${tenant}: ${status}${res.tenant?.statusReason ? ` (${res.tenant.statusReason})` : ''}`;
      if (text !== last) onProgress((last = text));
      // A demo suspended while idle is ready too: the first client through a router wakes it.
      return res.tenant?.status === TenantStatus.ACTIVE || res.tenant?.status === TenantStatus.SUSPENDED ? true : undefined;
    },
    abort,
  );
  if (password === undefined) {
    // The tenant exists but its password file is gone: set a new password rather than print none.
    password = generatePassword();
    await client.updateUserPassword({ tenantId: tenant, name: tenant, password }, { timeoutMs: 10_000 });
    savePassword(passwordFile, password);
  }
  return { tenant, password, created };
}
